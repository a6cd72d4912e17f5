/** What the orchestrator asks the load generator to do, and what it answers (JSON both ways). */

/** Where one node of the server under test listens. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** One server under test, and one group of measurements against it. */
export interface PhasePlan {
  readonly phase: string;
  /**
   * The server's nodes (one for most peers; two hubs for a cluster). Subscribers and publishing
   * connections are spread round-robin over them (see SubscriberPool and Publisher).
   */
  readonly targets: readonly Endpoint[];
  /** Paths with `{id}` where the topic goes. */
  readonly subscribePath: string;
  readonly publishPath: string;
  /** Path of a batch publish (a JSON array of `{id, message}`); undefined: the peer has none. */
  readonly batchPublishPath?: string | undefined;
  /**
   * The server's processes: CPU, memory and run-queue figures are summed over them and their
   * children (nginx's worker; both hubs and their redis-server).
   */
  readonly serverPids: readonly number[];
  /** CPUs the server and the load generator are pinned to, when pinned (for /proc/stat). */
  readonly serverCore?: number | undefined;
  readonly loadgenCore?: number | undefined;
  /** Subscriptions opened before the steps and kept through them. */
  readonly subscriptions?: { readonly topics: readonly string[]; readonly perTopic: number } | undefined;
  /** Report RSS per idle connection once the subscriptions are open and `settleMs` passed. */
  readonly idleMemory?: { readonly step: string; readonly settleMs: number } | undefined;
  /** Topics to publish to when there are no subscriptions. */
  readonly publishTopics?: readonly string[] | undefined;
  /** Processes also measured each on its own (each hub of a cluster, each Redis master). */
  readonly probes?: readonly ProbePlan[] | undefined;
  readonly steps: readonly LoadStepPlan[];
}

/** A group of the server's processes whose figures a step reports apart from the total. */
export interface ProbePlan {
  readonly name: string;
  /** Measured with their children. */
  readonly pids: readonly number[];
  /**
   * Also count the bytes their TCP sockets received from these remote ports (Redis towards a
   * hub node: its egress to that node), from the kernel's per-socket counters.
   */
  readonly receivedFromPorts?: readonly number[] | undefined;
}

/** What one probe's processes used inside a step's measured window. */
export interface ProbeResult {
  readonly name: string;
  /** User plus system CPU time, µs (10 ms ticks). */
  readonly cpuUs: number;
  /** Bytes received from `receivedFromPorts`; null when the probe asked for none. */
  readonly bytesReceived: number | null;
}

/** One measurement: publish for warm-up plus duration, then wait for every delivery. */
export interface LoadStepPlan {
  readonly step: string;
  /**
   * `rate`: `rate` messages per second in all, whatever the server does. `saturated`: as fast as
   * the server answers and delivers, with at most `window` messages not yet received by every
   * subscriber (or not yet answered, without subscribers).
   */
  readonly mode: 'rate' | 'saturated';
  readonly rate?: number | undefined;
  readonly window?: number | undefined;
  /**
   * Publishing connections (at least one per target, at most one per topic unless more are
   * needed to reach every target), and requests in flight per connection (pipelining above 1).
   */
  readonly connections: number;
  readonly pipeline: number;
  /**
   * Messages per request, sent as one batch publish (a JSON array to the peer's
   * `batchPublishPath`); undefined: one message per request. Only full batches are sent, so a
   * saturated step's `window` must hold `connections × pipeline × batch`. A peer without a
   * batch route skips the step.
   */
  readonly batch?: number | undefined;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Longest wait for the last deliveries once publishing stopped. */
  readonly drainTimeoutMs: number;
  /** Deliveries missing after this long without any arriving are lost (default 5,000 ms). */
  readonly drainIdleMs?: number | undefined;
  /** A warm-up run (JIT, caches) whose figures are not reported. */
  readonly discard?: boolean | undefined;
}

/** Latency summary, microseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

/** What one node of the server saw in a step. */
export interface TargetResult {
  readonly endpoint: string;
  /** Subscriptions on it still open at the end of the step. */
  readonly subscribers: number;
  /** Publishes it acknowledged. */
  readonly published: number;
  /** Deliveries its subscribers received. */
  readonly delivered: number;
}

export interface StepResult {
  readonly step: string;
  readonly phase: string;
  /** False when a figure cannot be trusted (the load generator saturated its core, ...). */
  readonly valid: boolean;
  readonly notes: string[];
  readonly subscribers: number;
  readonly topics: number;
  readonly windowSeconds: number;
  readonly targetRate: number | null;
  /** Publishes answered 2xx (all of the step), and per second inside the window. */
  readonly published: number;
  readonly publishesPerSecond: number;
  readonly publishFailed: number;
  readonly publishLatencyUs: LatencySummary;
  /** Deliveries expected (acknowledged publishes × subscribers of their topic) and received. */
  readonly expected: number;
  readonly delivered: number;
  readonly deliveriesPerSecond: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly strays: number;
  readonly subscribersClosed: number;
  /** Per node of the server, in the order of the plan's targets. */
  readonly targets: readonly TargetResult[];
  readonly latencyUs: LatencySummary;
  readonly serverCpuPercent: number;
  /**
   * How busy the server's core was in all (any process, interrupts included), when pinned. Far
   * above serverCpuPercent: something else ran there (other work on this shared machine, or
   * loopback's softirq work not charged to the server).
   */
  readonly serverCoreBusyPercent: number | null;
  /**
   * Share of the window the server (or the load generator) was ready to run but waited for its
   * core, held off by other processes (main threads' run-queue wait from schedstat; for a server
   * of several processes, a lower bound that leaves out their waiting for each other: see
   * heldOffNs).
   */
  readonly serverWaitPercent: number;
  readonly loadgenWaitPercent: number;
  /**
   * Either waited more than 10% of the window: throughput and latency are partly other
   * processes' doing. CPU µs per delivery is not affected.
   */
  readonly contended: boolean;
  readonly loadgenCoreBusyPercent: number | null;
  /** Server CPU time per delivery (per publish when nothing is delivered), µs. */
  readonly serverCpuUsPerDelivery: number | null;
  readonly serverCpuUsPerPublish: number | null;
  readonly serverRssBytes: number;
  readonly loadgenCpuPercent: number;
  /** The plan's probes, in its order (absent when it had none). */
  readonly probes?: readonly ProbeResult[] | undefined;
}

export interface IdleMemoryResult {
  readonly step: string;
  readonly phase: string;
  readonly valid: boolean;
  readonly notes: string[];
  readonly connections: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly bytesPerConnection: number;
}

export interface PhaseResult {
  readonly phase: string;
  readonly subscribersRequested: number;
  readonly subscribersOpened: number;
  readonly subscribeError: string | null;
  readonly connectSeconds: number;
  readonly idleMemory: IdleMemoryResult | null;
  readonly steps: StepResult[];
}
