/**
 * The churn-and-soak run: a hub process (SQLite store, as users run it) under thousands of
 * subscribers that connect and disconnect continuously on both APIs (some resuming with
 * Last-Event-ID, some cut off abruptly), steady publishing, and a few slow consumers that
 * never read. Every few seconds it samples the hub from outside: RSS and open file
 * descriptors from /proc/<pid>, heap, active handles and resources, event-loop lag and the
 * hub's own counters from /metrics. It fails when memory does not plateau, when descriptors or
 * handles are left over once every client is gone, or when a long-lived subscriber misses or
 * repeats an acknowledged message.
 *
 * Used by `npm run soak` (test/soak/run.ts, minutes) and by a short run in the test suite
 * (test/soak/soak.test.ts). Nothing runs on import.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { openStream, isMessage, type TestStream } from '../helpers/sse-client.js';

/** What to run. */
export interface SoakOptions {
  readonly durationMs: number;
  /** Churning subscribers kept connected at once. */
  readonly subscribers: number;
  /** Each churning subscription lives a uniformly random time in this range, then leaves. */
  readonly lifetimeMs: readonly [number, number];
  readonly topics: number;
  /** Publishes per second, spread over the topics. */
  readonly publishRate: number;
  /** Subscribers that never read, on a topic with large messages: they must be evicted, again and again. */
  readonly slowConsumers: number;
  readonly sampleIntervalMs: number;
  /** Part of the run (from the start) excluded from the plateau check. */
  readonly warmupFraction: number;
  /** Allowed growth of the post-GC heap floor and of peak RSS between the first and last third after warm-up. */
  readonly heapGrowth: { readonly ratio: number; readonly bytes: number };
  readonly rssGrowth: { readonly ratio: number; readonly bytes: number };
  /** Progress lines (a sample table row every interval); default: none. */
  readonly log?: (line: string) => void;
}

export const DEFAULT_SOAK_OPTIONS: SoakOptions = {
  durationMs: 10 * 60_000,
  subscribers: 2000,
  lifetimeMs: [1000, 15_000],
  topics: 50,
  publishRate: 200,
  slowConsumers: 5,
  sampleIntervalMs: 5000,
  warmupFraction: 0.2,
  heapGrowth: { ratio: 1.2, bytes: 8 * 1024 * 1024 },
  rssGrowth: { ratio: 1.2, bytes: 24 * 1024 * 1024 },
};

/** One sample of the hub process. */
export interface SoakSample {
  readonly atMs: number;
  readonly rssBytes: number;
  readonly fds: number;
  readonly heapUsedBytes: number;
  readonly activeHandles: number;
  readonly activeResources: number;
  readonly loopLagP99Ms: number;
  readonly loopLagMaxMs: number;
  readonly subscribers: number;
  readonly published: number;
  readonly dropped: number;
  /** Subscriptions opened by the churn so far, and the driver's own worst event-loop delay. */
  readonly connects: number;
  readonly driverLagMaxMs: number;
}

/** The outcome: every sample, the checks and whether they passed. */
export interface SoakReport {
  readonly options: SoakOptions;
  readonly baseline: SoakSample;
  readonly samples: readonly SoakSample[];
  /** After every client left and the hub settled. */
  readonly final: SoakSample;
  readonly totals: { connects: number; refusedSubscriptions: number; published: number; publishFailures: number; keepAliveRetries: number; slowEvictions: number; checkerMessages: number };
  readonly checks: readonly { name: string; ok: boolean; detail: string }[];
  readonly ok: boolean;
}

const MiB = 1024 * 1024;

function procStatus(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function metric(text: string, name: string): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      found = true;
    }
  }
  return found ? sum : NaN;
}

/** Runs the soak and resolves with its report (it rejects only when the hub cannot be started or sampled). */
export async function runSoak(overrides: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const options: SoakOptions = { ...DEFAULT_SOAK_OPTIONS, ...overrides };
  const log = options.log ?? (() => {});
  const dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-soak-'));
  let hub: HubProcess | undefined;
  try {
    hub = await spawnHub([
      '--data-dir', dataDir,
      '--max-connections', '100000',
      '--max-connections-per-ip', '100000',
      '--heartbeat-interval', '2s',
      '--max-backlog', '64KiB',
      '--retention-count', '200',
    ]);
    // Interrupted (Ctrl-C on `npm run soak`): do not leave the hub process behind.
    const child = hub.child;
    const killHub = (): void => void child.kill('SIGKILL');
    process.once('exit', killHub);
    try {
      return await drive(hub, options, log);
    } finally {
      process.off('exit', killHub);
    }
  } finally {
    if (hub) {
      hub.child.kill('SIGTERM');
      await hub.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function drive(hub: HubProcess, options: SoakOptions, log: (line: string) => void): Promise<SoakReport> {
  const pid = hub.child.pid!;
  const url = new URL(hub.url);
  const port = Number(url.port);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const driverLag = monitorEventLoopDelay({ resolution: 10 });
  driverLag.enable();
  const started = performance.now();
  const totals = { connects: 0, refusedSubscriptions: 0, published: 0, publishFailures: 0, keepAliveRetries: 0, slowEvictions: 0, checkerMessages: 0 };
  const topics = Array.from({ length: options.topics }, (_, i) => `soak-${i}`);
  const lastIdOf = new Map<string, string>();
  const acknowledgedOn = new Map<string, string[]>();

  const sample = async (): Promise<SoakSample> => {
    const text = await new Promise<string>((resolve, reject) => {
      const req = request({ host: url.hostname, port, path: '/metrics', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
      });
      req.on('error', reject).end();
    });
    const s: SoakSample = {
      atMs: Math.round(performance.now() - started),
      rssBytes: procStatus(pid, 'VmRSS'),
      fds: readdirSync(`/proc/${pid}/fd`).length,
      heapUsedBytes: metric(text, 'nodejs_heap_size_used_bytes'),
      activeHandles: metric(text, 'nodejs_active_handles_total'),
      activeResources: metric(text, 'nodejs_active_resources_total'),
      loopLagP99Ms: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      loopLagMaxMs: metric(text, 'nodejs_eventloop_lag_max_seconds') * 1000,
      subscribers: metric(text, 'sse_relay_subscribers'),
      published: metric(text, 'sse_relay_messages_published_total'),
      dropped: metric(text, 'sse_relay_subscribers_dropped_total'),
      connects: totals.connects,
      driverLagMaxMs: driverLag.max / 1e6,
    };
    driverLag.reset();
    return s;
  };
  const header = 't(s)   rss(MiB) heap(MiB) fds  handles resources lag-p99(ms) lag-max(ms) subs  published dropped connects driver-lag(ms)';
  const row = (s: SoakSample): string =>
    [
      (s.atMs / 1000).toFixed(0).padStart(5),
      (s.rssBytes / MiB).toFixed(1).padStart(8),
      (s.heapUsedBytes / MiB).toFixed(1).padStart(9),
      String(s.fds).padStart(4),
      String(s.activeHandles).padStart(7),
      String(s.activeResources).padStart(9),
      s.loopLagP99Ms.toFixed(1).padStart(11),
      s.loopLagMaxMs.toFixed(1).padStart(11),
      String(s.subscribers).padStart(5),
      String(s.published).padStart(10),
      String(s.dropped).padStart(7),
      String(s.connects).padStart(8),
      s.driverLagMaxMs.toFixed(0).padStart(14),
    ].join(' ');

  const baseline = await sample();
  log(header);
  log(row(baseline));

  let running = true;
  const open = new Set<Socket>();

  // Churn: each subscriber picks a topic and an API, sometimes resumes, lives a random time,
  // then leaves abruptly (reset) or politely (FIN); a new one takes its place.
  const churn = (): void => {
    if (!running) return;
    const topic = topics[Math.floor(Math.random() * topics.length)]!;
    const mercure = Math.random() < 0.25;
    const cursor = Math.random() < 0.3 ? lastIdOf.get(topic) : undefined;
    const path = mercure ? `/.well-known/mercure?match=${topic}` : `/messages/subscribe/${topic}`;
    const socket = connect(port, '127.0.0.1');
    open.add(socket);
    totals.connects++;
    let head = true;
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\n${cursor ? `Last-Event-ID: ${cursor}\r\n` : ''}\r\n`));
    socket.on('data', (data: Buffer) => {
      if (head && !data.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 200')) totals.refusedSubscriptions++;
      head = false;
    });
    socket.on('error', () => {});
    const [min, max] = options.lifetimeMs;
    const timer = setTimeout(() => (Math.random() < 0.5 ? socket.destroy() : socket.end()), min + Math.random() * (max - min));
    socket.on('close', () => {
      clearTimeout(timer);
      open.delete(socket);
      if (running) setImmediate(churn);
    });
  };
  // Ramp up over the first seconds rather than opening thousands at once.
  const rampSteps = 20;
  for (let step = 0; step < rampSteps && running; step++) {
    for (let i = 0; i < options.subscribers / rampSteps; i++) churn();
    await new Promise((r) => setTimeout(r, 100));
  }

  // Slow consumers: never read; the hub evicts each once its backlog passes --max-backlog (after
  // the kernel's socket buffers, a few MiB on loopback, filled up). A client that does not read
  // never sees the hub close its side, so each one gives up after 20 s and comes back.
  const slowTopic = 'soak-slow';
  const slow = (): void => {
    if (!running) return;
    const socket = connect(port, '127.0.0.1');
    open.add(socket);
    socket.on('connect', () => {
      socket.write(`GET /messages/subscribe/${slowTopic} HTTP/1.1\r\nHost: soak\r\n\r\n`);
      socket.pause();
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), 20_000);
    socket.on('close', () => {
      clearTimeout(timer);
      open.delete(socket);
      totals.slowEvictions++;
      if (running) setTimeout(slow, 200);
    });
  };
  for (let i = 0; i < options.slowConsumers; i++) slow();

  // Checkers: long-lived subscribers that must see every acknowledged message of their topic.
  const checkerTopics = topics.slice(0, 3);
  const checkers: TestStream[] = [];
  for (const topic of checkerTopics) {
    checkers.push(await openStream(`${hub.url}/messages/subscribe/${topic}`));
    acknowledgedOn.set(topic, []);
  }

  // Publishers: a steady rate on keep-alive connections, at most 64 in flight.
  let inFlight = 0;
  const failureReasons = new Map<string, number>();
  const fail = (reason: string): void => {
    totals.publishFailures++;
    failureReasons.set(reason, (failureReasons.get(reason) ?? 0) + 1);
  };
  const post = (topic: string, body: string, retries = 0): void => {
    inFlight++;
    const req = request({ host: url.hostname, port, method: 'POST', path: `/messages/${topic}`, agent, headers: { 'content-type': 'text/plain' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => {
        inFlight--;
        if (res.statusCode !== 200) {
          fail(`${res.statusCode} ${text.slice(0, 120)}`);
          return;
        }
        totals.published++;
        const id = (JSON.parse(text) as { id: string }).id;
        lastIdOf.set(topic, id);
        acknowledgedOn.get(topic)?.push(id);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      inFlight--;
      // The hub closed an idle keep-alive connection (--keep-alive-timeout) just as the agent
      // reused it: the request never reached the hub (the hub only closes idle connections).
      // HTTP clients retry this. Idle sockets of the pool expire together, so the retry may
      // pick another one that is closing too: a few retries, on reused sockets only.
      if (req.reusedSocket && error.code === 'ECONNRESET' && retries < 3) {
        totals.keepAliveRetries++;
        post(topic, body, retries + 1);
        return;
      }
      fail(`${error.code ?? ''} ${error.message}`);
    });
    req.end(body);
  };
  const bigBody = 'b'.repeat(32 * 1024);
  let credit = 0;
  let last = performance.now();
  let tick = 0;
  const publisher = setInterval(() => {
    const now = performance.now();
    credit += ((now - last) / 1000) * options.publishRate;
    last = now;
    while (credit >= 1 && inFlight < 64) {
      credit--;
      const topic = topics[Math.floor(Math.random() * topics.length)]!;
      post(topic, `${topic} ${new Date().toISOString()} ${'m'.repeat(150)}`);
    }
    credit = Math.min(credit, options.publishRate); // no catch-up burst after a stall
    // The slow consumers' topic gets large messages, 10 per second (320 KiB/s).
    if (options.slowConsumers > 0 && ++tick % 5 === 0) post(slowTopic, bigBody);
  }, 20);

  const samples: SoakSample[] = [];
  const deadline = started + options.durationMs;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(options.sampleIntervalMs, Math.max(0, deadline - performance.now()))));
    const s = await sample();
    samples.push(s);
    log(row(s));
  }

  // Stop: no new clients or publishes, every socket closed, then let the hub settle.
  running = false;
  clearInterval(publisher);
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
  for (const [i, topic] of checkerTopics.entries()) {
    const acked = acknowledgedOn.get(topic)!;
    if (acked.length > 0) await checkers[i]!.waitFor((events) => events.some((e) => e.id === acked.at(-1)), 10_000).catch(() => {});
  }
  const checkerResults = checkerTopics.map((topic, i) => {
    const ids = checkers[i]!.events.filter(isMessage).map((e) => e.id!);
    const acked = acknowledgedOn.get(topic)!;
    totals.checkerMessages += ids.length;
    const seen = new Set(ids);
    return { topic, missing: acked.filter((id) => !seen.has(id)).length, duplicates: ids.length - seen.size, ordered: ids.every((id, k) => k === 0 || Number(ids[k - 1]) < Number(id)), count: ids.length };
  });
  for (const checker of checkers) checker.close();
  for (const socket of open) socket.destroy();
  agent.destroy();
  let final = await sample();
  const settleBy = performance.now() + 15_000;
  const settled = (f: SoakSample): boolean =>
    f.subscribers === 0 && f.fds <= baseline.fds + 3 && f.activeHandles <= baseline.activeHandles + 3 && f.activeResources <= baseline.activeResources + 3;
  while (performance.now() < settleBy && !settled(final)) {
    await new Promise((r) => setTimeout(r, 500));
    final = await sample();
  }
  log(row(final));
  driverLag.disable();

  const checks: { name: string; ok: boolean; detail: string }[] = [];
  const check = (name: string, ok: boolean, detail: string): void => void checks.push({ name, ok, detail });
  const steady = samples.filter((s) => s.atMs >= options.durationMs * options.warmupFraction);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const early = steady.slice(0, third);
  const late = steady.slice(-third);
  const floor = (list: readonly SoakSample[]): number => Math.min(...list.map((s) => s.heapUsedBytes));
  const peak = (list: readonly SoakSample[]): number => Math.max(...list.map((s) => s.rssBytes));
  const heapLimit = floor(early) * options.heapGrowth.ratio + options.heapGrowth.bytes;
  const rssLimit = peak(early) * options.rssGrowth.ratio + options.rssGrowth.bytes;
  check('enough samples for a plateau check', steady.length >= 6, `${steady.length} samples after warm-up`);
  check('heap plateaus', floor(late) <= heapLimit, `post-GC heap floor ${(floor(early) / MiB).toFixed(1)} MiB early, ${(floor(late) / MiB).toFixed(1)} MiB late (limit ${(heapLimit / MiB).toFixed(1)})`);
  check('RSS plateaus', peak(late) <= rssLimit, `peak RSS ${(peak(early) / MiB).toFixed(1)} MiB early, ${(peak(late) / MiB).toFixed(1)} MiB late (limit ${(rssLimit / MiB).toFixed(1)})`);
  check('no subscription left', final.subscribers === 0, `${final.subscribers} subscriptions after every client left`);
  check('no file descriptor leaked', final.fds <= baseline.fds + 3, `${baseline.fds} fds before, ${final.fds} after (peak ${Math.max(...samples.map((s) => s.fds))})`);
  check('no handle leaked', final.activeHandles <= baseline.activeHandles + 3, `${baseline.activeHandles} active handles before, ${final.activeHandles} after`);
  check('no resource leaked', final.activeResources <= baseline.activeResources + 3, `${baseline.activeResources} active resources before, ${final.activeResources} after`);
  const reasons = [...failureReasons].map(([r, n]) => `${n}× ${r}`).join('; ');
  check('every publish acknowledged', totals.publishFailures === 0 && totals.published > 0, `${totals.published} acknowledged, ${totals.publishFailures} failed${reasons ? ` (${reasons})` : ''}, ${totals.keepAliveRetries} retried after a keep-alive race`);
  check('every subscription admitted', totals.refusedSubscriptions === 0, `${totals.connects} opened, ${totals.refusedSubscriptions} refused`);
  check('slow consumers evicted', options.slowConsumers === 0 || final.dropped > 0, `${final.dropped} evictions (slow consumers came back ${totals.slowEvictions} times)`);
  for (const r of checkerResults) {
    check(`long-lived subscriber of ${r.topic} got everything`, r.missing === 0 && r.duplicates === 0 && r.ordered, `${r.count} messages, ${r.missing} missing, ${r.duplicates} duplicates, ${r.ordered ? 'in order' : 'OUT OF ORDER'}`);
  }
  return { options, baseline, samples, final, totals, checks, ok: checks.every((c) => c.ok) };
}
