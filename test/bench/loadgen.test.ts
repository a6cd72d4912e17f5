/**
 * The benchmark's load generator must count exactly, whatever the framing: these tests feed its
 * parsers, and then its real socket code, from a deliberately awkward fake server that splits
 * heads, chunk-size lines, CRLFs and events across reads, merges several events into one read,
 * mixes LF, CR and CRLF line ends, interleaves comments and unknown fields, and answers
 * publishes with both Content-Length and chunked bodies. A server that drops or repeats a
 * message must be caught.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { HttpResponseSplitter } from '../../bench/loadgen/http-responses.js';
import { LatencyHistogram } from '../../bench/loadgen/histogram.js';
import { decodePayload, encodePayload, PAYLOAD_SIZE, type PayloadHeader } from '../../bench/loadgen/payload.js';
import type { PhasePlan } from '../../bench/loadgen/plan.js';
import { runPhase } from '../../bench/loadgen/runner.js';
import { SseReader } from '../../bench/loadgen/sse-reader.js';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const LINE_ENDS = ['\n', '\r\n', '\r'] as const;

/** One event with awkward but legal extras around the data line. */
function frame(rand: () => number, id: number, data: string): string {
  const le = LINE_ENDS[Math.floor(rand() * 3)]!;
  let out = '';
  if (rand() < 0.3) out += `: comment ${id}${le}`;
  if (rand() < 0.7) out += `id: ${id}${le}`;
  if (rand() < 0.3) out += `event: message${le}`;
  if (rand() < 0.2) out += `retry: 1000${le}`;
  if (rand() < 0.2) out += `unknownfield${le}`;
  out += rand() < 0.5 ? `data: ${data}${le}` : `data:${data}${le}`;
  if (rand() < 0.2) out += `data: second line${le}`;
  return `${out}${le}`;
}

/** Wraps bytes in chunked transfer encoding, in chunks of random sizes, some with extensions. */
function chunk(rand: () => number, body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i < body.length) {
    const n = Math.min(body.length - i, 1 + Math.floor(rand() * 40));
    const ext = rand() < 0.1 ? ';x=1' : '';
    const size = rand() < 0.5 ? n.toString(16) : n.toString(16).toUpperCase();
    parts.push(Buffer.from(`${size}${ext}\r\n`), body.subarray(i, i + n), Buffer.from('\r\n'));
    i += n;
  }
  return Buffer.concat(parts);
}

/** Cuts bytes into pieces of 1 to `max` bytes. */
function pieces(rand: () => number, bytes: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('SseReader', () => {
  const header: PayloadHeader = { step: 0, seq: 0, sentUs: 0 };

  for (const chunked of [true, false]) {
    for (const max of [1, 3, 17, 4096]) {
      test(`${chunked ? 'chunked' : 'identity'} stream cut into pieces of up to ${max} bytes`, () => {
        const rand = random(max * (chunked ? 7 : 13));
        let body = ': hi\n\ndata: Subscribed to id x\n\n';
        const count = 300;
        for (let seq = 1; seq <= count; seq++) body += frame(rand, seq, encodePayload(4, seq, 1000 + seq));
        const head = `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n${chunked ? 'Transfer-Encoding: chunked\r\n' : ''}\r\n`;
        const bytes = Buffer.concat([Buffer.from(head), chunked ? chunk(rand, Buffer.from(body)) : Buffer.from(body)]);

        const seen: number[] = [];
        let others = 0;
        let status = 0;
        const reader = new SseReader({
          onHead: (s, c) => {
            status = s;
            assert.equal(c, chunked);
          },
          onEvent: (data, length) => {
            if (decodePayload(data, length, header)) {
              assert.equal(header.step, 4);
              assert.equal(header.sentUs, 1000 + header.seq);
              seen.push(header.seq);
            } else {
              others++;
            }
          },
          onError: (message) => assert.fail(message),
        });
        for (const piece of pieces(rand, bytes, max)) reader.push(piece);
        assert.equal(status, 200);
        assert.deepEqual(seen, Array.from({ length: count }, (_, i) => i + 1));
        assert.equal(others, 1, 'the greeting is an event; the comment is not');
      });
    }
  }

  test('a CRLF split between two reads ends one line, not two', () => {
    const events: string[] = [];
    const reader = new SseReader({
      onHead: () => {},
      onEvent: (data, length) => events.push(Buffer.from(data.subarray(0, length)).toString()),
      onError: (message) => assert.fail(message),
    });
    for (const piece of ['HTTP/1.1 200 OK\r', '\n\r', '\n', 'data: a\r', '\n', 'data: b\r', '\n\r', '\n', 'data: c\r\r']) reader.push(Buffer.from(piece));
    assert.deepEqual(events, ['a', 'c'], 'a and b are one event (two data lines), c is the next');
  });

  test('a broken chunk framing is reported, not miscounted', () => {
    let error = '';
    const reader = new SseReader({ onHead: () => {}, onEvent: () => {}, onError: (m) => (error = m) });
    reader.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
    assert.match(error, /chunk size/);
  });
});

describe('HttpResponseSplitter', () => {
  test('pipelined answers with Content-Length, chunked and empty bodies, cut anywhere', () => {
    const rand = random(99);
    const answers: string[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = i % 3;
      statuses.push(kind === 2 ? 204 : 200 + (i % 2));
      const json = `{"id":"${i}"}`;
      if (kind === 0) answers.push(`HTTP/1.1 ${200 + (i % 2)} OK\r\nContent-Length: ${json.length}\r\n\r\n${json}`);
      else if (kind === 1) answers.push(`HTTP/1.1 ${200 + (i % 2)} OK\r\ntransfer-encoding: chunked\r\n\r\n${chunk(rand, Buffer.from(`queued messages: ${i}`)).toString()}0\r\n\r\n`);
      else answers.push('HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n');
    }
    const got: number[] = [];
    const splitter = new HttpResponseSplitter((status) => got.push(status));
    for (const piece of pieces(rand, Buffer.from(answers.join('')), 23)) splitter.push(Buffer.from(piece));
    assert.deepEqual(got, statuses);
  });
});

describe('LatencyHistogram', () => {
  test('quantiles within 0.2% and the exact maximum', () => {
    const h = new LatencyHistogram();
    for (let v = 1; v <= 100_000; v++) h.record(v);
    assert.equal(h.count, 100_000);
    assert.equal(h.max, 100_000);
    assert.ok(Math.abs(h.quantile(0.5) - 50_000) / 50_000 < 0.002, String(h.quantile(0.5)));
    assert.ok(Math.abs(h.quantile(0.99) - 99_000) / 99_000 < 0.002, String(h.quantile(0.99)));
    assert.equal(h.quantile(0.001), 100);
  });
});

describe('payload', () => {
  test(`is ${PAYLOAD_SIZE} bytes and decodes, also JSON-quoted`, () => {
    const text = encodePayload(7, 123, 456789);
    assert.equal(Buffer.byteLength(text), PAYLOAD_SIZE);
    const out: PayloadHeader = { step: 0, seq: 0, sentUs: 0 };
    assert.ok(decodePayload(Buffer.from(`"${text}"`), 40, out));
    assert.deepEqual(out, { step: 7, seq: 123, sentUs: 456789 });
    assert.equal(decodePayload(Buffer.from('Subscribed to id x'), 18, out), false);
  });
});

interface AwkwardHubOptions {
  readonly chunked: boolean;
  /** Subscriber index (in order of connection) that never gets message `seq` 3 of a topic. */
  readonly dropFor?: number;
  /** Subscriber index that gets message `seq` 3 twice. */
  readonly duplicateFor?: number;
}

/**
 * A fake hub on the bench's two routes that frames everything as awkwardly as the protocol
 * allows: events are queued per subscriber and written in random pieces (1–40 bytes, or all
 * at once), one piece per event-loop turn, so reads split and merge at arbitrary places.
 */
async function startAwkwardHub(options: AwkwardHubOptions): Promise<{ port: number; close(): Promise<void> }> {
  const rand = random(options.chunked ? 1 : 2);
  const topics = new Map<string, Subscriber[]>();
  let subscriberCount = 0;
  let nextId = 1;

  class Subscriber {
    private queue: Buffer[] = [];
    private writing = false;
    constructor(
      readonly socket: net.Socket,
      readonly index: number,
    ) {}
    send(text: string): void {
      const body = Buffer.from(text);
      this.queue.push(...pieces(rand, options.chunked ? chunk(rand, body) : body, rand() < 0.3 ? 4096 : 40));
      if (!this.writing) {
        this.writing = true;
        setImmediate(() => this.pump());
      }
    }
    private pump(): void {
      // Sometimes one piece per turn (split reads), sometimes many at once (merged reads).
      const n = rand() < 0.5 ? 1 : this.queue.length;
      for (const piece of this.queue.splice(0, n)) if (!this.socket.destroyed) this.socket.write(piece);
      if (this.queue.length > 0) setImmediate(() => this.pump());
      else this.writing = false;
    }
  }

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < end + 4 + length) return;
        const body = buffer.subarray(end + 4, end + 4 + length).toString();
        buffer = buffer.subarray(end + 4 + length);
        const [method, path] = head.split(' ');
        const sub = /^\/messages\/subscribe\/(.+)$/.exec(path ?? '');
        if (method === 'GET' && sub) {
          const subscriber = new Subscriber(socket, subscriberCount++);
          const list = topics.get(sub[1]!) ?? [];
          list.push(subscriber);
          topics.set(sub[1]!, list);
          socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n${options.chunked ? 'Transfer-Encoding: chunked\r\n' : ''}\r\n`);
          subscriber.send(': hi\n\ndata: Subscribed\n\n');
          continue;
        }
        const id = /^\/messages\/(.+)$/.exec(path ?? '')?.[1] ?? '';
        const seq = Number(body.split(',')[1]);
        for (const subscriber of topics.get(id) ?? []) {
          if (seq === 3 && subscriber.index === options.dropFor) continue;
          const event = frame(rand, nextId, body);
          subscriber.send(seq === 3 && subscriber.index === options.duplicateFor ? event + event : event);
        }
        const answer = `{"id":"${nextId++}"}`;
        // Answers alternate framings and are cut in two writes.
        const text =
          nextId % 2 === 0
            ? `HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n\r\n${answer}`
            : `HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n${answer.length.toString(16)}\r\n${answer}\r\n0\r\n\r\n`;
        const cut = 1 + Math.floor(rand() * (text.length - 1));
        socket.write(text.slice(0, cut));
        socket.write(text.slice(cut));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const list of topics.values()) for (const s of list) s.socket.destroy();
      }),
  };
}

function plan(port: number, topics: string[], perTopic: number): PhasePlan {
  const base = { connections: 2, warmupMs: 100, durationMs: 400, drainTimeoutMs: 10_000, drainIdleMs: 500 };
  return {
    phase: 'awkward',
    host: '127.0.0.1',
    port,
    subscribePath: '/messages/subscribe/{id}',
    publishPath: '/messages/{id}',
    serverPid: process.pid,
    subscriptions: { topics, perTopic },
    steps: [
      { step: 'rate', mode: 'rate', rate: 50, pipeline: 4, ...base },
      { step: 'saturated', mode: 'saturated', window: 20, pipeline: 8, ...base },
    ],
  };
}

describe('load generator against an awkward server', () => {
  const hubs: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const hub of hubs) await hub.close();
  });

  for (const chunked of [true, false]) {
    test(`counts every delivery exactly (${chunked ? 'chunked' : 'identity'} streams)`, async () => {
      const hub = await startAwkwardHub({ chunked });
      hubs.push(hub);
      const result = await runPhase(plan(hub.port, ['a', 'b', 'c'], 4), () => {});
      assert.equal(result.subscribersOpened, 12);
      for (const step of result.steps) {
        assert.ok(step.published > 5, `${step.step}: ${step.published} published`);
        assert.equal(step.publishFailed, 0);
        assert.equal(step.expected, step.published * 4);
        assert.equal(step.delivered, step.expected, `${step.step}: ${JSON.stringify(step.notes)}`);
        assert.equal(step.lost, 0);
        assert.equal(step.duplicates, 0);
        assert.equal(step.outOfOrder, 0);
        assert.ok(step.latencyUs.count > 0 && step.latencyUs.p50 !== null);
      }
    });
  }

  test('a dropped message is counted as lost', async () => {
    const hub = await startAwkwardHub({ chunked: true, dropFor: 0 });
    hubs.push(hub);
    const result = await runPhase(plan(hub.port, ['a'], 3), () => {});
    for (const step of result.steps) {
      assert.equal(step.lost, 1, step.step);
      assert.equal(step.delivered, step.expected - 1);
      assert.ok(step.outOfOrder >= 1);
      assert.ok(step.notes.some((n) => n.includes('lost')));
    }
  });

  test('a repeated message is counted as a duplicate', async () => {
    const hub = await startAwkwardHub({ chunked: false, duplicateFor: 1 });
    hubs.push(hub);
    const result = await runPhase(plan(hub.port, ['a'], 3), () => {});
    for (const step of result.steps) {
      assert.equal(step.lost, 0, step.step);
      assert.equal(step.duplicates, 1, step.step);
    }
  });
});
