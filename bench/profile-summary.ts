/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and lists where the time went: the top
 * functions by self time, and self time grouped by where the code lives (sse-relay, fastify,
 * Node's internals, garbage collection, ...).
 *
 * `node dist/bench/profile-summary.js <file.cpuprofile> [top]`
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Sampled time not idle: the denominator of every percentage. */
  readonly busyMs: number;
  /** Inclusive time (the function and what it called), recursion counted once. */
  readonly inclusive: { name: string; where: string; totalMs: number; percent: number }[];
  readonly top: { name: string; where: string; selfMs: number; percent: number }[];
  readonly byArea: { area: string; selfMs: number; percent: number }[];
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    totalUs += dt;
  });
  const byFunction = new Map<string, { name: string; where: string; us: number }>();
  const byArea = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const entry = byFunction.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const area = areaOf(name, url);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const idleUs = [...selfUs.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
  const busyUs = totalUs - idleUs;
  const pct = (us: number): number => (busyUs > 0 ? (us / busyUs) * 100 : 0);

  // Inclusive time per function: a depth-first walk, adding a node's subtree time to its
  // function unless an ancestor frame of the same function already counted it.
  const subtree = new Map<number, number>();
  const totalOf = (id: number): number => {
    const cached = subtree.get(id);
    if (cached !== undefined) return cached;
    const node = byId.get(id)!;
    let us = selfUs.get(id) ?? 0;
    for (const child of node.children ?? []) us += totalOf(child);
    subtree.set(id, us);
    return us;
  };
  const inclusive = new Map<string, { name: string; where: string; us: number }>();
  const active = new Map<string, number>();
  const root = profile.nodes[0];
  const walk = (id: number): void => {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const depth = active.get(key) ?? 0;
    if (depth === 0) {
      const entry = inclusive.get(key) ?? { name, where, us: 0 };
      entry.us += totalOf(id);
      inclusive.set(key, entry);
    }
    active.set(key, depth + 1);
    for (const child of node.children ?? []) walk(child);
    active.set(key, depth);
  };
  if (root) walk(root.id);

  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    inclusive: [...inclusive.values()]
      .filter((e) => !['(root)', '(idle)', '(program)', '(garbage collector)'].includes(e.name))
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, totalMs: e.us / 1000, percent: pct(e.us) })),
    top: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: pct(e.us) })),
    byArea: [...byArea.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, selfMs: us / 1000, percent: pct(us) })),
  };
}

export function formatSummary(summary: ProfileSummary): string {
  const lines = [
    `${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms not idle; percentages are of the time not idle`,
    '',
    'self time by area:',
  ];
  for (const a of summary.byArea.filter((x) => x.area !== 'idle')) lines.push(`  ${a.percent.toFixed(1).padStart(5)}%  ${a.selfMs.toFixed(0).padStart(7)} ms  ${a.area}`);
  lines.push('', 'top functions by self time:');
  for (const f of summary.top.filter((x) => x.name !== '(idle)')) lines.push(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`);
  lines.push('', 'top functions by inclusive time (itself and what it called):');
  for (const f of summary.inclusive) lines.push(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.totalMs.toFixed(0).padStart(7)} ms  ${f.name}  ${f.where}`);
  return lines.join('\n');
}

function shorten(url: string): string {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

function areaOf(name: string, url: string): string {
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return '(program): native code outside JS, incl. syscalls';
  if (url === '') return 'native / builtins';
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const dist = url.lastIndexOf('/dist/src/');
  if (dist >= 0) return `sse-relay ${url.slice(dist + '/dist/src/'.length).split('/')[0]}/`;
  return url;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: profile-summary.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSummary(summarizeProfile(file, Number(process.argv[3] ?? 25)))}\n`);
}
