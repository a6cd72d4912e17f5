/**
 * The `cluster` scenario: two sse-relay hubs on a Redis Cluster of 1, 2 and 3 masters, for each
 * layout the build has (today's single stream; `--redis-shards` = masters with node-local
 * interest, when the build has the option), measuring publish capacity, fan-out and the cost
 * of an idle node (see phases.ts). Not a peer comparison: it runs once, after the peers.
 *
 * Every process (both hubs, every master) is pinned to the server core, the load generator to
 * its own: on two cores throughput says little about scaling out, so the figures that matter
 * are CPU time per message and per delivery, per process (hubs apart, masters apart, from
 * /proc), and the bytes Redis sent each hub (the kernel's per-socket counters).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Endpoint, PhasePlan, ProbePlan, StepResult } from '../loadgen/plan.js';
import { runLoadgenPhase, type LoadgenProcessOptions } from '../loadgen-process.js';
import { ensureRedis, relayHasOption } from '../peers/peers.js';
import { commandStatsBetween, type CommandCost } from './command-stats.js';
import { startBenchCluster, startHubPair, type BenchRedisCluster, type ClusterLayout, type HubPair, type Placement } from './deployment.js';
import { CLUSTER_MASTERS, CLUSTER_MEASUREMENTS, clusterPhase, clusterStepName, type ClusterMeasurement } from './phases.js';

/** The sse-relay paths every phase uses (the article's routes). */
const ROUTES = { subscribePath: '/messages/subscribe/{id}', publishPath: '/messages/{id}', batchPublishPath: '/messages' } as const;

/** The option that turns sharding on; its absence marks the sharded rows unavailable. */
export const SHARDS_OPTION = '--redis-shards';

/** One measurement of one layout on one cluster. */
export interface ClusterRow {
  readonly step: string;
  readonly measurement: ClusterMeasurement;
  readonly masters: number;
  readonly layout: ClusterLayout;
  /** Why it did not run (the build has no sharding); null when it ran or failed. */
  readonly unavailable: string | null;
  readonly error: string | null;
  /** Keys on each master after the step (shows where the layout put the data). */
  readonly keysPerMaster: readonly number[] | null;
  /**
   * Redis' in-command time over the whole step (warm-up included: divide by the step's
   * `published`), summed over the masters, most time first.
   */
  readonly commands: readonly CommandCost[] | null;
  /** Probes: `hub A`, `hub B`, then `redis 1`… (one per master). */
  readonly result: StepResult | null;
}

export interface ClusterRun {
  readonly shardingAvailable: boolean;
  readonly rows: readonly ClusterRow[];
}

export interface ClusterScenarioOptions {
  readonly quick: boolean;
  readonly durationMs: number | undefined;
  /** `--scenario` names (exact or prefixes); undefined: every step. */
  readonly scenarios: readonly string[] | undefined;
  readonly server: Placement;
  readonly loadgen: LoadgenProcessOptions;
  readonly log: (line: string) => void;
}

/** The step names this scenario has, for selection. */
export function clusterStepNames(): string[] {
  return CLUSTER_MASTERS.flatMap((m) => CLUSTER_MEASUREMENTS.map((k) => clusterStepName(k, m)));
}

/** True when `names` (the `--scenario` list) selects at least one cluster step. */
export function selectsCluster(names: readonly string[] | undefined): boolean {
  return names === undefined || clusterStepNames().some((step) => names.some((n) => step === n || step.startsWith(n)));
}

/** Layouts measured on a cluster of `masters` masters. */
function layouts(masters: number): ClusterLayout[] {
  return [{ name: 'single stream' }, { name: 'sharded', shards: masters }];
}

/** Contended measurements are run once more while the scenario is younger than this. */
const RETRY_UNTIL_MS = 3 * 60_000;

/** How long the worst-off process of a step waited for its core, % of the window. */
const worstWait = (r: StepResult): number => Math.max(r.serverWaitPercent, r.loadgenWaitPercent);


export async function runClusterScenario(options: ClusterScenarioOptions): Promise<ClusterRun> {
  const { log } = options;
  const started = Date.now();
  const wanted = (step: string): boolean => options.scenarios === undefined || options.scenarios.some((n) => step === n || step.startsWith(n));
  const shardingAvailable = relayHasOption(SHARDS_OPTION);
  const rows: ClusterRow[] = [];
  const redisProblem = ensureRedis();
  for (const masters of CLUSTER_MASTERS) {
    const measurements = CLUSTER_MEASUREMENTS.filter((k) => wanted(clusterStepName(k, masters)));
    if (measurements.length === 0) continue;
    const allRows = (layout: ClusterLayout, fields: Partial<ClusterRow>): ClusterRow[] => measurements.map((k) => emptyRow(k, masters, layout, fields));
    if (redisProblem) {
      for (const layout of layouts(masters)) rows.push(...allRows(layout, { unavailable: redisProblem }));
      continue;
    }
    let cluster: BenchRedisCluster | undefined;
    try {
      log(`cluster: starting ${masters} master(s)`);
      cluster = await startBenchCluster(masters, options.server);
    } catch (error) {
      log(`cluster: ${masters} master(s) did not start: ${(error as Error).message}`);
      for (const layout of layouts(masters)) rows.push(...allRows(layout, { error: (error as Error).message }));
      continue;
    }
    try {
      for (const layout of layouts(masters)) {
        const skipped = whyNotRun(layout, shardingAvailable);
        if (skipped) rows.push(...allRows(layout, { unavailable: skipped }));
        else rows.push(...(await measureLayout(cluster, layout, measurements, options, started)));
      }
    } finally {
      await cluster.stop();
    }
  }
  return { shardingAvailable, rows };
}

/** A row with no figures yet. */
function emptyRow(measurement: ClusterMeasurement, masters: number, layout: ClusterLayout, fields: Partial<ClusterRow>): ClusterRow {
  return {
    step: clusterStepName(measurement, masters),
    measurement,
    masters,
    layout,
    unavailable: null,
    error: null,
    keysPerMaster: null,
    commands: null,
    result: null,
    ...fields,
  };
}

/** Why a layout is not measured on this build or cluster; undefined when it is. */
function whyNotRun(layout: ClusterLayout, shardingAvailable: boolean): string | undefined {
  if (layout.name !== 'sharded') return undefined;
  if (!shardingAvailable) return `this build has no ${SHARDS_OPTION}`;
  if (layout.shards === 1) return `${SHARDS_OPTION} 1 is the single stream`;
  return undefined;
}

/**
 * Every measurement of one layout on a flushed cluster and two fresh hubs. A failure is that
 * row's error; the others still run.
 */
async function measureLayout(
  cluster: BenchRedisCluster,
  layout: ClusterLayout,
  measurements: readonly ClusterMeasurement[],
  options: ClusterScenarioOptions,
  scenarioStarted: number,
): Promise<ClusterRow[]> {
  const { log } = options;
  const masters = cluster.masters.length;
  let hubs: HubPair;
  try {
    await cluster.flush();
    hubs = await startHubPair(cluster, layout, options.server);
  } catch (error) {
    log(`cluster: ${masters} master(s), ${describeLayout(layout)}: hubs did not start: ${(error as Error).message}`);
    return measurements.map((k) => emptyRow(k, masters, layout, { error: (error as Error).message }));
  }
  const rows: ClusterRow[] = [];
  try {
    for (const measurement of measurements) {
      const label = `${clusterStepName(measurement, masters)} (${describeLayout(layout)})`;
      const attempt = async (): Promise<Partial<ClusterRow> & { result: StepResult }> => {
        const before = await cluster.commandStats();
        const result = await runMeasurement(measurement, cluster, hubs, options);
        const commands = commandStatsBetween(before, await cluster.commandStats());
        log(`cluster: ${label}: ${summarize(result)}`);
        return { result, commands, keysPerMaster: await cluster.keysPerMaster() };
      };
      log(`cluster: ${label}`);
      try {
        let kept = await attempt();
        // As the peers' phases: a contended attempt is run once more while there is time, and
        // the less contended one kept.
        if (kept.result.contended && !options.quick && Date.now() - scenarioStarted < RETRY_UNTIL_MS) {
          log(`cluster: ${label}: contended by other processes; running it again`);
          const again = await attempt();
          kept = worstWait(again.result) < worstWait(kept.result) ? again : kept;
          kept.result.notes.push('least contended of 2 attempts');
        }
        rows.push(emptyRow(measurement, masters, layout, kept));
      } catch (error) {
        log(`cluster: ${label} failed: ${(error as Error).message}`);
        rows.push(emptyRow(measurement, masters, layout, { error: (error as Error).message }));
      }
    }
  } finally {
    await hubs.stop();
  }
  return rows;
}

/** `single stream` or `sharded, 3 shards`. */
export function describeLayout(layout: ClusterLayout): string {
  return layout.shards === undefined ? layout.name : `${layout.name}, ${SHARDS_OPTION} ${layout.shards}`;
}

/**
 * The load generator's plan for one measurement on a running deployment: both hubs as targets
 * (hub A alone for the idle node), every process measured, and each hub and each master as a
 * probe of its own (the hubs with what their sockets received from the masters).
 */
export function clusterPlan(
  measurement: ClusterMeasurement,
  cluster: BenchRedisCluster,
  hubs: HubPair,
  options: Pick<ClusterScenarioOptions, 'quick' | 'durationMs' | 'server' | 'loadgen'>,
): PhasePlan {
  const spec = clusterPhase(measurement, cluster.masters.length, options.quick, options.durationMs);
  const endpoint = (port: number): Endpoint => ({ host: '127.0.0.1', port });
  const [a, b] = hubs.hubs;
  const redisPorts = cluster.masters.map((m) => m.port);
  const probes: ProbePlan[] = [
    { name: 'hub A', pids: [a.pid], receivedFromPorts: redisPorts },
    { name: 'hub B', pids: [b.pid], receivedFromPorts: redisPorts },
    ...cluster.masters.map((m, i) => ({ name: `redis ${i + 1}`, pids: [m.pid] })),
  ];
  return {
    ...spec,
    ...ROUTES,
    // The idle node takes neither subscribers nor publishes: it only runs beside A.
    targets: measurement === 'idle-node' ? [endpoint(a.port)] : [endpoint(a.port), endpoint(b.port)],
    serverPids: [a.pid, b.pid, ...cluster.masters.map((m) => m.pid)],
    probes,
    serverCore: options.server.cpu === undefined ? undefined : Number(options.server.cpu),
    loadgenCore: options.loadgen.cpu === undefined ? undefined : Number(options.loadgen.cpu),
  };
}

/** One measurement in a load-generator process of its own, on a running deployment. */
async function runMeasurement(measurement: ClusterMeasurement, cluster: BenchRedisCluster, hubs: HubPair, options: ClusterScenarioOptions): Promise<StepResult> {
  const plan = clusterPlan(measurement, cluster, hubs, options);
  const workDir = mkdtempSync(path.join(tmpdir(), 'sse-bench-cluster-'));
  try {
    const phase = await runLoadgenPhase(plan, workDir, options.loadgen);
    if (phase.subscribeError) throw new Error(phase.subscribeError);
    const step = phase.steps[0];
    if (!step) throw new Error('the load generator reported no step');
    return step;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Messages and deliveries in the measured window. */
export function windowCounts(result: StepResult): { messages: number; deliveries: number } {
  return { messages: result.publishesPerSecond * result.windowSeconds, deliveries: result.deliveriesPerSecond * result.windowSeconds };
}

/** CPU µs of the probes whose name starts with `prefix`, summed. */
export function probeCpuUs(result: StepResult, prefix: string): number {
  return (result.probes ?? []).filter((p) => p.name.startsWith(prefix)).reduce((sum, p) => sum + p.cpuUs, 0);
}

function summarize(result: StepResult): string {
  const { messages } = windowCounts(result);
  const per = (us: number): string => (messages > 0 ? (us / messages).toFixed(1) : '–');
  const b = result.probes?.find((p) => p.name === 'hub B');
  return (
    `${result.publishesPerSecond.toFixed(0)} messages/s, ${result.deliveriesPerSecond.toFixed(0)} deliveries/s, lost ${result.lost}; ` +
    `CPU µs/message: hubs ${per(probeCpuUs(result, 'hub'))}, redis ${per(probeCpuUs(result, 'redis'))}, hub B ${per(probeCpuUs(result, 'hub B'))}; ` +
    `Redis → hub B ${b?.bytesReceived == null || messages === 0 ? '–' : (b.bytesReceived / messages).toFixed(0)} bytes/message` +
    (result.valid ? '' : ' (INVALID)') +
    (result.contended ? ' (CONTENDED)' : '')
  );
}
