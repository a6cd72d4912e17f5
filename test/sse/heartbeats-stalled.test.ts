/**
 * A subscriber with the `skip` policy whose socket is full (it stopped reading) holds its frames
 * in the hub (BacklogQueue) until the socket drains. Heartbeats are queued there too. Nothing is
 * written while it waits for `drain`, so a "quiet" count that only a write resets says "quiet"
 * on every tick: a stalled stream should still be given at most one heartbeat per interval
 * (they take backlog room and, with `skip`, push queued messages out of it).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, publish } from '../helpers/sse-client.js';

const INTERVAL_MS = 200;
const HEARTBEAT_CHUNK = '3\r\n:\n\n\r\n';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('heartbeats to a stalled subscriber', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', heartbeatInterval: INTERVAL_MS, maxBacklog: 256 * 1024 * 1024 });
  });
  after(() => hub.close());

  it('queue at most one heartbeat per interval while its socket waits for drain (skip policy)', async () => {
    const socket = connect(Number(new URL(hub.url).port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', () => {});
    try {
      socket.write(`GET /messages/subscribe/hb-stalled?slow=skip HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n\r\n`);
      await eventually(() => text.includes('Subscribed to id'), 5000, 'the greeting');
      socket.pause();
      const stalledAt = performance.now();
      // Far more than loopback's socket buffers take: the hub's side then waits for `drain`.
      const big = 'x'.repeat(900 * 1024);
      for (let i = 0; i < 24; i++) await publish(hub.url, 'hb-stalled', `${i}:${big}`);
      await sleep(10 * INTERVAL_MS);
      const resumedAt = performance.now();
      socket.resume();
      await eventually(() => text.includes('23:xxx'), 20_000, 'the last message');
      await sleep(50);
      const stalledMs = resumedAt - stalledAt;
      const heartbeats = text.split(HEARTBEAT_CHUNK).length - 1;
      const allowed = Math.ceil(stalledMs / INTERVAL_MS) + 2;
      assert.ok(heartbeats <= allowed, `${heartbeats} heartbeats queued for a subscriber stalled ${stalledMs.toFixed(0)} ms (interval ${INTERVAL_MS} ms; at most ${allowed} expected)`);
    } finally {
      socket.destroy();
    }
  });
});
