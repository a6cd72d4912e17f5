/**
 * The SDK notices a half-open connection: a proxy between it and the hub stops forwarding in
 * both directions without closing anything, as when a hub or a NAT vanishes without a FIN.
 * Heartbeats keep a healthy stream alive past the idle timeout; silence beyond it makes the SDK
 * drop the connection and resume with `Last-Event-ID` through a fresh one, receiving what was
 * published meanwhile exactly once.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { RelayClientError, subscribe, type OpenInfo, type RelayEvent, type RetryInfo } from '../../src/client/index.js';
import { startHub } from '../helpers/hub.js';
import { eventually, publish } from '../helpers/sse-client.js';
import { startStallingProxy } from '../helpers/stalling-proxy.js';

const IDLE_TIMEOUT_MS = 1000;

describe('client idle timeout', () => {
  it('reconnects through a fresh connection when the stream goes half-open, resuming without gap or duplicate', async (t) => {
    // Heartbeats five times per idle timeout; a short retry hint so the test does not wait 3 s.
    const hub = await startHub({ store: 'memory', heartbeatInterval: 200, retry: 100 });
    t.after(() => hub.close());
    const proxy = await startStallingProxy(hub.url);
    t.after(() => proxy.close());

    const events: RelayEvent[] = [];
    const opens: { info: OpenInfo; at: number }[] = [];
    const retries: RetryInfo[] = [];
    const subscription = subscribe({
      url: proxy.url,
      id: 'half-open',
      idleTimeoutMs: IDLE_TIMEOUT_MS,
      onOpen: (info) => opens.push({ info, at: performance.now() }),
      onMessage: (event) => events.push(event),
      onRetry: (info) => retries.push(info),
    });
    t.after(() => subscription.close());

    await eventually(() => opens.length === 1, 10_000, 'the stream to open');
    const before = await publish(hub.url, 'half-open', 'before');
    await eventually(() => events.length === 1, 10_000, 'the first message');

    // Two and a half idle timeouts with nothing but heartbeats: they keep the stream alive.
    await sleep(2.5 * IDLE_TIMEOUT_MS);
    assert.equal(retries.length, 0, 'heartbeats reset the idle timer');
    assert.equal(opens.length, 1);

    proxy.stall();
    const stalledAt = performance.now();
    const during = await publish(hub.url, 'half-open', 'while stuck');

    await eventually(() => events.some((e) => e.data === 'while stuck'), 15_000, 'the message published while the connection was stuck');
    assert.equal(opens.length, 2, 'one reconnection');
    assert.deepEqual(opens[1]!.info, { reconnect: true, lastEventId: before });
    // The stall silenced heartbeats too, so only the watchdog can have ended the connection,
    // and not before it had been silent for (nearly) the whole timeout.
    assert.ok(opens[1]!.at - stalledAt >= IDLE_TIMEOUT_MS - 300, `reconnected ${Math.round(opens[1]!.at - stalledAt)} ms after the stall`);
    assert.equal(retries.length, 1);
    assert.ok(retries[0]!.error instanceof RelayClientError);
    assert.equal(retries[0]!.error.code, 'CLIENT_ERR_STREAM_IDLE');
    assert.equal(proxy.connections, 2, 'the resume went through a fresh connection');

    const after = await publish(hub.url, 'half-open', 'after');
    await eventually(() => events.some((e) => e.id === after), 10_000, 'a live message after the resume');
    assert.deepEqual(
      events.map((e) => [e.id, e.data]),
      [
        [before, 'before'],
        [during, 'while stuck'],
        [after, 'after'],
      ],
      'every message once, in order',
    );
  });

  it('refuses an idle timeout that is not a number of milliseconds >= 0', () => {
    for (const idleTimeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => subscribe({ url: 'http://127.0.0.1:1', id: 'x', idleTimeoutMs }), { code: 'CLIENT_ERR_INVALID_OPTIONS' });
    }
  });
});
