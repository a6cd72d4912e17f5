/**
 * The benchmark's load generator must count exactly, whatever the framing: these tests feed its
 * parsers, and then its real socket code, from a deliberately awkward fake server that splits
 * heads, chunk-size lines, CRLFs and events across reads, merges several events into one read,
 * mixes LF, CR and CRLF line ends, interleaves comments and unknown fields, and answers
 * publishes with both Content-Length and chunked bodies. A server that drops or repeats a
 * message must be caught.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HttpResponseSplitter } from '../../bench/loadgen/http-responses.js';
import { LatencyHistogram } from '../../bench/loadgen/histogram.js';
import { decodePayload, encodePayload, PAYLOAD_SIZE, type PayloadHeader } from '../../bench/loadgen/payload.js';
import type { PhasePlan } from '../../bench/loadgen/plan.js';
import { runPhase } from '../../bench/loadgen/runner.js';
import { DATA_PREFIX_BYTES, SseReader } from '../../bench/loadgen/sse-reader.js';
import { chunk, frame, pieces, random, startAwkwardHub, type AwkwardHub } from './awkward-hub.js';
import { startHub, type TestHub } from '../helpers/hub.js';

describe('SseReader', () => {
  const header: PayloadHeader = { step: 0, lane: 0, seq: 0, sentUs: 0 };

  for (const chunked of [true, false]) {
    for (const max of [1, 3, 17, 4096]) {
      test(`${chunked ? 'chunked' : 'identity'} stream cut into pieces of up to ${max} bytes`, () => {
        const rand = random(max * (chunked ? 7 : 13));
        let body = ': hi\n\ndata: Subscribed to id x\n\n';
        const count = 300;
        for (let seq = 1; seq <= count; seq++) body += frame(rand, seq, encodePayload(4, 1, seq, 1000 + seq));
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
              assert.equal(header.lane, 1);
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
    const text = encodePayload(7, 12, 123, 456789);
    assert.equal(Buffer.byteLength(text), PAYLOAD_SIZE);
    const out: PayloadHeader = { step: 0, lane: 0, seq: 0, sentUs: 0 };
    assert.ok(decodePayload(Buffer.from(`"${text}"`), 40, out));
    assert.deepEqual(out, { step: 7, lane: 12, seq: 123, sentUs: 456789 });
    assert.equal(decodePayload(Buffer.from('Subscribed to id x'), 18, out), false);
  });

  test(`the largest header the bench produces fits the ${DATA_PREFIX_BYTES} data bytes the reader keeps`, () => {
    // Step 99, lane 99, 10 million messages on one lane, a load generator up 27 hours.
    const text = `"${encodePayload(99, 99, 9_999_999, 99_999_999_999)}"`;
    const out: PayloadHeader = { step: 0, lane: 0, seq: 0, sentUs: 0 };
    assert.ok(decodePayload(Buffer.from(text).subarray(0, DATA_PREFIX_BYTES), DATA_PREFIX_BYTES, out));
    assert.deepEqual(out, { step: 99, lane: 99, seq: 9_999_999, sentUs: 99_999_999_999 });
  });
});

function plan(port: number, topics: string[], perTopic: number): PhasePlan {
  const base = { connections: 2, warmupMs: 100, durationMs: 400, drainTimeoutMs: 10_000, drainIdleMs: 500 };
  return {
    phase: 'awkward',
    targets: [{ host: '127.0.0.1', port }],
    subscribePath: '/messages/subscribe/{id}',
    publishPath: '/messages/{id}',
    serverPids: [process.pid],
    subscriptions: { topics, perTopic },
    steps: [
      { step: 'rate', mode: 'rate', rate: 50, pipeline: 4, ...base },
      { step: 'saturated', mode: 'saturated', window: 20, pipeline: 8, ...base },
    ],
  };
}

describe('load generator against an awkward server', () => {
  const hubs: AwkwardHub[] = [];
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
    const hub = await startAwkwardHub({ chunked: true, drop: { subscriber: 0, lane: 0 } });
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
    const hub = await startAwkwardHub({ chunked: false, duplicate: { subscriber: 1, lane: 0 } });
    hubs.push(hub);
    const result = await runPhase(plan(hub.port, ['a'], 3), () => {});
    for (const step of result.steps) {
      assert.equal(step.lost, 0, step.step);
      assert.equal(step.duplicates, 1, step.step);
    }
  });
});

describe('load generator: batch publishes against a real hub', () => {
  let hub: TestHub | undefined;
  after(async () => {
    await hub?.close();
  });

  test('batches of 10 are acknowledged and delivered exactly, in whole batches; a peer without a batch route skips the step', async () => {
    hub = await startHub({ store: 'memory' });
    const { port } = new URL(hub.url);
    const batchPlan = (batchPublishPath: string | undefined): PhasePlan => ({
      phase: 'batch',
      targets: [{ host: '127.0.0.1', port: Number(port) }],
      subscribePath: '/messages/subscribe/{id}',
      publishPath: '/messages/{id}',
      batchPublishPath,
      serverPids: [process.pid],
      subscriptions: { topics: ['a', 'b', 'c', 'd', 'e'], perTopic: 2 },
      steps: [
        { step: 'single', mode: 'saturated', window: 20, connections: 2, pipeline: 1, warmupMs: 100, durationMs: 400, drainTimeoutMs: 10_000, drainIdleMs: 500 },
        { step: 'batch', mode: 'saturated', window: 40, connections: 2, pipeline: 1, batch: 10, warmupMs: 100, durationMs: 400, drainTimeoutMs: 10_000, drainIdleMs: 500 },
      ],
    });
    const result = await runPhase(batchPlan('/messages'), () => {});
    assert.deepEqual(result.steps.map((s) => s.step), ['single', 'batch']);
    for (const step of result.steps) {
      assert.ok(step.published > 20, `${step.step}: ${step.published} published`);
      assert.equal(step.publishFailed, 0, `${step.step}: ${JSON.stringify(step.notes)}`);
      assert.equal(step.delivered, step.published * 2, `${step.step}: ${JSON.stringify(step.notes)}`);
      assert.equal(step.lost + step.duplicates + step.outOfOrder, 0, step.step);
    }
    assert.equal(result.steps[1]!.published % 10, 0, 'whole batches only');

    const skipped = await runPhase(batchPlan(undefined), () => {});
    assert.deepEqual(skipped.steps.map((s) => s.step), ['single']);
  });
});
