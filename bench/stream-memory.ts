/**
 * What one open, idle event stream costs the server, measured so the machine's load does not
 * change the figure: N idle subscriptions on one id (as the bench's `idle-memory-10k`), and
 *
 * - RSS growth of the server's processes per stream (median of three samples after `--settle`);
 * - for sse-relay, heap growth per stream after full collections, and a heap-snapshot diff by
 *   constructor (objects), function name (closures) or node type, so each byte has an owner;
 * - for nchan (nginx + libnginx-mod-nchan, the bench's configuration), RSS growth the same way,
 *   so the ratio comes from one run.
 *
 * `node dist/bench/stream-memory.js [--streams 10000] [--peers sse-relay,nchan] [--settle 2000]
 *  [--top 25] [--no-snapshot] [--keep-snapshots DIR]`
 * `--keep-snapshots` leaves `before.heapsnapshot` and `after.heapsnapshot` there (for DevTools).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, rssBytes } from './loadgen/proc-stats.js';
import { SubscriberPool } from './loadgen/subscribers.js';
import { freePort } from './peers/free-port.js';
import { nchanConfig } from './peers/peers.js';
import { diffHeapSummaries, summariseHeapSnapshot } from './stream-memory/heap-summary.js';
import { waitForPort } from './port-wait.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
};
const streams = Number(flag('streams', '10000'));
const peers = flag('peers', 'sse-relay,nchan').split(',');
const settleMs = Number(flag('settle', '2000'));
const top = Number(flag('top', '25'));
const snapshots = !argv.includes('--no-snapshot');
const keepIn = flag('keep-snapshots', '');
const HUB_PROCESS = fileURLToPath(new URL('./stream-memory/hub-process.js', import.meta.url));
const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const kib = (bytes: number): string => (bytes / 1024).toFixed(2);

/** Median of three RSS samples half a second apart, as the bench's idle-memory step takes it. */
async function medianRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let k = 0; k < 3; k++) {
    if (k > 0) await sleep(500);
    samples.push(rssBytes(processTree(pid)));
  }
  return samples.sort((a, b) => a - b)[1]!;
}

async function openStreams(port: number): Promise<SubscriberPool> {
  const pool = new SubscriberPool([{ host: '127.0.0.1', port, path: (id) => `/messages/subscribe/${id}` }], ['idle'], streams);
  const { failed, firstError } = await pool.open();
  if (failed > 0) throw new Error(`${failed} of ${streams} streams failed to open: ${firstError}`);
  return pool;
}

/** One request to the hub process, answered once. */
function ask<T>(child: ChildProcess, request: object): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (answer) => resolve(answer as T));
    child.send(request);
  });
}

/** Starts the hub process; resolves with it and its port once it listens. */
async function startHub(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(HUB_PROCESS, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { url } = await new Promise<{ url: string }>((resolve) => child.once('message', (m) => resolve(m as { url: string })));
  return { child, port: Number(new URL(url).port) };
}

function stopHub(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.send({ stop: true });
  return exited;
}

/**
 * Two hub processes: one measured for RSS and collected heap only, and one for the heap
 * snapshots (writing a snapshot grows the RSS it would otherwise measure).
 */
async function measureRelay(workDir: string): Promise<number> {
  const { child, port } = await startHub();
  await sleep(500);
  const rssBefore = await medianRss(child.pid!);
  const { heapUsed: heapBefore } = await ask<{ heapUsed: number }>(child, { measure: true });
  const pool = await openStreams(port);
  await sleep(settleMs);
  const rssAfter = await medianRss(child.pid!);
  const { heapUsed: heapAfter } = await ask<{ heapUsed: number }>(child, { measure: true });
  console.log(`sse-relay (memory store): ${pool.openCount} streams`);
  console.log(`  RSS   ${kib((rssAfter - rssBefore) / streams)} KiB per stream`);
  console.log(`  heap  ${kib((heapAfter - heapBefore) / streams)} KiB per stream (after full collections)`);
  pool.close();
  await stopHub(child);
  if (snapshots) await snapshotDiff(workDir);
  return (rssAfter - rssBefore) / streams;
}

async function snapshotDiff(workDir: string): Promise<void> {
  const { child, port } = await startHub();
  const dir = keepIn === '' ? workDir : path.resolve(keepIn);
  mkdirSync(dir, { recursive: true });
  const before = path.join(dir, 'before.heapsnapshot');
  const after = path.join(dir, 'after.heapsnapshot');
  await ask(child, { snapshot: before });
  const pool = await openStreams(port);
  await sleep(settleMs);
  await ask(child, { snapshot: after });
  pool.close();
  await stopHub(child);
  const rows = diffHeapSummaries(summariseHeapSnapshot(before), summariseHeapSnapshot(after), streams);
  const total = rows.reduce((sum, row) => sum + row.bytesPerStream, 0);
  console.log(`  heap snapshot diff: ${total.toFixed(0)} B per stream; largest groups (count, bytes per stream):`);
  for (const row of rows.slice(0, top)) console.log(`    ${row.key.padEnd(44)} ${row.countPerStream.toFixed(2).padStart(7)} ${row.bytesPerStream.toFixed(0).padStart(7)}`);
}

async function measureNchan(workDir: string): Promise<number> {
  const dir = path.join(workDir, 'nchan');
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub), { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nchanConfig(port, dir));
  const child = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', 'nginx', '-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
  try {
    await waitForPort(port, 100, 100);
    await sleep(500);
    const rssBefore = await medianRss(child.pid!);
    const pool = await openStreams(port);
    await sleep(settleMs);
    const rssAfter = await medianRss(child.pid!);
    console.log(`nchan: ${pool.openCount} streams`);
    console.log(`  RSS   ${kib((rssAfter - rssBefore) / streams)} KiB per stream`);
    pool.close();
    return (rssAfter - rssBefore) / streams;
  } finally {
    child.kill('SIGTERM');
  }
}

const workDir = mkdtempSync(path.join(tmpdir(), 'stream-memory-'));
try {
  const perStream = new Map<string, number>();
  if (peers.includes('sse-relay')) perStream.set('sse-relay', await measureRelay(workDir));
  if (peers.includes('nchan')) {
    const { existsSync } = await import('node:fs');
    if (existsSync(NCHAN_MODULE)) perStream.set('nchan', await measureNchan(workDir));
    else console.log(`nchan: skipped (${NCHAN_MODULE} missing)`);
  }
  const relay = perStream.get('sse-relay');
  const nchan = perStream.get('nchan');
  if (relay !== undefined && nchan !== undefined) console.log(`ratio sse-relay / nchan (RSS per stream): ${(relay / nchan).toFixed(2)}x`);
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
