/**
 * The cluster scenario's tables (Markdown, below the peer table): publish capacity, fan-out and
 * the idle node, each a row per masters × layout, CPU per message or delivery split by process.
 */
import type { StepResult } from '../loadgen/plan.js';
import { CLUSTER_DESCRIPTIONS, clusterSizes, type ClusterMeasurement } from './phases.js';
import { describeLayout, probeCpuUs, windowCounts, type ClusterRow, type ClusterRun } from './scenario.js';

const num = (v: number): string => (v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** A row's figures, or the reason it has none, spread over `width` columns. */
function absent(row: ClusterRow, width: number): string[] {
  const why = row.unavailable !== null ? `not run: ${row.unavailable}` : `failed: ${(row.error ?? 'no result').slice(0, 120)}`;
  return [why, ...Array<string>(width - 1).fill('–')];
}

/** Flags a reader must see next to a row's throughput. */
function notes(result: StepResult): string {
  const out: string[] = [];
  if (!result.valid) out.push('invalid');
  if (result.contended) out.push(`contended (server waited ${result.serverWaitPercent.toFixed(0)}%)`);
  if (result.lost > 0) out.push(`${result.lost} lost`);
  if (result.duplicates > 0) out.push(`${result.duplicates} duplicated`);
  if (result.publishFailed > 0) out.push(`${result.publishFailed} publishes failed`);
  return out.join('; ');
}

function perMessage(result: StepResult, us: number): string {
  const { messages } = windowCounts(result);
  return messages > 0 ? num(us / messages) : '–';
}

function busiestMaster(result: StepResult): number {
  return Math.max(0, ...(result.probes ?? []).filter((p) => p.name.startsWith('redis')).map((p) => p.cpuUs));
}

/** Commands that run the store's scripts (the commands a script calls are counted apart too). */
const SCRIPTS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);
/** Commands that read history and the live stream. */
const READS = new Set(['xread', 'xreadgroup', 'xrange', 'xrevrange']);

/** Redis' in-command time in the scripts and in the reads, µs per message of the whole step. */
function commandsPerMessage(row: ClusterRow, r: StepResult): string {
  if (!row.commands || r.published === 0) return '–';
  const usec = (set: ReadonlySet<string>): number => row.commands!.filter((c) => set.has(c.command)).reduce((sum, c) => sum + c.usec, 0);
  return `${(usec(SCRIPTS) / r.published).toFixed(1)} / ${(usec(READS) / r.published).toFixed(1)}`;
}

function table(header: string[], lines: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
}

function rowsOf(run: ClusterRun, measurement: ClusterMeasurement): ClusterRow[] {
  return run.rows.filter((r) => r.measurement === measurement);
}

function publishTable(run: ClusterRun): string {
  const header = [
    'masters',
    'layout',
    'messages/s',
    'hubs CPU µs/message',
    'Redis CPU µs/message (all masters)',
    'busiest master µs/message',
    'Redis in-command µs/message: scripts / reads',
    'keys per master',
    'notes',
  ];
  const lines = rowsOf(run, 'publish').map((row) => {
    const r = row.result;
    const head = [String(row.masters), describeLayout(row.layout)];
    if (!r) return [...head, ...absent(row, header.length - 2)];
    return [
      ...head,
      num(r.publishesPerSecond),
      perMessage(r, probeCpuUs(r, 'hub')),
      perMessage(r, probeCpuUs(r, 'redis')),
      perMessage(r, busiestMaster(r)),
      commandsPerMessage(row, r),
      row.keysPerMaster?.join(' / ') ?? '–',
      notes(r),
    ];
  });
  return table(header, lines);
}

function fanoutTable(run: ClusterRun): string {
  const header = ['masters', 'layout', 'deliveries/s', 'messages/s', 'hubs CPU µs/delivery', 'Redis CPU µs/message', 'all processes µs/delivery', 'notes'];
  const lines = rowsOf(run, 'fanout').map((row) => {
    const r = row.result;
    const head = [String(row.masters), describeLayout(row.layout)];
    if (!r) return [...head, ...absent(row, header.length - 2)];
    const { deliveries } = windowCounts(r);
    const perDelivery = (us: number): string => (deliveries > 0 ? (us / deliveries).toFixed(2) : '–');
    return [
      ...head,
      num(r.deliveriesPerSecond),
      num(r.publishesPerSecond),
      perDelivery(probeCpuUs(r, 'hub')),
      perMessage(r, probeCpuUs(r, 'redis')),
      perDelivery(probeCpuUs(r, 'hub') + probeCpuUs(r, 'redis')),
      notes(r),
    ];
  });
  return table(header, lines);
}

function idleTable(run: ClusterRun): string {
  const header = [
    'masters',
    'layout',
    'A messages/s',
    'hub B CPU µs/message',
    'hub B CPU, % of a core',
    'Redis → B bytes/message',
    'Redis → B KB/s',
    'hub A CPU µs/message',
    'Redis CPU µs/message',
    'Redis in-command µs/message: scripts / reads',
    'notes',
  ];
  const lines = rowsOf(run, 'idle-node').map((row) => {
    const r = row.result;
    const head = [String(row.masters), describeLayout(row.layout)];
    if (!r) return [...head, ...absent(row, header.length - 2)];
    const b = r.probes?.find((p) => p.name === 'hub B');
    const bytes = b?.bytesReceived ?? null;
    return [
      ...head,
      num(r.publishesPerSecond),
      perMessage(r, b?.cpuUs ?? 0),
      (((b?.cpuUs ?? 0) / 1e6 / r.windowSeconds) * 100).toFixed(1),
      bytes === null ? '–' : perMessage(r, bytes),
      bytes === null ? '–' : (bytes / 1024 / r.windowSeconds).toFixed(1),
      perMessage(r, probeCpuUs(r, 'hub A')),
      perMessage(r, probeCpuUs(r, 'redis')),
      commandsPerMessage(row, r),
      notes(r),
    ];
  });
  return table(header, lines);
}

/** The section below the peer table. */
export function renderClusterMarkdown(run: ClusterRun, quick: boolean): string {
  const sizes = clusterSizes(quick);
  const parts = [
    '### Cluster: two hubs on a Redis Cluster of 1–3 masters',
    '',
    'Both hubs and every master (no persistence) pinned to the one server core, the load generator to the other: on two cores the throughput columns say how fast five processes take turns on one core, not what scaling out gains. ' +
      'CPU µs per message and per delivery (from /proc, per process, inside the measured window) do not depend on the number of cores: those are the figures to project from. ' +
      'Redis → B is what hub B\'s sockets to the masters received (the kernel\'s per-socket `bytes_received`). ' +
      'Redis in-command time is `INFO commandstats` over the whole step, all masters, per message: the store\'s scripts (`EVAL`/`EVALSHA`, with the commands they call) against the nodes\' reads (`XREAD`, `XRANGE`…). It is Redis\' own wall clock: on a core shared with the hubs it includes the times Redis was preempted mid-command, so read it for proportions; replies\' socket writes are not in it. ' +
      `Layouts: \`single stream\` is today's store (every key under one hash tag, so on one master, and every hub reads every message); \`sharded\` is \`--redis-shards\` = masters with node-local interest${run.shardingAvailable ? '' : ' (not in this build: its rows are marked not run)'}.`,
    '',
    `**Publish capacity** (\`cluster-publish-m<masters>\`): ${CLUSTER_DESCRIPTIONS.publish}; ${sizes.directTopics} topics, ${sizes.publishConnections} publishing connections.`,
    '',
    publishTable(run),
    '',
    `**Fan-out** (\`cluster-fanout-m<masters>\`): ${CLUSTER_DESCRIPTIONS.fanout}; ${sizes.fanoutTopics} topics × ${sizes.fanoutPerTopic} subscribers.`,
    '',
    fanoutTable(run),
    '',
    `**Idle node** (\`cluster-idle-node-m<masters>\`): ${CLUSTER_DESCRIPTIONS['idle-node']}; ${sizes.directTopics} topics with one subscriber each.`,
    '',
    idleTable(run),
    '',
  ];
  return parts.join('\n');
}
