/**
 * A consumer whose connection dies without a FIN (a proxy or NAT that vanished) resumes at once
 * on reconnection: the SDK takes the consumer over (`takeover=1`) instead of waiting behind 409s
 * while the hub still holds the dead stream open. A subscription whose stream is taken over by
 * another stops with CLIENT_ERR_CONSUMER_SUPERSEDED rather than take it back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RelayClientError, subscribe, type RelayEvent, type RetryInfo } from '../../src/client/index.js';
import { startHub } from '../helpers/hub.js';
import { eventually, openStream, publish } from '../helpers/sse-client.js';
import { startStallingProxy } from '../helpers/stalling-proxy.js';

describe('client SDK: consumer takeover', () => {
  it('resumes a consumer through a fresh connection when its stream goes half-open, with what was not acknowledged', async (t) => {
    // Heartbeats well inside the idle timeout; a short retry hint so the test does not wait 3 s.
    const hub = await startHub({ store: 'memory', heartbeatInterval: 200, retry: 100 });
    t.after(() => hub.close());
    const proxy = await startStallingProxy(hub.url);
    t.after(() => proxy.close());

    const events: RelayEvent[] = [];
    const retries: RetryInfo[] = [];
    let opens = 0;
    const subscription = subscribe({
      url: proxy.url,
      id: 'jobs',
      consumer: 'worker',
      idleTimeoutMs: 1000,
      onOpen: () => opens++,
      onMessage: (event) => events.push(event),
      onRetry: (info) => retries.push(info),
    });
    t.after(() => subscription.close());
    await eventually(() => opens === 1, 10_000, 'the stream to open');
    const first = await publish(hub.url, 'jobs', 'job 1');
    await eventually(() => events.length === 1, 10_000, 'job 1');
    await subscription.ack(first);

    proxy.stall();
    const second = await publish(hub.url, 'jobs', 'job 2');
    await eventually(() => events.some((e) => e.id === second), 15_000, 'job 2 through a fresh connection');
    assert.equal(opens, 2, `one reconnection, not a string of 409s: ${JSON.stringify(retries.map((r) => [(r.error as RelayClientError).code, r.error.message]))}`);
    assert.deepEqual(retries.map((r) => (r.error as RelayClientError).code), ['CLIENT_ERR_STREAM_IDLE']);
    assert.deepEqual(events.map((e) => e.data), ['job 1', 'job 2'], 'the acknowledged job is not redelivered');
  });

  it('stops with CLIENT_ERR_CONSUMER_SUPERSEDED when another stream takes its consumer over', async (t) => {
    const hub = await startHub({ store: 'memory', retry: 100 });
    t.after(() => hub.close());
    const errors: unknown[] = [];
    const retries: RetryInfo[] = [];
    let opens = 0;
    const subscription = subscribe({ url: hub.url, id: 'jobs', consumer: 'worker', onOpen: () => opens++, onError: (error) => errors.push(error), onRetry: (info) => retries.push(info) });
    t.after(() => subscription.close());
    await eventually(() => opens === 1, 10_000, 'the stream to open');

    const other = await openStream(`${hub.url}/messages/subscribe/jobs?consumer=worker&takeover=1`);
    t.after(() => other.close());
    assert.equal(other.status, 200);
    await eventually(() => errors.length === 1, 10_000, 'the subscription to stop');
    assert.equal((errors[0] as RelayClientError).code, 'CLIENT_ERR_CONSUMER_SUPERSEDED');
    assert.equal(subscription.closed, true);
    assert.deepEqual(retries, [], 'it does not reconnect to take the consumer back');
    const id = await publish(hub.url, 'jobs', 'for the new stream');
    await other.waitFor((events) => events.some((e) => e.id === id));
    assert.equal(opens, 1);
  });
});
