/**
 * Publishes over keep-alive HTTP/1.1 connections on raw sockets, several requests per write when
 * more than one is due (pipelining), and matches answers to requests in order.
 *
 * Connections are spread round-robin over the targets (the nodes of a peer), at least one per
 * target, so every node receives publishes. Each connection owns a fixed subset of the topics
 * and numbers each topic's messages itself (its index is the payload's `lane`): on one
 * connection the hub sees a topic's messages in `seq` order. When there are fewer topics than
 * connections (one fan-out topic, two nodes) a topic is published on several connections, each
 * with its own `seq` sequence; no order is defined between them.
 *
 * With a batch size, each request is one batch publish (a JSON array of `{id, message}`) of
 * that many messages, round-robin over the connection's topics as single publishes would be:
 * one answer acknowledges (or refuses) all of them.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { LatencyHistogram } from './histogram.js';
import { HttpResponseSplitter } from './http-responses.js';
import { encodePayload, PAYLOAD_SIZE } from './payload.js';

/** Where and how to publish. */
export interface PublishTarget {
  readonly host: string;
  readonly port: number;
  /** Request path of a publish to topic `name`. */
  readonly path: (name: string) => string;
}

class Connection {
  socket!: net.Socket;
  /** Request head of each of `topics`, addressed to this connection's target. */
  private readonly heads: string[];
  /** Messages sent in the current step, per topic of `topics` (the last `seq` used). */
  private readonly seq: Uint32Array;
  /** Messages written and not yet answered: topic and send time, in order. */
  private readonly inflightTopic: number[] = [];
  private readonly inflightSentUs: number[] = [];
  private inflightHead = 0;
  /** Messages in each request written and not yet answered, in order. */
  private readonly inflightSizes: number[] = [];
  private sizesHead = 0;
  /** With batches: the request head up to `Content-Length: `, and each topic as a JSON string. */
  private readonly batchHead: string | undefined;
  private readonly topicJson: string[];
  private cursor = 0;
  /** True while there is no usable socket (closed by the server and not yet reopened). */
  closed = true;
  private stopped = false;
  readonly connected: Promise<void>;

  constructor(
    private readonly publisher: Publisher,
    /** This connection's index: the payload's `lane`. */
    readonly lane: number,
    /** Index of the target it publishes to. */
    readonly target: number,
    readonly topics: readonly number[],
  ) {
    const { host, port, path } = publisher.targets[target]!;
    this.heads = topics.map(
      (t) => `POST ${path(publisher.topicNames[t]!)} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: text/plain\r\nContent-Length: ${PAYLOAD_SIZE}\r\n\r\n`,
    );
    const batch = publisher.batch;
    this.batchHead = batch && `POST ${batch.path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nContent-Length: `;
    this.topicJson = topics.map((t) => JSON.stringify(publisher.topicNames[t]!));
    this.seq = new Uint32Array(topics.length);
    this.connected = this.open();
  }

  resetStep(): void {
    this.seq.fill(0);
  }

  /**
   * Opens the socket; a server that ends the connection (`Connection: close`, a cap on requests
   * per connection) gets a new one, and what was in flight on the old one counts as failed.
   */
  private open(): Promise<void> {
    const publisher = this.publisher;
    const { host, port } = publisher.targets[this.target]!;
    const socket = net.connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    const splitter = new HttpResponseSplitter((status, closeAfter) => this.answered(status, closeAfter));
    socket.on('data', (chunk: Buffer) => {
      try {
        splitter.push(chunk);
      } catch (error) {
        publisher.protocolErrors.push((error as Error).message);
        socket.destroy();
      }
    });
    let connected = false;
    socket.on('close', () => {
      this.closed = true;
      publisher.failed += this.inflight;
      this.inflightTopic.length = 0;
      this.inflightSentUs.length = 0;
      this.inflightHead = 0;
      this.inflightSizes.length = 0;
      this.sizesHead = 0;
      // Reopen only what had worked: a refused connection is an error, not a loop.
      if (!this.stopped && connected) {
        publisher.reconnects++;
        setImmediate(() => void this.open().then(() => publisher.onAnswer(), () => {}));
      }
    });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        connected = true;
        this.closed = false;
        resolve();
      });
      socket.on('error', (error) => {
        if (this.closed) reject(error);
        else publisher.protocolErrors.push(error.message);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    this.socket.destroy();
  }

  /** Messages written and not yet answered. */
  get inflight(): number {
    return this.inflightTopic.length - this.inflightHead;
  }

  /** Requests written and not yet answered. */
  get inflightRequests(): number {
    return this.inflightSizes.length - this.sizesHead;
  }

  /**
   * Writes `count` messages (one write), round-robin over this connection's topics: `count`
   * publishes, or `count / batch` batch publishes.
   */
  send(count: number): void {
    const p = this.publisher;
    const nowUs = Math.round(performance.now() * 1000);
    const perRequest = p.batch?.size ?? 1;
    let text = '';
    for (let sent = 0; sent < count; sent += perRequest) {
      const size = Math.min(perRequest, count - sent);
      let body = '';
      for (let k = 0; k < size; k++) {
        const index = this.cursor;
        const topic = this.topics[index]!;
        this.cursor = (index + 1) % this.topics.length;
        const payload = encodePayload(p.step, this.lane, ++this.seq[index]!, nowUs, PAYLOAD_SIZE);
        if (this.batchHead === undefined) text += this.heads[index]! + payload;
        else body += `${k === 0 ? '[' : ','}{"id":${this.topicJson[index]!},"message":"${payload}"}`;
        this.inflightTopic.push(topic);
        this.inflightSentUs.push(nowUs);
      }
      // Payloads and topics here are ASCII: characters are bytes.
      if (this.batchHead !== undefined) text += `${this.batchHead}${body.length + 1}\r\n\r\n${body}]`;
      this.inflightSizes.push(size);
    }
    p.sent += count;
    this.socket.write(text, 'latin1');
  }

  private answered(status: number, closeAfter: boolean): void {
    const p = this.publisher;
    if (this.sizesHead >= this.inflightSizes.length) {
      p.protocolErrors.push('an answer to no request');
      return;
    }
    const size = this.inflightSizes[this.sizesHead++]!;
    if (this.sizesHead > 1024 && this.sizesHead * 2 > this.inflightSizes.length) {
      this.inflightSizes.splice(0, this.sizesHead);
      this.sizesHead = 0;
    }
    for (let k = 0; k < size; k++) this.answeredMessage(status);
    if (closeAfter) {
      // No more answers will come on this socket: stop writing to it at once.
      this.closed = true;
      this.socket.end();
    }
    p.onAnswer();
  }

  private answeredMessage(status: number): void {
    const p = this.publisher;
    const topic = this.inflightTopic[this.inflightHead]!;
    const sentUs = this.inflightSentUs[this.inflightHead]!;
    this.inflightHead++;
    if (this.inflightHead > 1024 && this.inflightHead * 2 > this.inflightTopic.length) {
      this.inflightTopic.splice(0, this.inflightHead);
      this.inflightSentUs.splice(0, this.inflightHead);
      this.inflightHead = 0;
    }
    if (status >= 200 && status < 300) {
      p.acked++;
      p.ackedByTopic[topic]!++;
      p.ackedByTarget[this.target]!++;
      if (sentUs >= p.windowStartUs && sentUs < p.windowEndUs) {
        p.latency.record(performance.now() * 1000 - sentUs);
        p.ackedInWindow++;
      }
    } else {
      p.failed++;
      p.statuses[status] = (p.statuses[status] ?? 0) + 1;
    }
  }
}

/** A set of publishing connections and their counters for the current step. */
export class Publisher {
  readonly ackedByTopic: Uint32Array;
  /** Acknowledged publishes per target, in the current step. */
  readonly ackedByTarget: Uint32Array;
  step = 0;
  sent = 0;
  acked = 0;
  ackedInWindow = 0;
  failed = 0;
  /** Connections the server closed and the publisher opened again. */
  reconnects = 0;
  readonly statuses: Record<number, number> = {};
  readonly protocolErrors: string[] = [];
  windowStartUs = Number.POSITIVE_INFINITY;
  windowEndUs = Number.POSITIVE_INFINITY;
  /** Publish latency: request written → answer read, for requests sent in the window. */
  latency = new LatencyHistogram();
  onAnswer: () => void = () => {};
  private readonly connections: Connection[] = [];
  private nextConnection = 0;

  /**
   * `connectionCount` connections (no more than there are topics), but at least one per target:
   * connection `c` publishes to target `c % targets.length`.
   */
  constructor(
    readonly targets: readonly PublishTarget[],
    readonly topicNames: readonly string[],
    connectionCount: number,
    /** Messages per request and the batch route; undefined: one publish per request. */
    readonly batch?: { readonly size: number; readonly path: string } | undefined,
  ) {
    if (targets.length === 0) throw new Error('no target to publish to');
    this.ackedByTopic = new Uint32Array(topicNames.length);
    this.ackedByTarget = new Uint32Array(targets.length);
    const topicCount = topicNames.length;
    const count = topicCount === 0 ? 0 : Math.max(Math.min(connectionCount, topicCount), targets.length);
    for (let c = 0; c < count; c++) {
      const topics: number[] = [];
      if (topicCount >= count) for (let t = c; t < topicCount; t += count) topics.push(t);
      else topics.push(c % topicCount);
      this.connections.push(new Connection(this, c, c % targets.length, topics));
    }
  }

  async connect(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.connected));
  }

  get connectionCount(): number {
    return this.connections.length;
  }

  /** Requests written and not yet answered, on all connections. */
  get inflight(): number {
    let n = 0;
    for (const c of this.connections) n += c.inflight;
    return n;
  }

  get openConnections(): number {
    return this.connections.filter((c) => !c.closed).length;
  }

  resetStep(step: number): void {
    this.step = step;
    this.sent = 0;
    this.acked = 0;
    this.ackedInWindow = 0;
    this.failed = 0;
    this.ackedByTopic.fill(0);
    this.ackedByTarget.fill(0);
    for (const c of this.connections) c.resetStep();
    this.latency = new LatencyHistogram();
    this.windowStartUs = Number.POSITIVE_INFINITY;
    this.windowEndUs = Number.POSITIVE_INFINITY;
  }

  /**
   * Sends up to `budget` messages, at most `pipeline` requests in flight per connection (with
   * batches: whole batches only), spreading
   * them over the connections. With several targets no connection takes more than its even
   * share of one budget, so that every node gets its part of the publishes (a saturated step's
   * budget comes in bursts that would otherwise land on whichever connection is next); with
   * one target a burst stays on one connection, pipelined, as it always did. Returns how many
   * were sent.
   */
  fill(budget: number, pipeline: number): number {
    let sent = 0;
    const count = this.connections.length;
    const share = this.targets.length > 1 ? Math.ceil(budget / count) : budget;
    // Start after the connection the last fill ended on, so a small budget is spread out.
    for (let k = 0; k < count && sent < budget; k++) {
      const index = (this.nextConnection + k) % count;
      const c = this.connections[index]!;
      if (c.closed) continue;
      const perRequest = this.batch?.size ?? 1;
      let n = Math.min((pipeline - c.inflightRequests) * perRequest, budget - sent, share);
      n -= n % perRequest;
      if (n <= 0) continue;
      c.send(n);
      sent += n;
      this.nextConnection = (index + 1) % count;
    }
    return sent;
  }

  close(): void {
    for (const c of this.connections) c.stop();
  }
}
