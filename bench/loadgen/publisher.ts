/**
 * Publishes over keep-alive HTTP/1.1 connections on raw sockets, several requests per write when
 * more than one is due (pipelining), and matches answers to requests in order. Each connection
 * owns a fixed subset of the topics, so the messages of one topic always travel on one
 * connection and the hub sees them in `seq` order.
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
  /** Requests written and not yet answered: topic and send time, in order. */
  private readonly inflightTopic: number[] = [];
  private readonly inflightSentUs: number[] = [];
  private inflightHead = 0;
  private cursor = 0;
  /** True while there is no usable socket (closed by the server and not yet reopened). */
  closed = true;
  private stopped = false;
  readonly connected: Promise<void>;

  constructor(
    private readonly publisher: Publisher,
    readonly topics: readonly number[],
  ) {
    this.connected = this.open();
  }

  /**
   * Opens the socket; a server that ends the connection (`Connection: close`, a cap on requests
   * per connection) gets a new one, and what was in flight on the old one counts as failed.
   */
  private open(): Promise<void> {
    const publisher = this.publisher;
    const { host, port } = publisher.target;
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

  get inflight(): number {
    return this.inflightTopic.length - this.inflightHead;
  }

  /** Writes `count` publishes (one write), round-robin over this connection's topics. */
  send(count: number): void {
    const p = this.publisher;
    const nowUs = Math.round(performance.now() * 1000);
    let text = '';
    for (let k = 0; k < count; k++) {
      const topic = this.topics[this.cursor]!;
      this.cursor = (this.cursor + 1) % this.topics.length;
      const seq = ++p.sentByTopic[topic]!;
      text += p.requestHead[topic]! + encodePayload(p.step, seq, nowUs, PAYLOAD_SIZE);
      this.inflightTopic.push(topic);
      this.inflightSentUs.push(nowUs);
    }
    p.sent += count;
    this.socket.write(text, 'latin1');
  }

  private answered(status: number, closeAfter: boolean): void {
    const p = this.publisher;
    if (this.inflightHead >= this.inflightTopic.length) {
      p.protocolErrors.push('an answer to no request');
      return;
    }
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
      if (sentUs >= p.windowStartUs && sentUs < p.windowEndUs) {
        p.latency.record(performance.now() * 1000 - sentUs);
        p.ackedInWindow++;
      }
    } else {
      p.failed++;
      p.statuses[status] = (p.statuses[status] ?? 0) + 1;
    }
    if (closeAfter) {
      // No more answers will come on this socket: stop writing to it at once.
      this.closed = true;
      this.socket.end();
    }
    p.onAnswer();
  }
}

/** A set of publishing connections and their counters for the current step. */
export class Publisher {
  readonly requestHead: string[];
  readonly sentByTopic: Uint32Array;
  readonly ackedByTopic: Uint32Array;
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

  constructor(
    readonly target: PublishTarget,
    readonly topicNames: readonly string[],
    connectionCount: number,
  ) {
    this.requestHead = topicNames.map(
      (name) =>
        `POST ${target.path(name)} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nContent-Type: text/plain\r\nContent-Length: ${PAYLOAD_SIZE}\r\n\r\n`,
    );
    this.sentByTopic = new Uint32Array(topicNames.length);
    this.ackedByTopic = new Uint32Array(topicNames.length);
    const count = Math.min(connectionCount, topicNames.length);
    for (let c = 0; c < count; c++) {
      const topics: number[] = [];
      for (let t = c; t < topicNames.length; t += count) topics.push(t);
      this.connections.push(new Connection(this, topics));
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
    this.sentByTopic.fill(0);
    this.ackedByTopic.fill(0);
    this.latency = new LatencyHistogram();
    this.windowStartUs = Number.POSITIVE_INFINITY;
    this.windowEndUs = Number.POSITIVE_INFINITY;
  }

  /**
   * Sends up to `budget` publishes, at most `pipeline` in flight per connection, spreading
   * them over the connections. Returns how many were sent.
   */
  fill(budget: number, pipeline: number): number {
    let sent = 0;
    const count = this.connections.length;
    // Start after the connection the last fill ended on, so a small budget is spread out.
    for (let k = 0; k < count && sent < budget; k++) {
      const index = (this.nextConnection + k) % count;
      const c = this.connections[index]!;
      if (c.closed) continue;
      const n = Math.min(pipeline - c.inflight, budget - sent);
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
