/**
 * The scenarios, grouped in phases: a phase is one fresh server and one load-generator process;
 * its subscriptions stay open through its steps. Each step's name is what `--scenario` selects.
 */
import type { LoadStepPlan } from './loadgen/plan.js';

/** A phase before it is bound to a peer (endpoints, paths and pids come from the adapter). */
export interface PhaseSpec {
  readonly phase: string;
  readonly subscriptions?: { readonly topics: readonly string[]; readonly perTopic: number };
  readonly idleMemory?: { readonly step: string; readonly settleMs: number };
  readonly publishTopics?: readonly string[];
  readonly steps: readonly LoadStepPlan[];
}

/** What each step measures, for the README and the table. */
export const SCENARIO_DESCRIPTIONS: Readonly<Record<string, string>> = {
  'idle-memory-10k': 'RSS growth of the server per open, idle subscription (10,000 subscriptions on one id; RSS after − RSS before, ÷ N).',
  'latency-10k-1hz': 'Publish→receive latency with 10,000 subscribers on one id and 1 message/s (every delivery of every message is timed).',
  'fanout-10k-rate': '10,000 subscribers on one id, 2 messages/s (20,000 deliveries/s): latency and server CPU per delivery at a fixed, moderate load.',
  'fanout-10k-saturated': '10,000 subscribers on one id, published as fast as the server delivers: at most 100 messages sent but not yet received by every subscriber, pipelined on one keep-alive connection.',
  'fanout-1k-rate': '1,000 subscribers on one id, 20 messages/s (20,000 deliveries/s).',
  'fanout-1k-saturated': '1,000 subscribers on one id, saturated as above (window 100 messages).',
  'direct-1k-saturated': '1,000 ids with one subscriber each; publishes round-robin over the ids on 16 keep-alive connections (up to 8 pipelined each, at most 128 messages undelivered): the cost of handling a POST.',
  'direct-1k-serial-1': '1,000 ids with one subscriber each; one publisher connection, one request at a time (how curl, fetch and PHP publish; no pipelining).',
  'direct-1k-serial-4': 'As above on 4 keep-alive connections, one request at a time each.',
  'direct-1k-serial-50': 'As above on 50 keep-alive connections, one request at a time each.',
  'direct-1k-batch-100-serial-4': 'As direct-1k-serial-4 (same subscribers, 4 connections, one request at a time each), but each request a batch publish of 100 messages (`POST /messages`, a JSON array; consecutive ids round-robin over the connection\'s ids): messages/s against single publishes. Peers without a batch route skip it.',
  'publish-1': 'No subscribers; one publisher, one request at a time: publish throughput and latency (store commit included).',
  'publish-50': 'No subscribers; 50 concurrent publishers (connections), one request at a time each, 50 ids.',
};

/** Steps in the order the table lists them. */
export const STEP_ORDER = Object.keys(SCENARIO_DESCRIPTIONS);

/** `durationOverrideMs`: the measured window of every load step (for profiling runs). */
export function buildPhases(quick: boolean, durationOverrideMs?: number): PhaseSpec[] {
  const big = quick ? 2_000 : 10_000;
  const small = quick ? 500 : 1_000;
  const directIds = quick ? 200 : 1_000;
  const warmupMs = quick ? 500 : 1_000;
  const durationMs = durationOverrideMs ?? (quick ? 2_000 : 5_000);
  const drainTimeoutMs = 60_000;
  const saturated = (step: string, window: number): LoadStepPlan => ({
    step,
    mode: 'saturated',
    window,
    connections: 1,
    pipeline: window,
    warmupMs,
    durationMs,
    drainTimeoutMs,
  });
  const rate = (step: string, perSecond: number, duration = durationMs, warmup = warmupMs): LoadStepPlan => ({
    step,
    mode: 'rate',
    rate: perSecond,
    connections: 1,
    pipeline: 64,
    warmupMs: warmup,
    durationMs: duration,
    drainTimeoutMs,
  });
  // Low-rate steps see few messages: warm the server's JIT first, as a running hub would be.
  const warmUp: LoadStepPlan = { ...rate('warm-up', 20, quick ? 1_000 : 2_000, 0), discard: true };
  return [
    {
      phase: 'fanout-10k',
      subscriptions: { topics: ['fan'], perTopic: big },
      idleMemory: { step: 'idle-memory-10k', settleMs: quick ? 1_000 : 2_000 },
      steps: [
        warmUp,
        // 20 messages: with fewer, the p99 of all deliveries is decided by the one slowest message.
        rate('latency-10k-1hz', 1, durationOverrideMs ?? (quick ? 4_000 : 20_000), quick ? 1_000 : 2_000),
        rate('fanout-10k-rate', 2),
        saturated('fanout-10k-saturated', 100),
      ],
    },
    {
      phase: 'fanout-1k',
      subscriptions: { topics: ['fan'], perTopic: small },
      steps: [warmUp, rate('fanout-1k-rate', 20), saturated('fanout-1k-saturated', 100)],
    },
    {
      phase: 'direct-1k',
      subscriptions: { topics: Array.from({ length: directIds }, (_, i) => `d${i}`), perTopic: 1 },
      steps: [
        {
          step: 'direct-1k-saturated',
          mode: 'saturated',
          window: 128,
          connections: 16,
          pipeline: 8,
          warmupMs,
          durationMs,
          drainTimeoutMs,
        },
        // Real publishers do not pipeline: each connection waits for its answer.
        ...[1, 4, 50].map(
          (connections): LoadStepPlan => ({
            step: `direct-1k-serial-${connections}`,
            mode: 'saturated',
            window: 128,
            connections,
            pipeline: 1,
            warmupMs,
            durationMs,
            drainTimeoutMs,
          }),
        ),
        {
          step: 'direct-1k-batch-100-serial-4',
          mode: 'saturated',
          // Full batches only: room for one batch in flight per connection, and one being delivered.
          window: 4 * 100 * 2,
          connections: 4,
          pipeline: 1,
          batch: 100,
          warmupMs,
          durationMs,
          drainTimeoutMs,
        },
      ],
    },
    {
      phase: 'publish',
      publishTopics: Array.from({ length: 50 }, (_, i) => `p${i}`),
      steps: [
        { step: 'publish-1', mode: 'saturated', connections: 1, pipeline: 1, warmupMs, durationMs, drainTimeoutMs },
        { step: 'publish-50', mode: 'saturated', connections: 50, pipeline: 1, warmupMs, durationMs, drainTimeoutMs },
      ],
    },
  ];
}

/** Keeps the steps whose name matches one of `names` (exact, or a prefix such as `fanout-10k`). */
export function selectSteps(phases: PhaseSpec[], names: readonly string[] | undefined): PhaseSpec[] {
  if (!names || names.length === 0) return phases;
  const wanted = (step: string): boolean => names.some((n) => step === n || step.startsWith(n));
  const out: PhaseSpec[] = [];
  for (const phase of phases) {
    const steps = phase.steps.filter((s) => wanted(s.step));
    if (steps.some((s) => s.mode === 'rate')) steps.unshift(...phase.steps.filter((s) => s.discard));
    const idle = phase.idleMemory && wanted(phase.idleMemory.step) ? phase.idleMemory : undefined;
    if (steps.length === 0 && !idle) continue;
    out.push({ ...phase, steps, ...(idle ? { idleMemory: idle } : { idleMemory: undefined }) } as PhaseSpec);
  }
  return out;
}
