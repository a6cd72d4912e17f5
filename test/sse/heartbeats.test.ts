/**
 * Heartbeats go to idle streams only: a stream that carries messages needs no comment to stay
 * open, and writing one to each of 10,000 busy subscribers is a sweep of 10,000 writes that a
 * publish arriving meanwhile waits behind. No stream is silent for longer than the interval.
 * Raw-socket subscribers record when each heartbeat chunk (`:\n\n`) arrived.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, publish } from '../helpers/sse-client.js';

const INTERVAL_MS = 200;
/** How late a heartbeat may be on a loaded test machine (timer and event-loop jitter). */
const JITTER_MS = 120;
const HEARTBEAT_CHUNK = '3\r\n:\n\n\r\n';

/** A subscriber over a raw socket that notes the arrival time of every heartbeat. */
class HeartbeatRecorder {
  readonly heartbeats: number[] = [];
  text = '';
  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.text += chunk;
      for (let at = chunk.indexOf(HEARTBEAT_CHUNK); at >= 0; at = chunk.indexOf(HEARTBEAT_CHUNK, at + 1)) this.heartbeats.push(performance.now());
    });
    socket.on('error', () => {});
  }

  static async open(hub: TestHub, topic: string): Promise<HeartbeatRecorder> {
    const socket = connect(Number(new URL(hub.url).port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const recorder = new HeartbeatRecorder(socket);
    socket.write(`GET /messages/subscribe/${topic} HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n\r\n`);
    await eventually(() => recorder.text.includes('Subscribed to id'), 5000, 'the greeting');
    return recorder;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('heartbeats', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', heartbeatInterval: INTERVAL_MS });
  });
  after(() => hub.close());

  it('go to idle streams at least once per interval, not to streams that carry messages, and resume once those fall quiet', async () => {
    const busy = await HeartbeatRecorder.open(hub, 'hb-busy');
    const quiet = await HeartbeatRecorder.open(hub, 'hb-quiet');
    try {
      const started = performance.now();
      let lastPublished = started;
      while (performance.now() - started < 8 * INTERVAL_MS) {
        await publish(hub.url, 'hb-busy', 'tick');
        lastPublished = performance.now();
        await sleep(INTERVAL_MS / 4);
      }
      await eventually(() => (busy.text.match(/data: tick\n/g) ?? []).length > 0, 5000, 'the messages');

      assert.equal(busy.heartbeats.length, 0, 'a stream that received a message every quarter interval got heartbeats');
      // An idle stream is never silent for longer than the interval.
      const quietBeats = quiet.heartbeats.filter((at) => at > started);
      assert.ok(quietBeats.length >= 6, `the idle stream got ${quietBeats.length} heartbeats in 8 intervals`);
      for (let i = 1; i < quietBeats.length; i++) {
        const gap = quietBeats[i]! - quietBeats[i - 1]!;
        assert.ok(gap <= INTERVAL_MS + JITTER_MS, `the idle stream was silent for ${gap.toFixed(0)} ms between heartbeats`);
      }

      await eventually(() => busy.heartbeats.length > 0, 2 * INTERVAL_MS + JITTER_MS * 2, 'a heartbeat once the busy stream fell quiet');
      const silence = busy.heartbeats[0]! - lastPublished;
      assert.ok(silence >= INTERVAL_MS / 2, `a heartbeat came ${silence.toFixed(0)} ms after the last message`);
    } finally {
      busy.socket.destroy();
      quiet.socket.destroy();
    }
  });
});
