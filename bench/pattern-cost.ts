/**
 * The `pattern-cost` scenario: what one publish costs when many subscribers share Mercure
 * patterns, against the same number of subscribers on exact topics, in one run.
 *
 *   node dist/bench/pattern-cost.js [--subscribers 500] [--patterns 20] [--publishes 300] [--json]
 *   npm run bench -- --scenario pattern-cost          (also part of the default run)
 *
 * One in-process hub (memory store, real HTTP server, real loopback sockets). Phase `exact`:
 * N subscribers, each with the same P exact topics (`match=`); phase `pattern`: N fresh
 * subscribers, each with the same P RFC 6570 URI templates (hub 0.x's `topic=`), published to a
 * new topic every time (no cached match result helps). Every publish reaches all N subscribers
 * in both phases (one matching topic, or one matching template, the last one tried). What
 * is timed is `hub.publish()` and the turn's flush: store append, matching, encoding and the N
 * socket writes (streams write in one shared `setImmediate`, see `src/sse/stream.ts`);
 * the next publish waits until every subscriber read the previous one, so no backlog builds up.
 * The two phases alternate three times (fresh subscribers each time). Printed: the median and
 * p90 of each kind and the ratio pattern ÷ exact of the medians.
 */
import { connect, type Socket } from 'node:net';
import { serveOptions } from '../src/config/load.js';
import type { RelayServer } from '../src/http/server.js';
import { startRelay } from '../src/relay.js';

/** The step name `--scenario` selects. */
export const PATTERN_COST_STEP = 'pattern-cost';

interface Args {
  subscribers: number;
  patterns: number;
  publishes: number;
  json: boolean;
}

/** The outcome of one run, as `--json` prints it. */
export interface PatternCostResult {
  readonly subscribers: number;
  readonly patterns: number;
  readonly publishes: number;
  readonly exact: { readonly medianMs: number; readonly p90Ms: number };
  readonly pattern: { readonly medianMs: number; readonly p90Ms: number };
  /** pattern median ÷ exact median. */
  readonly ratio: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { subscribers: 500, patterns: 20, publishes: 300, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const count = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} takes a positive integer`);
      return n;
    };
    if (a === '--subscribers') args.subscribers = count();
    else if (a === '--patterns') args.patterns = count();
    else if (a === '--publishes') args.publishes = count();
    else if (a === '--json') args.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** A raw event-stream reader: counts the `data:` frames it receives, parses nothing else. */
class CountingSubscriber {
  frames = 0;
  private constructor(private readonly socket: Socket) {}

  static open(port: number, path: string): Promise<CountingSubscriber> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const subscriber = new CountingSubscriber(socket);
      let headers = false;
      socket.setNoDelay(true);
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        if (!headers) {
          headers = true;
          if (!chunk.toString('latin1', 0, 12).startsWith('HTTP/1.1 200')) reject(new Error(`subscription refused: ${chunk.toString('latin1', 0, 200)}`));
          else resolve(subscriber);
        }
        // Every published update is one frame with one `data:` line (the payload has no line break).
        for (let at = chunk.indexOf('\ndata:'); at >= 0; at = chunk.indexOf('\ndata:', at + 6)) subscriber.frames++;
      });
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Alternations of the two phases. */
const ROUNDS = 3;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Opens the subscribers, times `publishes` publishes after a warm-up, closes them. */
async function measure(server: RelayServer, subscriberCount: number, publishes: number, query: string, publishTopic: (i: number) => string): Promise<number[]> {
  const port = Number(new URL(server.url).port);
  const subscribers: CountingSubscriber[] = [];
  // Opened a few at a time: the hub's accept queue is not what is measured.
  for (let i = 0; i < subscriberCount; i += 50) {
    const batch = Array.from({ length: Math.min(50, subscriberCount - i) }, () => CountingSubscriber.open(port, `/.well-known/mercure?${query}`));
    subscribers.push(...(await Promise.all(batch)));
  }
  const warmUp = Math.max(20, Math.floor(publishes / 5));
  const times: number[] = [];
  try {
    for (let i = 0; i < warmUp + publishes; i++) {
      const started = performance.now();
      await server.hub.publish({ topics: [publishTopic(i)], data: 'x'.repeat(100) });
      // Streams write what a turn queued in one shared setImmediate, queued during the publish:
      // this one runs after it, so the time includes the N socket writes.
      await new Promise((resolve) => setImmediate(resolve));
      const elapsed = performance.now() - started;
      if (i >= warmUp) times.push(elapsed);
      const expected = i + 1;
      // Until every subscriber read it: the next publish starts with empty socket buffers.
      while (subscribers.some((s) => s.frames < expected)) await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    for (const subscriber of subscribers) subscriber.close();
  }
  return times;
}

function summary(times: number[]): { medianMs: number; p90Ms: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return { medianMs: percentile(sorted, 0.5), p90Ms: percentile(sorted, 0.9) };
}

/** Runs both phases on one fresh hub and returns the figures. */
export async function runPatternCost(args: Args): Promise<PatternCostResult> {
  const limits = { maxConnections: 1_000_000, maxConnectionsPerIp: 1_000_000, maxRequestsPerSocket: 0 };
  const server = await startRelay(serveOptions({ ...limits, port: 0, store: 'memory', logLevel: 'silent', heartbeatInterval: 0 }));
  try {
    const indexes = Array.from({ length: args.patterns }, (_, i) => i);
    const exactQuery = indexes.map((i) => `match=${encodeURIComponent(`https://exact.example/books/k${i}/42`)}`).join('&');
    // Distinct templates; the published topic matches the last one, so every template is tried,
    // and it is a new topic every time, so no match result is cached from an earlier publish.
    const patternQuery = indexes.map((i) => `topic=${encodeURIComponent(`https://pattern.example/{kind}/k${i}/{id}`)}`).join('&');
    // The phases alternate, ROUNDS times each: on a shared machine, load that comes and goes
    // then weighs on both alike.
    const exactTimes: number[] = [];
    const patternTimes: number[] = [];
    const perRound = Math.max(1, Math.ceil(args.publishes / ROUNDS));
    for (let round = 0; round < ROUNDS; round++) {
      exactTimes.push(...(await measure(server, args.subscribers, perRound, exactQuery, () => `https://exact.example/books/k${args.patterns - 1}/42`)));
      patternTimes.push(...(await measure(server, args.subscribers, perRound, patternQuery, (i) => `https://pattern.example/books/k${args.patterns - 1}/${round}-${i}`)));
    }
    const exact = summary(exactTimes);
    const pattern = summary(patternTimes);
    return { subscribers: args.subscribers, patterns: args.patterns, publishes: exactTimes.length, exact, pattern, ratio: pattern.medianMs / exact.medianMs };
  } finally {
    await server.close();
  }
}

/** One line per phase and the ratio, for the bench output. */
export function formatPatternCost(result: PatternCostResult): string {
  const ms = (v: number): string => `${v.toFixed(3)} ms`;
  return [
    `pattern-cost: ${result.subscribers} subscribers × ${result.patterns} selectors, ${result.publishes} publishes each (hub.publish time: store, matching, ${result.subscribers} socket writes)`,
    `  exact topics:   median ${ms(result.exact.medianMs)}, p90 ${ms(result.exact.p90Ms)}`,
    `  URI templates:  median ${ms(result.pattern.medianMs)}, p90 ${ms(result.pattern.p90Ms)}`,
    `  ratio templates ÷ exact (medians): ${result.ratio.toFixed(2)}×`,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const args = parseArgs(process.argv.slice(2));
  const result = await runPatternCost(args);
  process.stdout.write(args.json ? `${JSON.stringify(result)}\n` : `${formatPatternCost(result)}\n`);
}
