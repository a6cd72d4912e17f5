/**
 * Many SSE subscriptions on raw sockets. One process holds 10,000 of them cheaply: no HTTP
 * client library, one shared read buffer for all sockets (`onread`), one small parser state per
 * connection, and per event only a few integer updates.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { LatencyHistogram } from './histogram.js';
import { decodePayload, type PayloadHeader } from './payload.js';
import { SseReader, type SseReaderHandler } from './sse-reader.js';

/** Where and how to subscribe. */
export interface SubscribeTarget {
  readonly host: string;
  readonly port: number;
  /** Request path of the subscription to topic `name`. */
  readonly path: (name: string) => string;
}

/** Counters of the step being measured, shared by all subscriptions. */
export class DeliveryCounters {
  /** Step number messages must carry to count; others are strays (from an earlier step). */
  step = 0;
  /** Events of this step received, by all subscriptions. */
  delivered = 0;
  /** Of those, received inside the measurement window. */
  deliveredInWindow = 0;
  strays = 0;
  /** Events that were not benchmark messages (greetings, notices). */
  otherEvents = 0;
  /** Window in µs of performance.now(): latency is recorded for messages sent inside it. */
  windowStartUs = Number.POSITIVE_INFINITY;
  windowEndUs = Number.POSITIVE_INFINITY;
  latency = new LatencyHistogram();
  /** Called after events arrived (at most once per read). */
  onProgress: () => void = () => {};
}

// One buffer for every socket's reads: each read is parsed synchronously before the next one.
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const header: PayloadHeader = { step: 0, lane: 0, seq: 0, sentUs: 0 };
const NO_LANES = new Uint32Array(0);

/** One subscription. */
export class Subscription implements SseReaderHandler {
  readonly reader = new SseReader(this);
  socket: net.Socket | undefined;
  /** Messages of the current step received. */
  received = 0;
  /**
   * Highest seq seen in the current step per publishing lane, and how often a seq was not the
   * next one of its lane.
   */
  lastSeq: Uint32Array = NO_LANES;
  outOfOrder = 0;
  closed = false;
  error: string | undefined;
  private readyResolve: ((ok: boolean) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set when a read brought benchmark events: progress is reported once per read. */
  private eventsSeen = false;

  constructor(
    readonly topic: number,
    /** Index of the pool's target (node) it is opened on. */
    readonly target: number,
    private readonly counters: DeliveryCounters,
    private readonly pool: SubscriberPool,
  ) {}

  open(target: SubscribeTarget, topicName: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.readyResolve = resolve;
      this.timer = setTimeout(() => {
        this.settle(false, 'no response head in time');
        this.socket?.destroy();
      }, timeoutMs);
      const request = `GET ${target.path(topicName)} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`;
      const socket = net.connect({
        host: target.host,
        port: target.port,
        onread: {
          buffer: READ_BUFFER,
          callback: (nread: number, buffer: Uint8Array): boolean => {
            this.pool.nowUs = performance.now() * 1000;
            this.reader.push(buffer, 0, nread);
            if (this.eventsSeen) {
              this.eventsSeen = false;
              this.counters.onProgress();
            }
            return true;
          },
        },
      });
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(request, 'latin1'));
      socket.on('error', (error) => {
        this.error ??= error.message;
      });
      socket.on('close', () => {
        if (!this.closed) {
          this.closed = true;
          this.pool.closedCount++;
        }
        this.settle(false, this.error ?? 'closed before the response head');
      });
    });
  }

  private settle(ok: boolean, error?: string): void {
    const resolve = this.readyResolve;
    if (!resolve) return;
    this.readyResolve = undefined;
    clearTimeout(this.timer);
    if (!ok) this.error ??= error;
    resolve(ok);
  }

  onHead(status: number): void {
    if (status === 200) this.settle(true);
    else {
      this.settle(false, `status ${status}`);
      this.socket?.destroy();
    }
  }

  onEvent(data: Uint8Array, length: number): void {
    const counters = this.counters;
    if (!decodePayload(data, length, header)) {
      counters.otherEvents++;
      return;
    }
    this.eventsSeen = true;
    const lastSeq = this.lastSeq;
    if (header.step !== counters.step || header.lane >= lastSeq.length) {
      counters.strays++;
      return;
    }
    this.received++;
    const last = lastSeq[header.lane]!;
    if (header.seq !== last + 1) this.outOfOrder++;
    if (header.seq > last) lastSeq[header.lane] = header.seq;
    counters.delivered++;
    const now = this.pool.nowUs;
    if (now >= counters.windowStartUs && now < counters.windowEndUs) counters.deliveredInWindow++;
    if (header.sentUs >= counters.windowStartUs && header.sentUs < counters.windowEndUs) counters.latency.record(now - header.sentUs);
  }

  onError(message: string): void {
    this.error ??= message;
    this.socket?.destroy();
  }

  /** Ends the connection with a reset: no TIME_WAIT left behind by 10,000 closes. */
  destroy(): void {
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    if (typeof socket.resetAndDestroy === 'function' && socket.readyState === 'open') socket.resetAndDestroy();
    else socket.destroy();
  }
}

/**
 * A set of subscriptions over `topics` topics, `perTopic` each, spread over the targets (the
 * nodes of a peer): subscriber `k` of topic `t` goes to target `(k + ⌊t / n⌋) % n`. With many
 * subscribers per topic each node holds its share of every topic's; with one per topic (where
 * `k % n` alone would put them all on the first node) topics alternate in pairs, so that about
 * half of them have their subscriber on another node than the one their publishes go to (the
 * publisher sends topic `t` to target `t % n` when its connection count is a multiple of `n`).
 */
export class SubscriberPool {
  readonly subscriptions: Subscription[] = [];
  readonly counters = new DeliveryCounters();
  /** Time of the read being parsed, µs of performance.now(): one clock read per read. */
  nowUs = 0;
  closedCount = 0;

  constructor(
    readonly targets: readonly SubscribeTarget[],
    readonly topicNames: readonly string[],
    readonly perTopic: number,
  ) {
    if (targets.length === 0) throw new Error('no target to subscribe to');
  }

  get size(): number {
    return this.subscriptions.length;
  }

  /**
   * Opens every subscription, `concurrency` handshakes at a time (a listen backlog of 511
   * would drop a burst of 10,000 SYNs and add seconds of retransmits). Resolves with the
   * number that failed.
   */
  async open(concurrency = 200, timeoutMs = 20_000): Promise<{ failed: number; firstError: string | undefined }> {
    const todo: Subscription[] = [];
    const n = this.targets.length;
    for (let t = 0; t < this.topicNames.length; t++) {
      for (let k = 0; k < this.perTopic; k++) todo.push(new Subscription(t, (k + Math.floor(t / n)) % n, this.counters, this));
    }
    this.subscriptions.push(...todo);
    let next = 0;
    let failed = 0;
    let firstError: string | undefined;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const sub = todo[next++]!;
        if (!(await sub.open(this.targets[sub.target]!, this.topicNames[sub.topic]!, timeoutMs))) {
          failed++;
          firstError ??= sub.error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
    return { failed, firstError };
  }

  /** Starts counting a new step, published on `lanes` connections. */
  resetStep(step: number, lanes: number): void {
    const c = this.counters;
    c.step = step;
    c.delivered = 0;
    c.deliveredInWindow = 0;
    c.strays = 0;
    c.latency = new LatencyHistogram();
    c.windowStartUs = Number.POSITIVE_INFINITY;
    c.windowEndUs = Number.POSITIVE_INFINITY;
    for (const sub of this.subscriptions) {
      sub.received = 0;
      if (sub.lastSeq.length === lanes) sub.lastSeq.fill(0);
      else sub.lastSeq = new Uint32Array(lanes);
      sub.outOfOrder = 0;
    }
  }

  /** Open subscriptions now. */
  get openCount(): number {
    return this.subscriptions.length - this.closedCount;
  }

  close(): void {
    for (const sub of this.subscriptions) sub.destroy();
  }
}
