/**
 * The side-by-side table: absolute figures per peer and ratios of sse-relay to each peer, as
 * Markdown (printed, written under bench/results/, and the latest into bench/README.md) and
 * JSON; below it, two hubs on Redis against one process on the embedded stores.
 */
import type { ClusterRun } from './cluster/scenario.js';
import type { InterestRun } from './interest/scenario.js';
import type { PatternCostResult } from './pattern-cost.js';
import type { IdleMemoryResult, StepResult } from './loadgen/plan.js';
import { STEP_ORDER } from './scenarios.js';

/** Everything one `npm run bench` measured. */
export interface BenchRun {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly quick: boolean;
  readonly environment: Record<string, string>;
  readonly peers: readonly { name: string; description: string; unavailable: string | null }[];
  /** Results by peer, then by step name. */
  readonly results: Record<string, Record<string, StepResult | IdleMemoryResult>>;
  /** Phases that failed outright (a server that did not start, a load generator crash). */
  readonly errors: readonly { peer: string; phase: string; error: string }[];
  /** The pattern-cost scenario (sse-relay alone), when it ran. */
  readonly patternCost?: PatternCostResult | undefined;
  /** The Redis Cluster scenario (two hubs on 1–3 masters), when it ran. */
  readonly cluster?: ClusterRun | undefined;
  /** Node-local interest, followed streams against sharded pub/sub, when it ran. */
  readonly interest?: InterestRun | undefined;
}

/** The peer whose figures are divided by the others'. */
export const BASELINE = 'sse-relay-memory';
const DURABLE = 'sse-relay-sqlite';
const COMPARED = ['nchan', 'better-sse', 'express-article'];
/** Two hub processes on one Redis, and the single hub on Redis (not run by default). */
const CLUSTER = 'sse-relay-redis-2';
const SINGLE_REDIS = 'sse-relay-redis';

interface Metric {
  readonly label: string;
  readonly better: 'higher' | 'lower';
  /** Counts only the server's own resources, so other work on its core does not move it. */
  readonly robust?: boolean;
  value(result: StepResult | IdleMemoryResult): number | null;
  format(value: number): string;
}

const perSecond = (v: number): string => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ms = (us: number): string => {
  const v = us / 1000;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
};
const step = (r: StepResult | IdleMemoryResult): StepResult | undefined => ('delivered' in r ? r : undefined);

const DELIVERIES: Metric = { label: 'deliveries/s', better: 'higher', value: (r) => step(r)?.deliveriesPerSecond ?? null, format: perSecond };
const PUBLISHES: Metric = { label: 'publishes/s', better: 'higher', value: (r) => step(r)?.publishesPerSecond ?? null, format: perSecond };
/** Messages acknowledged per second, however many a request carried. */
const MESSAGES: Metric = { label: 'messages/s', better: 'higher', value: (r) => step(r)?.publishesPerSecond ?? null, format: perSecond };
const P50: Metric = { label: 'p50 latency, ms', better: 'lower', value: (r) => step(r)?.latencyUs.p50 ?? null, format: ms };
const P99: Metric = { label: 'p99 latency, ms', better: 'lower', value: (r) => step(r)?.latencyUs.p99 ?? null, format: ms };
const MAX: Metric = { label: 'max latency, ms', better: 'lower', value: (r) => step(r)?.latencyUs.max ?? null, format: ms };
const CPU_DELIVERY: Metric = {
  label: 'server CPU µs/delivery',
  better: 'lower',
  robust: true,
  value: (r) => step(r)?.serverCpuUsPerDelivery ?? null,
  format: (v) => v.toFixed(2),
};
const CPU_PUBLISH: Metric = {
  label: 'server CPU µs/publish',
  better: 'lower',
  robust: true,
  value: (r) => step(r)?.serverCpuUsPerPublish ?? null,
  format: (v) => v.toFixed(1),
};
const CPU_MESSAGE: Metric = { ...CPU_PUBLISH, label: 'server CPU µs/message' };
const PUB_P50: Metric = { label: 'publish p50, ms', better: 'lower', value: (r) => step(r)?.publishLatencyUs.p50 ?? null, format: ms };
const PUB_P99: Metric = { label: 'publish p99, ms', better: 'lower', value: (r) => step(r)?.publishLatencyUs.p99 ?? null, format: ms };
const MEMORY: Metric = {
  label: 'KiB per idle connection',
  better: 'lower',
  robust: true,
  value: (r) => ('bytesPerConnection' in r ? r.bytesPerConnection / 1024 : null),
  format: (v) => v.toFixed(1),
};

const METRICS_BY_STEP: Record<string, Metric[]> = {
  'idle-memory-10k': [MEMORY],
  'latency-10k-1hz': [P50, P99, MAX, CPU_DELIVERY],
  'fanout-10k-rate': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-10k-saturated': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-1k-rate': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-1k-saturated': [DELIVERIES, P99, CPU_DELIVERY],
  'direct-1k-saturated': [PUBLISHES, P99, CPU_PUBLISH],
  'direct-1k-serial-1': [PUBLISHES, PUB_P50, PUB_P99, CPU_PUBLISH],
  'direct-1k-serial-4': [PUBLISHES, PUB_P50, PUB_P99, CPU_PUBLISH],
  'direct-1k-serial-50': [PUBLISHES, PUB_P50, PUB_P99, CPU_PUBLISH],
  'direct-1k-batch-100-serial-4': [MESSAGES, PUB_P50, PUB_P99, CPU_MESSAGE],
  'publish-1': [PUBLISHES, PUB_P50, PUB_P99, CPU_PUBLISH],
  'publish-50': [PUBLISHES, PUB_P50, PUB_P99, CPU_PUBLISH],
};

/**
 * The cluster comparison's rows: what the scenario asks (deliveries/s, p99 publish→receive)
 * and the CPU it cost. Deliveries/s also for direct-1k (one delivery per publish), where the
 * main table shows publishes/s.
 */
const CLUSTER_METRICS_BY_STEP: Record<string, Metric[]> = {
  'latency-10k-1hz': [P99, CPU_DELIVERY],
  'fanout-10k-rate': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-10k-saturated': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-1k-rate': [DELIVERIES, P99, CPU_DELIVERY],
  'fanout-1k-saturated': [DELIVERIES, P99, CPU_DELIVERY],
  'direct-1k-saturated': [DELIVERIES, P99, CPU_DELIVERY],
};

/** The tables as Markdown, with notes on invalid steps and losses below them. */
export function renderMarkdown(run: BenchRun): string {
  // sse-relay's variants side by side, then the other peers, each group in run order.
  const relay = (name: string): boolean => name.startsWith('sse-relay');
  const peers = [...run.peers.filter((p) => relay(p.name)), ...run.peers.filter((p) => !relay(p.name))].map((p) => p.name);
  const ratioPeers = COMPARED.filter((p) => peers.includes(p));
  const header = ['scenario', 'metric', ...peers, ...ratioPeers.map((p) => `relay ÷ ${p}`), 'sqlite ÷ memory'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  const notes: string[] = [];
  const marks = new Map<string, number>();
  const noteMark = (text: string): string => {
    let n = marks.get(text);
    if (n === undefined) {
      n = marks.size + 1;
      marks.set(text, n);
      notes.push(`[${n}] ${text}`);
    }
    return `[${n}]`;
  };
  for (const stepName of STEP_ORDER) {
    const metrics = METRICS_BY_STEP[stepName] ?? [];
    const any = peers.some((p) => run.results[p]?.[stepName]);
    if (!any) continue;
    metrics.forEach((metric, index) => {
      const cells: string[] = [index === 0 ? stepName : '', `${metric.label} (${metric.better} is better)`];
      for (const peer of peers) cells.push(valueCell(run, peer, stepName, metric, index === 0 ? noteMark : undefined));
      for (const peer of ratioPeers) cells.push(ratio(run, BASELINE, peer, stepName, metric));
      cells.push(ratio(run, DURABLE, BASELINE, stepName, metric));
      lines.push(`| ${cells.join(' | ')} |`);
    });
  }
  const batches = renderBatchComparison(run, peers);
  const cluster = renderClusterComparison(run, peers, noteMark);
  const unavailable = run.peers.filter((p) => p.unavailable).map((p) => `${p.name}: unavailable (${p.unavailable})`);
  const errors = run.errors.map((e) => `${e.peer} ${e.phase}: ${e.error}`);
  return [lines.join('\n'), ...(batches ? [`\n${batches}`] : []), ...(cluster ? [`\n${cluster}`] : []), ...[...unavailable, ...errors, ...notes].map((n) => `\n${n}`)].join('\n') + '\n';
}

const BATCH_STEP = 'direct-1k-batch-100-serial-4';
const SINGLE_STEP = 'direct-1k-serial-4';

/**
 * Batch publishing against single publishes on the same 4 connections: messages/s of each
 * peer that has a batch route, ÷ its own single publishes and ÷ nchan's single publishes
 * (nchan has no batch route). Empty when the batch step did not run.
 */
function renderBatchComparison(run: BenchRun, peers: readonly string[]): string {
  const batched = peers.filter((p) => run.results[p]?.[BATCH_STEP]);
  if (batched.length === 0) return '';
  const rate = (peer: string, stepName: string): number | null => {
    const r = run.results[peer]?.[stepName];
    return r ? MESSAGES.value(r) : null;
  };
  const times = (a: number | null, b: number | null): string => (a === null || b === null || !(b > 0) ? '–' : `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}×`);
  const nchan = rate('nchan', SINGLE_STEP);
  const lines = [
    '### Batch publishing against single publishes',
    '',
    `Messages/s on 4 connections, one request at a time each: batches of 100 (\`${BATCH_STEP}\`) against one message per request (\`${SINGLE_STEP}\`), same subscribers.`,
    '',
    '| peer | batches of 100, messages/s | single publishes, messages/s | batch ÷ single | batch ÷ nchan single |',
    '|---|---|---|---|---|',
  ];
  for (const peer of batched) {
    const batch = rate(peer, BATCH_STEP);
    const single = rate(peer, SINGLE_STEP);
    lines.push(`| ${peer} | ${batch === null ? '–' : perSecond(batch)} | ${single === null ? '–' : perSecond(single)} | ${times(batch, single)} | ${times(batch, nchan)} |`);
  }
  return lines.join('\n');
}

/**
 * Two hubs on one Redis next to one process on the embedded stores (memory, SQLite), and the
 * single hub on Redis when it ran: the scenario of issue 5. Empty when the cluster did not run.
 */
function renderClusterComparison(run: BenchRun, allPeers: readonly string[], noteMark: (text: string) => string): string {
  if (!run.results[CLUSTER]) return '';
  const peers = [BASELINE, DURABLE, SINGLE_REDIS, CLUSTER].filter((p) => allPeers.includes(p));
  const against = [DURABLE, BASELINE, SINGLE_REDIS].filter((p) => run.results[p]);
  const short = (name: string): string => name.replace(/^sse-relay-/, '');
  const header = ['scenario', 'metric', ...peers, ...against.map((p) => `${short(CLUSTER)} ÷ ${short(p)}`), `${CLUSTER} per node`];
  const lines = [
    `### Two hubs on one Redis vs one process on the embedded store`,
    '',
    `\`${CLUSTER}\`: two hub processes share one redis-server; every step's subscribers are split across the hubs and its publishes go to both. ` +
      `All three processes run on the one server core the other peers get, so the ratios show what the Redis path costs on equal hardware, not what scaling out to more cores would gain.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
  ];
  for (const stepName of STEP_ORDER) {
    const metrics = CLUSTER_METRICS_BY_STEP[stepName];
    if (!metrics || !run.results[CLUSTER]?.[stepName]) continue;
    metrics.forEach((metric, index) => {
      const cells: string[] = [index === 0 ? stepName : '', `${metric.label} (${metric.better} is better)`];
      for (const peer of peers) cells.push(valueCell(run, peer, stepName, metric, index === 0 ? noteMark : undefined));
      for (const peer of against) cells.push(ratio(run, CLUSTER, peer, stepName, metric));
      cells.push(index === 0 ? nodeSplit(run.results[CLUSTER]![stepName]!) : '');
      lines.push(`| ${cells.join(' | ')} |`);
    });
  }
  return lines.join('\n');
}

/** `subscribers a + b; publishes x + y` over the nodes of a step. */
function nodeSplit(result: StepResult | IdleMemoryResult): string {
  const targets = step(result)?.targets;
  if (!targets || targets.length === 0) return '–';
  const subscribers = targets.map((t) => t.subscribers).join(' + ');
  const published = targets.map((t) => t.published).join(' + ');
  return `subscribers ${subscribers}; publishes ${published}`;
}

/** A peer's figure; with `noteMark`, also its losses and a mark for its notes. */
function valueCell(
  run: BenchRun,
  peer: string,
  stepName: string,
  metric: Metric,
  noteMark: ((text: string) => string) | undefined,
): string {
  const result = run.results[peer]?.[stepName];
  if (!result) return run.peers.find((p) => p.name === peer)?.unavailable ? 'n/a' : '–';
  const value = metric.value(result);
  let cell = value === null || Number.isNaN(value) ? '–' : metric.format(value);
  if (noteMark) {
    const s = step(result);
    if (s && s.lost > 0) cell += ` (lost ${s.lost})`;
    const flagged = !result.valid || result.notes.length > 0;
    if (flagged) cell += ` ${noteMark(`${peer} ${stepName}: ${result.valid ? '' : 'INVALID: '}${result.notes.join('; ')}`)}`;
    if (!result.valid) cell = `*${cell}*`;
  }
  return cell;
}

function ratio(run: BenchRun, numerator: string, denominator: string, stepName: string, metric: Metric): string {
  const a = run.results[numerator]?.[stepName];
  const b = run.results[denominator]?.[stepName];
  if (!a || !b) return '–';
  const x = metric.value(a);
  const y = metric.value(b);
  if (x === null || y === null || !(y > 0) || Number.isNaN(x)) return '–';
  const r = x / y;
  const text = `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
  const contended = !metric.robust && [a, b].some((res) => 'contended' in res && res.contended);
  return a.valid && b.valid && !contended ? text : `(${text})`;
}

/** A short header for the Markdown file: when, where, how. */
export function renderContext(run: BenchRun): string {
  const env = Object.entries(run.environment).map(([k, v]) => `- ${k}: ${v}`);
  return [
    `Run ${run.startedAt} → ${run.finishedAt}${run.quick ? ' (--quick: fewer subscribers, shorter steps)' : ''}.`,
    '',
    ...env,
    '',
    `Ratios are ${BASELINE} ÷ peer (for “lower is better” rows a ratio under 1 favours sse-relay); “sqlite ÷ memory” is ${DURABLE} ÷ ${BASELINE}; in the Redis table, “redis-2 ÷ peer” is ${CLUSTER} ÷ that peer. Ratios in parentheses involve a step marked invalid, or a throughput or latency measured while other work took a large share of the server's core (“contended”; CPU µs and memory rows are not affected by it). Latencies are publish→receive over every delivery of the messages sent in the measured window.`,
  ].join('\n');
}
