/**
 * Runs one phase of the plan: open the subscriptions, measure idle memory, then each load step
 * (publish for warm-up plus the measured window, stop, wait for every delivery, count).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LatencyHistogram } from './histogram.js';
import type { IdleMemoryResult, LatencySummary, LoadStepPlan, PhasePlan, PhaseResult, ProbePlan, ProbeResult, StepResult, TargetResult } from './plan.js';
import { coreTicks, cpuMicros, heldOffNs, processTrees, rssBytes, runQueueWaitNs, sampleProcesses } from './proc-stats.js';
import { readSocketStats, receivedBetween, receivedBySocket } from './socket-bytes.js';
import { Publisher } from './publisher.js';
import { SubscriberPool } from './subscribers.js';

/** Above this share of its core the load generator, not the server, may be the limit. */
export const LOADGEN_CPU_LIMIT = 90;

/** Above this share of the window spent waiting for its core, a process counts as contended. */
export const CONTENDED_WAIT_PERCENT = 10;

/** Progress lines go here (stderr of the load generator). */
export type Log = (line: string) => void;

export async function runPhase(plan: PhasePlan, log: Log): Promise<PhaseResult> {
  const pathOf = (template: string) => (id: string) => template.replace('{id}', encodeURIComponent(id));
  const tree = processTrees(plan.serverPids);
  const rssBefore = rssBytes(tree);

  const topics = plan.subscriptions?.topics ?? plan.publishTopics ?? [];
  const perTopic = plan.subscriptions?.perTopic ?? 0;
  const subscribePath = pathOf(plan.subscribePath);
  const pool = new SubscriberPool(
    plan.targets.map((t) => ({ host: t.host, port: t.port, path: subscribePath })),
    plan.subscriptions?.topics ?? [],
    perTopic,
  );
  const requested = (plan.subscriptions?.topics.length ?? 0) * perTopic;
  const connectStart = performance.now();
  let subscribeError: string | null = null;
  let failed = 0;
  if (requested > 0) {
    log(`${plan.phase}: opening ${requested} subscriptions`);
    const opened = await pool.open();
    failed = opened.failed;
    const firstError = opened.firstError;
    if (failed > 0) subscribeError = `${failed} of ${requested} subscriptions failed: ${firstError ?? 'unknown'}`;
    log(`${plan.phase}: ${requested - failed} subscriptions open in ${((performance.now() - connectStart) / 1000).toFixed(1)} s`);
  }
  const connectSeconds = (performance.now() - connectStart) / 1000;

  let idleMemory: IdleMemoryResult | null = null;
  if (plan.idleMemory) {
    await sleep(plan.idleMemory.settleMs);
    // Median of three samples half a second apart: RSS moves a little while a GC runs.
    const samples: number[] = [];
    for (let k = 0; k < 3; k++) {
      if (k > 0) await sleep(500);
      samples.push(rssBytes(processTrees(plan.serverPids)));
    }
    samples.sort((a, b) => a - b);
    const after = samples[1]!;
    const open = pool.openCount;
    idleMemory = {
      step: plan.idleMemory.step,
      phase: plan.phase,
      valid: subscribeError === null && open === requested,
      notes: subscribeError ? [subscribeError] : [],
      connections: open,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: after,
      bytesPerConnection: open > 0 ? (after - rssBefore) / open : 0,
    };
    log(`${plan.phase}: idle memory ${(idleMemory.bytesPerConnection / 1024).toFixed(1)} KiB per connection`);
  }

  const steps: StepResult[] = [];
  let stepNumber = 0;
  for (const step of plan.steps) {
    stepNumber++;
    if (step.batch !== undefined && plan.batchPublishPath === undefined) {
      log(`${plan.phase}/${step.step}: skipped, the peer has no batch publish route`);
      continue;
    }
    const result = await runStep(plan, step, stepNumber, pool, topics, pathOf(plan.publishPath), tree, subscribeError, log);
    if (!step.discard) steps.push(result);
  }
  pool.close();
  return { phase: plan.phase, subscribersRequested: requested, subscribersOpened: requested - failed, subscribeError, connectSeconds, idleMemory, steps };
}

async function runStep(
  plan: PhasePlan,
  step: LoadStepPlan,
  stepNumber: number,
  pool: SubscriberPool,
  topics: readonly string[],
  publishPath: (id: string) => string,
  tree: number[],
  subscribeError: string | null,
  log: Log,
): Promise<StepResult> {
  // A step over a partial set of subscriptions measures something else than it says.
  const notes: string[] = subscribeError ? [subscribeError] : [];
  const batch = step.batch === undefined ? undefined : { size: step.batch, path: plan.batchPublishPath! };
  const publisher = new Publisher(
    plan.targets.map((t) => ({ host: t.host, port: t.port, path: publishPath })),
    topics,
    step.connections,
    batch,
  );
  await publisher.connect();
  pool.resetStep(stepNumber, publisher.connectionCount);
  publisher.resetStep(stepNumber);
  const counters = pool.counters;
  const perTopic = pool.perTopic;
  const subscribers = pool.size;
  const closedBefore = pool.closedCount;

  const startMs = performance.now();
  const windowStartMs = startMs + step.warmupMs;
  const windowEndMs = windowStartMs + step.durationMs;
  counters.windowStartUs = publisher.windowStartUs = windowStartMs * 1000;
  counters.windowEndUs = publisher.windowEndUs = windowEndMs * 1000;

  let publishing = true;
  const window = step.window ?? Number.POSITIVE_INFINITY;
  // Saturated: keep `window` messages outstanding (sent, not yet received by every subscriber).
  const pumpSaturated = (): void => {
    if (!publishing) return;
    const done = perTopic > 0 ? Math.floor(counters.delivered / perTopic) : publisher.acked + publisher.failed;
    const budget = Math.min(window - (publisher.sent - done), 1_000_000);
    if (budget > 0) publisher.fill(budget, step.pipeline);
  };
  let pumpScheduled = false;
  const schedulePump = (): void => {
    if (pumpScheduled || !publishing) return;
    pumpScheduled = true;
    setImmediate(() => {
      pumpScheduled = false;
      pumpSaturated();
    });
  };
  let rateTimer: NodeJS.Timeout | undefined;
  if (step.mode === 'saturated') {
    counters.onProgress = schedulePump;
    publisher.onAnswer = schedulePump;
    pumpSaturated();
  } else {
    const rate = step.rate ?? 1;
    counters.onProgress = () => {};
    publisher.onAnswer = () => {};
    const tick = (): void => {
      if (!publishing) return;
      const due = Math.floor(((performance.now() - startMs) / 1000) * rate) + 1 - publisher.sent;
      if (due > 0) publisher.fill(due, step.pipeline);
    };
    tick();
    rateTimer = setInterval(tick, Math.min(20, Math.max(1, 1000 / rate / 4)));
  }

  await sleepUntil(windowStartMs);
  const cpu0 = process.cpuUsage();
  const server0 = sampleProcesses(tree);
  const loadgenWait0 = runQueueWaitNs([process.pid]);
  const serverCore0 = plan.serverCore === undefined ? undefined : coreTicks(plan.serverCore);
  const loadgenCore0 = plan.loadgenCore === undefined ? undefined : coreTicks(plan.loadgenCore);
  const probes0 = sampleProbes(plan.probes);
  const t0 = performance.now();
  await sleepUntil(windowEndMs);
  const cpu1 = process.cpuUsage(cpu0);
  const server1 = sampleProcesses(tree);
  const probes1 = sampleProbes(plan.probes);
  const loadgenWait1 = runQueueWaitNs([process.pid]);
  const busyPercent = (core: number | undefined, before: { busy: number; total: number } | undefined): number | null => {
    if (core === undefined || !before) return null;
    const after = coreTicks(core);
    return after.total > before.total ? ((after.busy - before.busy) / (after.total - before.total)) * 100 : null;
  };
  const serverCoreBusyPercent = busyPercent(plan.serverCore, serverCore0);
  const loadgenCoreBusyPercent = busyPercent(plan.loadgenCore, loadgenCore0);
  const t1 = performance.now();
  publishing = false;
  if (rateTimer) clearInterval(rateTimer);
  const serverRss = rssBytes(tree);

  // Answers first, then deliveries: every acknowledged message must reach every subscriber.
  const drainDeadline = performance.now() + step.drainTimeoutMs;
  while (publisher.inflight > 0 && publisher.openConnections > 0 && performance.now() < drainDeadline) await sleep(10);
  if (publisher.inflight > 0) notes.push(`${publisher.inflight} publishes unanswered`);
  let expected = 0;
  for (let t = 0; t < topics.length; t++) expected += publisher.ackedByTopic[t]! * perTopic;
  let lastDelivered = -1;
  let lastProgress = performance.now();
  while (counters.delivered < expected && performance.now() < drainDeadline) {
    if (counters.delivered !== lastDelivered) {
      lastDelivered = counters.delivered;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > (step.drainIdleMs ?? 5000)) {
      break; // Nothing arrived for a while: what is missing is lost.
    }
    await sleep(10);
  }
  publisher.close();

  let lost = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  for (const sub of pool.subscriptions) {
    const want = publisher.ackedByTopic[sub.topic]!;
    if (sub.received < want) lost += want - sub.received;
    else duplicates += sub.received - want;
    outOfOrder += sub.outOfOrder;
  }
  const windowSeconds = (windowEndMs - windowStartMs) / 1000;
  const measuredSeconds = (t1 - t0) / 1000;
  const loadgenCpuPercent = ((cpu1.user + cpu1.system) / 1e6 / measuredSeconds) * 100;
  const serverCpuUs = sum(server1.cpuUs) - sum(server0.cpuUs);
  const deliveriesPerSecond = counters.deliveredInWindow / windowSeconds;
  const publishesPerSecond = publisher.ackedInWindow / windowSeconds;
  const targetRate = step.mode === 'rate' ? (step.rate ?? null) : null;

  let valid = subscribeError === null;
  if (loadgenCpuPercent > LOADGEN_CPU_LIMIT) {
    valid = false;
    notes.push(`load generator at ${loadgenCpuPercent.toFixed(0)}% of its core: figures may be its limit, not the server's`);
  }
  if (targetRate !== null && publishesPerSecond < targetRate * 0.95) notes.push(`publish rate ${publishesPerSecond.toFixed(1)}/s below the target ${targetRate}/s`);
  if (publisher.reconnects > 0) notes.push(`the server closed publishing connections ${publisher.reconnects} times`);
  if (publisher.failed > 0) {
    notes.push(`${publisher.failed} publishes failed (${JSON.stringify(publisher.statuses)})`);
  }
  if (publisher.protocolErrors.length > 0) {
    valid = false;
    notes.push(`publisher errors: ${[...new Set(publisher.protocolErrors)].slice(0, 3).join('; ')}`);
  }
  if (lost > 0) notes.push(`${lost} deliveries lost`);
  if (duplicates > 0) notes.push(`${duplicates} deliveries duplicated`);
  if (outOfOrder > 0) notes.push(`${outOfOrder} deliveries out of order`);
  const serverCpuPercent = (serverCpuUs / 1e6 / measuredSeconds) * 100;
  const serverWaitPercent = (heldOffNs(server0, server1) / 1e9 / measuredSeconds) * 100;
  const loadgenWaitPercent = ((loadgenWait1 - loadgenWait0) / 1e9 / measuredSeconds) * 100;
  const contended = serverWaitPercent > CONTENDED_WAIT_PERCENT || loadgenWaitPercent > CONTENDED_WAIT_PERCENT;
  if (contended) {
    notes.push(
      `contended: ready but waiting for a CPU ${serverWaitPercent.toFixed(0)}% of the window (server), ` +
        `${loadgenWaitPercent.toFixed(0)}% (load generator); throughput and latency are partly other processes' doing, CPU µs per delivery is not`,
    );
  }
  const subscribersClosed = pool.closedCount - closedBefore;
  if (subscribersClosed > 0) notes.push(`${subscribersClosed} subscribers disconnected by the server`);

  const delivered = counters.delivered;
  const subscribersOn = plan.targets.map(() => 0);
  const deliveredOn = plan.targets.map(() => 0);
  for (const sub of pool.subscriptions) {
    if (!sub.closed) subscribersOn[sub.target]!++;
    deliveredOn[sub.target]! += sub.received;
  }
  const targets: TargetResult[] = plan.targets.map((t, i) => ({
    endpoint: `${t.host}:${t.port}`,
    subscribers: subscribersOn[i]!,
    published: publisher.ackedByTarget[i]!,
    delivered: deliveredOn[i]!,
  }));
  const result: StepResult = {
    step: step.step,
    phase: plan.phase,
    valid,
    notes,
    subscribers,
    topics: topics.length,
    windowSeconds,
    targetRate,
    published: publisher.acked,
    publishesPerSecond,
    publishFailed: publisher.failed,
    publishLatencyUs: summarize(publisher.latency),
    expected,
    delivered,
    deliveriesPerSecond,
    lost,
    duplicates,
    outOfOrder,
    strays: counters.strays,
    subscribersClosed,
    targets,
    latencyUs: summarize(counters.latency),
    serverCpuPercent,
    serverCoreBusyPercent,
    serverWaitPercent,
    loadgenWaitPercent,
    contended,
    loadgenCoreBusyPercent,
    serverCpuUsPerDelivery: counters.deliveredInWindow > 0 ? serverCpuUs / counters.deliveredInWindow : null,
    serverCpuUsPerPublish: publisher.ackedInWindow > 0 ? serverCpuUs / publisher.ackedInWindow : null,
    serverRssBytes: serverRss,
    loadgenCpuPercent,
    ...(plan.probes ? { probes: probeResults(plan.probes, probes0, probes1) } : {}),
  };
  log(
    `${plan.phase}/${step.step}: ${deliveriesPerSecond.toFixed(0)} deliveries/s, ${publishesPerSecond.toFixed(0)} publishes/s, ` +
      `lost ${lost}, p50 ${fmtMs(result.latencyUs.p50)} p99 ${fmtMs(result.latencyUs.p99)} max ${fmtMs(result.latencyUs.max)}, ` +
      `server CPU ${result.serverCpuPercent.toFixed(0)}%${serverCoreBusyPercent === null ? '' : ` (its core ${serverCoreBusyPercent.toFixed(0)}% busy)`}, ` +
      `load generator CPU ${loadgenCpuPercent.toFixed(0)}%, waiting for a CPU: server ${serverWaitPercent.toFixed(0)}%, ` +
      `load generator ${loadgenWaitPercent.toFixed(0)}%${valid ? '' : ' (INVALID)'}${contended ? ' (CONTENDED)' : ''}` +
      (targets.length > 1 ? `; per node ${targets.map((t) => `${t.endpoint}: ${t.subscribers} subscribers, ${t.published} publishes`).join(', ')}` : ''),
  );
  counters.onProgress = () => {};
  return result;
}

/** CPU time and, where asked, bytes received per socket of each probe, at one moment. */
interface ProbeSample {
  readonly cpuUs: number;
  readonly received: ReadonlyMap<string, number> | undefined;
}

function sampleProbes(probes: readonly ProbePlan[] | undefined): ProbeSample[] {
  if (!probes) return [];
  const ports = [...new Set(probes.flatMap((p) => p.receivedFromPorts ?? []))];
  // One `ss` for all probes, so their byte counts are of one moment.
  const sockets = ports.length > 0 ? readSocketStats(ports) : [];
  return probes.map((probe) => {
    const pids = processTrees(probe.pids);
    const from = new Set(probe.receivedFromPorts ?? []);
    return {
      cpuUs: cpuMicros(pids),
      received: probe.receivedFromPorts ? receivedBySocket(sockets.filter((s) => from.has(s.peerPort)), pids) : undefined,
    };
  });
}

function probeResults(probes: readonly ProbePlan[], before: readonly ProbeSample[], after: readonly ProbeSample[]): ProbeResult[] {
  return probes.map((probe, i) => ({
    name: probe.name,
    cpuUs: after[i]!.cpuUs - before[i]!.cpuUs,
    bytesReceived: after[i]!.received && before[i]!.received ? receivedBetween(before[i]!.received!, after[i]!.received!) : null,
  }));
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function summarize(h: LatencyHistogram): LatencySummary {
  if (h.count === 0) return { count: 0, p50: null, p99: null, max: null };
  return { count: h.count, p50: h.quantile(0.5), p99: h.quantile(0.99), max: h.max };
}

function fmtMs(us: number | null): string {
  return us === null ? '-' : `${(us / 1000).toFixed(1)} ms`;
}

async function sleepUntil(ms: number): Promise<void> {
  const wait = ms - performance.now();
  if (wait > 0) await sleep(wait);
}
