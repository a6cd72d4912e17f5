/**
 * The `interest` scenario (issue 14): the two ways a node can receive only what its
 * subscribers need, measured against each other on a real 3-master Redis Cluster, in one run.
 *
 * - Way 1, `streams` (what the store does): every append goes to its shard's stream; node B
 *   follows, with the store's own read loop, every shard one of its topics lives on.
 * - Way 2, `channels`: the same append plus one `SPUBLISH` of the entry to the topic's channel
 *   (spublish-append.ts); B `SSUBSCRIBE`s to its exact topics' channels.
 *
 * A publisher (this process) appends single-topic messages over `topics` topics with the
 * store's own script call, `lanes` calls in flight (append-load.ts), while B (its own process,
 * reader-node.ts) has no interest, one topic, 10 %, 50 % or all of them, each way in turn; then
 * a pattern / `*` node, which channels cannot serve: it follows every stream while appends
 * also publish. Each row: a flushed cluster, a fresh B, a warm-up, a measured window. Per
 * message published in the window: CPU of every master (/proc), Redis' in-command time by
 * command (INFO commandstats), bytes Redis sent B (kernel per-socket counters), B's CPU
 * (getrusage). After the window the publisher stops and B must have received exactly what
 * its interest (streams: its followed shards) had, with no hole: that is checked, not assumed.
 *
 * Then the churn: what subscribing to a topic and leaving it costs each way (channels: one
 * SSUBSCRIBE, the shard's position, one SUNSUBSCRIBE; streams: nothing while its shard is
 * followed, the store's join and leave when it is the shard's first or last topic).
 *
 * Last, Redis' instructions per message each way (instructions.ts, callgrind): the figure no
 * other work on the machine can move.
 *
 * Every master and B are pinned to the server core; this process (the publisher) is run on
 * the load generator's core by run.ts.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { Cluster } from 'ioredis';
import { redisKeys, RedisScripts, SCRIPT_DEFINITIONS } from '../../src/store/redis/scripts.js';
import { shardOf } from '../../src/store/redis/shard-of.js';
import { commandStatsBetween, type CommandCost } from '../cluster/command-stats.js';
import { startBenchCluster, type BenchRedisCluster, type Placement } from '../cluster/deployment.js';
import { cpuMicros } from '../loadgen/proc-stats.js';
import { readSocketStats, receivedBetween, receivedBySocket } from '../loadgen/socket-bytes.js';
import { ensureRedis } from '../peers/peers.js';
import { startAppendLoad } from './append-load.js';
import { countInstructions, type InstructionCounts } from './instructions.js';
import { startReader, type ReaderHandle } from './reader-client.js';
import type { ReaderConfig, ReaderSample, Transport } from './reader-node.js';
import { spublishScriptDefinitions } from './spublish-append.js';

/** The name `--scenario` selects. */
export const INTEREST_STEP = 'interest';

/** What node B wants. */
export type ReaderInterest = 'none' | '1 topic' | '10 %' | '50 %' | 'all' | 'pattern *';

/** The append script the publisher runs. */
export type AppendScript = 'append' | 'append + SPUBLISH';

export interface InterestSizes {
  readonly masters: number;
  readonly topics: number;
  readonly lanes: number;
  readonly warmupMs: number;
  readonly windowMs: number;
  /** Churn: rounds over every topic (channels), and follow/leave rounds over every shard (streams). */
  readonly channelChurnCycles: number;
  readonly shardChurnCycles: number;
  /** Messages per phase of the instruction count (under callgrind). */
  readonly instructionMessages: number;
}

export function interestSizes(quick: boolean, windowOverrideMs?: number): InterestSizes {
  return {
    masters: 3,
    topics: quick ? 200 : 1000,
    lanes: 32,
    warmupMs: quick ? 300 : 1000,
    windowMs: windowOverrideMs ?? (quick ? 1000 : 5000),
    channelChurnCycles: quick ? 1 : 5,
    shardChurnCycles: quick ? 20 : 200,
    instructionMessages: quick ? 200 : 1000,
  };
}

/** What B got over the whole row (warm-up and drain included), against what it should have. */
export interface DeliveryCheck {
  readonly published: number;
  readonly failed: number;
  /** Messages of its followed shards (streams) or of its channels (channels). */
  readonly expectedReceived: number;
  readonly expectedOfInterest: number;
  readonly reader: ReaderSample;
}

export interface InterestRow {
  readonly interest: ReaderInterest;
  readonly transport: Transport;
  readonly script: AppendScript;
  /** Exact topics B wants (a pattern node: every topic). */
  readonly interestTopics: number;
  /** Shards B follows (streams) or channels it is subscribed to (channels). */
  readonly followed: number;
  readonly windowSeconds: number;
  /** In the window: messages appended, CPU µs of all masters, their in-command time, bytes to B, B's CPU µs, messages B decoded. */
  readonly published: number;
  readonly redisCpuUs: number;
  readonly commands: readonly CommandCost[];
  readonly bytesToReader: number;
  readonly readerCpuUs: number;
  readonly readerReceived: number;
  readonly check: DeliveryCheck | null;
  /** Load average (1 min) when the row ended: other engineers' work on the machine. */
  readonly loadAverage: number;
  readonly error: string | null;
}

export interface ChurnRow {
  readonly transport: Transport;
  /** What one operation is. */
  readonly operation: string;
  /** The commands B sends for it (the others in `commands` run inside its script). */
  readonly sent: readonly string[];
  readonly operations: number;
  readonly redisCpuUs: number;
  readonly commands: readonly CommandCost[];
  readonly readerCpuUs: number;
  readonly error: string | null;
}

export interface InterestRun {
  readonly sizes: InterestSizes;
  readonly redisServer: string;
  readonly rows: readonly InterestRow[];
  readonly churn: readonly ChurnRow[];
  /** Redis' instructions per message, each way (callgrind); null when not asked for. */
  readonly instructions: InstructionCounts | null;
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  /** Why nothing ran (no redis-server, the cluster did not start). */
  readonly error: string | null;
}

export interface InterestOptions {
  readonly quick: boolean;
  readonly windowMs?: number | undefined;
  /** Tests: other sizes, some rows only, and which churn rows (default: every row, both churns). */
  readonly sizes?: Partial<InterestSizes>;
  readonly rows?: readonly RowPlan[];
  readonly churn?: readonly Transport[];
  /** Count Redis' instructions per message too (instructions.ts; default true). */
  readonly instructions?: boolean;
  /** Where the masters and B run. */
  readonly server: Placement;
  readonly log: (line: string) => void;
}

/** One row to measure. */
export interface RowPlan {
  readonly interest: ReaderInterest;
  readonly transport: Transport;
  readonly script: AppendScript;
}

/** Each interest both ways, next to each other in time, then the pattern node. */
export function rowPlans(): RowPlan[] {
  const levels: ReaderInterest[] = ['none', '1 topic', '10 %', '50 %', 'all'];
  return [
    ...levels.flatMap((interest): RowPlan[] => [
      { interest, transport: 'streams', script: 'append' },
      { interest, transport: 'channels', script: 'append + SPUBLISH' },
    ]),
    { interest: 'pattern *', transport: 'streams', script: 'append + SPUBLISH' },
  ];
}

/** The exact topics of an interest, spread over the topic list (so over the shards). */
export function interestTopics(interest: ReaderInterest, topics: readonly string[]): string[] {
  switch (interest) {
    case 'none':
    case 'pattern *':
      return [];
    case '1 topic':
      return topics.slice(0, 1);
    case '10 %':
      return topics.filter((_, i) => i % 10 === 0);
    case '50 %':
      return topics.filter((_, i) => i % 2 === 0);
    case 'all':
      return [...topics];
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The deployment the rows share: the cluster, its shards placed one per master, and both publishing clients. */
interface Deployment {
  readonly cluster: BenchRedisCluster;
  readonly prefix: string;
  readonly shardPorts: readonly number[];
  readonly scripts: readonly RedisScripts[];
  readonly clients: Readonly<Record<AppendScript, Cluster>>;
}

export async function runInterestScenario(options: InterestOptions): Promise<InterestRun> {
  const { log } = options;
  const sizes = { ...interestSizes(options.quick, options.windowMs), ...options.sizes };
  const start = loadavg();
  const empty = (error: string): InterestRun => ({ sizes, redisServer: '', rows: [], churn: [], instructions: null, loadAverage: { start, end: loadavg() }, error });
  const missing = ensureRedis();
  if (missing) return empty(missing);
  let deployment: Deployment;
  try {
    deployment = await deploy(sizes.masters, options.server);
  } catch (error) {
    return empty(`the cluster did not start: ${(error as Error).message}`);
  }
  const rows: InterestRow[] = [];
  const churn: ChurnRow[] = [];
  let redisServer = '';
  try {
    redisServer = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1] ?? '';
    const topics = Array.from({ length: sizes.topics }, (_, i) => `i${i}`);
    for (const plan of options.rows ?? rowPlans()) {
      log(`interest: B ${plan.interest}, ${plan.transport}`);
      const row = await measureRow(deployment, plan, topics, sizes, options.server).catch((error: unknown) => failedRow(plan, sizes, (error as Error).message));
      log(`interest: ${summarizeRow(row)}`);
      rows.push(row);
    }
    for (const transport of options.churn ?? (['channels', 'streams'] as const)) {
      const row = await measureChurn(deployment, transport, topics, sizes, options.server).catch(
        (error: unknown): ChurnRow => ({ transport, operation: '', sent: [], operations: 0, redisCpuUs: 0, commands: [], readerCpuUs: 0, error: (error as Error).message }),
      );
      log(`interest: churn ${transport}: ${row.error ?? `${row.operations} × ${row.operation}: Redis ${(row.redisCpuUs / row.operations).toFixed(1)} µs, B ${(row.readerCpuUs / row.operations).toFixed(1)} µs each`}`);
      churn.push(row);
    }
  } finally {
    for (const client of Object.values(deployment.clients)) client.disconnect();
    await deployment.cluster.stop();
  }
  let instructions: InstructionCounts | null = null;
  if (options.instructions ?? true) {
    log('interest: instructions per message (redis-server under callgrind)');
    instructions = await countInstructions(sizes.instructionMessages, Math.min(100, sizes.topics)).catch(
      (error: unknown): InstructionCounts => ({ unavailable: `failed: ${(error as Error).message}`, topics: 0, phases: [] }),
    );
    for (const p of instructions.phases) log(`interest: ${p.phase}: ${(p.instructions / p.messages).toFixed(0)} instructions/message`);
  }
  return { sizes, redisServer, rows, churn, instructions, loadAverage: { start, end: loadavg() }, error: null };
}

async function deploy(masters: number, placement: Placement): Promise<Deployment> {
  const cluster = await startBenchCluster(masters, placement);
  try {
    const prefix = 'interest:';
    const keys = Array.from({ length: masters }, (_, k) => redisKeys(prefix, true, k));
    // One shard per master, as an operator places them (docs/scaling.md).
    await cluster.placeKeys(keys.map((k, shard) => ({ key: k.seq, master: shard })));
    const serving = await cluster.mastersOf(keys.map((k) => k.seq));
    const nodes = cluster.masters.map((m) => ({ host: '127.0.0.1', port: m.port }));
    const client = (scripts: Record<string, { lua: string }>): Cluster => new Cluster(nodes, { scripts, redisOptions: { protocol: 2 } });
    return {
      cluster,
      prefix,
      shardPorts: serving.map((index) => cluster.masters[index]!.port),
      scripts: keys.map((k) => new RedisScripts(k)),
      clients: { append: client(SCRIPT_DEFINITIONS), 'append + SPUBLISH': client(spublishScriptDefinitions()) },
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** CPU µs of every master so far, summed. */
function mastersCpuUs(cluster: BenchRedisCluster): number {
  return cluster.masters.reduce((sum, m) => sum + cpuMicros([m.pid]), 0);
}

/** One moment of everything a row measures. */
interface Snapshot {
  readonly redisCpuUs: number;
  readonly commands: Map<string, CommandCost>;
  readonly bytes: Map<string, number>;
  readonly reader: ReaderSample;
  readonly published: number;
  readonly at: number;
}

async function snapshot(deployment: Deployment, reader: ReaderHandle, published: () => number): Promise<Snapshot> {
  const { cluster } = deployment;
  const [commands, readerSample] = await Promise.all([cluster.commandStats(), reader.sample()]);
  const bytes = receivedBySocket(readSocketStats(cluster.masters.map((m) => m.port)), [reader.pid]);
  return { redisCpuUs: mastersCpuUs(cluster), commands, bytes, reader: readerSample, published: published(), at: performance.now() };
}

async function measureRow(deployment: Deployment, plan: RowPlan, topics: readonly string[], sizes: InterestSizes, placement: Placement): Promise<InterestRow> {
  const { cluster } = deployment;
  const shards = deployment.scripts.length;
  await cluster.flush();
  const everything = plan.interest === 'pattern *';
  const wanted = interestTopics(plan.interest, topics);
  const config: ReaderConfig = { transport: plan.transport, prefix: deployment.prefix, shards, shardPorts: deployment.shardPorts, topics: wanted, everything };
  const followedShards = new Set(everything ? Array.from({ length: shards }, (_, k) => k) : wanted.map((t) => shardOf(t, shards)));
  const reader = await startReader(config, placement.cpu);
  try {
    const load = startAppendLoad(deployment.clients[plan.script], deployment.scripts, topics, sizes.lanes);
    let before: Snapshot;
    let after: Snapshot;
    try {
      await sleep(sizes.warmupMs);
      before = await snapshot(deployment, reader, load.published);
      await sleep(sizes.windowMs);
      after = await snapshot(deployment, reader, load.published);
    } finally {
      await load.stop();
    }
    const wantedSet = new Set(wanted);
    let expectedReceived = 0;
    let expectedOfInterest = 0;
    topics.forEach((topic, i) => {
      const n = load.perTopic[i]!;
      if (everything || wantedSet.has(topic)) expectedOfInterest += n;
      if (plan.transport === 'streams' ? followedShards.has(shardOf(topic, shards)) : wantedSet.has(topic)) expectedReceived += n;
    });
    // B catches up with what was published before the publisher stopped.
    let final = await reader.sample();
    for (const deadline = Date.now() + 15_000; final.received < expectedReceived && Date.now() < deadline; final = await reader.sample()) await sleep(100);
    // Anything beyond the expected would show now.
    await sleep(200);
    final = await reader.sample();
    return {
      ...plan,
      interestTopics: everything ? topics.length : wanted.length,
      followed: plan.transport === 'streams' ? followedShards.size : wanted.length,
      windowSeconds: (after.at - before.at) / 1000,
      published: after.published - before.published,
      redisCpuUs: after.redisCpuUs - before.redisCpuUs,
      commands: measuredCommands(before.commands, after.commands),
      bytesToReader: receivedBetween(before.bytes, after.bytes),
      readerCpuUs: after.reader.cpuUs - before.reader.cpuUs,
      readerReceived: after.reader.received - before.reader.received,
      check: { published: load.published(), failed: load.failed(), expectedReceived, expectedOfInterest, reader: final },
      loadAverage: loadavg()[0]!,
      error: null,
    };
  } finally {
    await reader.stop();
  }
}

function failedRow(plan: RowPlan, sizes: InterestSizes, error: string): InterestRow {
  return { ...plan, interestTopics: 0, followed: 0, windowSeconds: sizes.windowMs / 1000, published: 0, redisCpuUs: 0, commands: [], bytesToReader: 0, readerCpuUs: 0, readerReceived: 0, check: null, loadAverage: loadavg()[0]!, error };
}

/** True when B got exactly what it should have, with no hole and no duplicate. */
export function deliveredExactly(check: DeliveryCheck): boolean {
  const r = check.reader;
  return check.failed === 0 && r.received === check.expectedReceived && r.ofInterest === check.expectedOfInterest && r.holes === 0 && r.duplicates === 0;
}

async function measureChurn(deployment: Deployment, transport: Transport, topics: readonly string[], sizes: InterestSizes, placement: Placement): Promise<ChurnRow> {
  const { cluster } = deployment;
  await cluster.flush();
  const config: ReaderConfig = { transport, prefix: deployment.prefix, shards: deployment.scripts.length, shardPorts: deployment.shardPorts, topics: [], everything: false };
  const reader = await startReader(config, placement.cpu);
  try {
    // Connections opened and warm before the sample: a first round outside it.
    if (transport === 'channels') await reader.churnChannels(topics, 1);
    else await reader.churnShards(1);
    const commands = await cluster.commandStats();
    const redisCpuUs = mastersCpuUs(cluster);
    const done = transport === 'channels' ? await reader.churnChannels(topics, sizes.channelChurnCycles) : await reader.churnShards(sizes.shardChurnCycles);
    return {
      transport,
      operation: transport === 'channels' ? 'a topic subscribed (SSUBSCRIBE, GET of its shard\'s seq) and left (SUNSUBSCRIBE)' : 'a shard followed (the JOIN script) and left (HDEL, DEL)',
      sent: transport === 'channels' ? ['ssubscribe', 'get', 'sunsubscribe'] : ['evalsha', 'hdel', 'del'],
      operations: done.operations,
      redisCpuUs: mastersCpuUs(cluster) - redisCpuUs,
      commands: measuredCommands(commands, await cluster.commandStats()),
      readerCpuUs: done.cpuUs,
      error: null,
    };
  } finally {
    await reader.stop();
  }
}

/**
 * Commands run between two samples, less the INFO the sampling itself sends. Commands a script
 * calls are counted too (and inside the script's own time): Redis 7 counts every `call()`.
 */
function measuredCommands(before: ReadonlyMap<string, CommandCost>, after: ReadonlyMap<string, CommandCost>): CommandCost[] {
  return commandStatsBetween(before, after).filter((c) => c.command !== 'info');
}

/** µs or bytes per message published in the window. */
export function perMessage(row: InterestRow, value: number): number {
  return row.published > 0 ? value / row.published : Number.NaN;
}

/** In-command µs per window message of the commands whose name is in `names`. */
export function commandUsPerMessage(row: InterestRow, names: readonly string[]): number {
  return perMessage(row, row.commands.filter((c) => names.includes(c.command)).reduce((sum, c) => sum + c.usec, 0));
}

/** In-command µs per call of one command in the window (NaN when not called). */
export function usPerCall(commands: readonly CommandCost[], name: string): number {
  const c = commands.find((x) => x.command === name);
  return c && c.calls > 0 ? c.usec / c.calls : Number.NaN;
}

export function summarizeRow(row: InterestRow): string {
  if (row.error) return `B ${row.interest}, ${row.transport}: failed: ${row.error}`;
  const f = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');
  const check = row.check && !deliveredExactly(row.check) ? ` (DELIVERY MISMATCH ${JSON.stringify(row.check)})` : '';
  return (
    `B ${row.interest}, ${row.transport}: ${f(row.published / row.windowSeconds, 0)} messages/s; per message: Redis ${f(perMessage(row, row.redisCpuUs))} µs ` +
    `(append script ${f(usPerCall(row.commands, 'evalsha'))} µs/call), B ${f(perMessage(row, row.readerCpuUs), 2)} µs, ${f(perMessage(row, row.bytesToReader), 0)} bytes to B${check}`
  );
}
