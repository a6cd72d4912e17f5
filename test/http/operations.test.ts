import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { mercurePublish, mercureUrl } from '../auth/tokens.js';
import { eventually, openStream, publish } from '../helpers/sse-client.js';

/** Reads one sample of a metric from the Prometheus text exposition. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('operations: health, readiness, metrics, console', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  it('counts exactly what happened', async () => {
    const a = await openStream(`${hub.url}/messages/subscribe/counted`);
    const b = await openStream(`${hub.url}/messages/subscribe/counted`);
    await Promise.all([a.waitForCount(1), b.waitForCount(1)]);
    for (let i = 0; i < 3; i++) await publish(hub.url, 'counted', `m${i}`);
    await publish(hub.url, 'nobody-listens', 'x');
    await Promise.all([a.waitForCount(4), b.waitForCount(4)]);
    const replaying = await openStream(`${hub.url}/messages/subscribe/counted?lastEventId=earliest`);
    await replaying.waitForCount(4);

    const res = await fetch(`${hub.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.equal(sample(text, 'sse_relay_messages_published_total'), 4);
    assert.equal(sample(text, 'sse_relay_messages_delivered_total'), 6);
    assert.equal(sample(text, 'sse_relay_messages_replayed_total'), 3);
    assert.equal(sample(text, 'sse_relay_subscribers'), 3);
    assert.equal(sample(text, 'sse_relay_subscriptions', '{api="messages"}'), 3);
    assert.equal(sample(text, 'sse_relay_store_append_seconds_count'), 4);
    assert.equal(sample(text, 'sse_relay_publish_to_dispatch_seconds_count'), 4);
    assert.equal(sample(text, 'sse_relay_subscribers_dropped_total'), 0);
    assert.ok(text.includes('nodejs_eventloop_lag_seconds'), 'event-loop lag is exported');
    assert.ok(text.includes('process_resident_memory_bytes'), 'process metrics are exported');

    for (const s of [a, b, replaying]) s.close();
    await eventually(() => hub.hub.subscriptionCount === 0, 5000, 'subscribers to leave');
    const later = await (await fetch(`${hub.url}/metrics`)).text();
    assert.equal(sample(later, 'sse_relay_subscribers'), 0);
  });

  it('counts as replayed only what a resuming subscriber was sent, not what its filter left out', async () => {
    const replayedSoFar = async (): Promise<number> => sample(await (await fetch(`${hub.url}/metrics`)).text(), 'sse_relay_messages_replayed_total') ?? 0;
    for (const [topic, count] of [['https://example.com/counted/a', 2], ['https://example.com/elsewhere/b', 5]] as const) {
      for (let i = 0; i < count; i++) assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', `${topic} ${i}`]])).status, 200);
    }
    const before = await replayedSoFar();
    const resuming = await openStream(mercureUrl(hub.url, [['match_urlpattern', 'https://example.com/counted/*'], ['lastEventID', 'earliest']]));
    await resuming.waitForCount(2);
    assert.deepEqual(resuming.events.map((e) => e.data), ['https://example.com/counted/a 0', 'https://example.com/counted/a 1']);
    assert.equal((await replayedSoFar()) - before, 2, 'the five messages of another topic the pattern read past are not counted');
    resuming.close();
  });

  it('reports live figures as JSON for the console', async () => {
    const res = await fetch(`${hub.url}/stats`);
    const stats = await res.json();
    assert.equal(stats.store, 'memory');
    assert.equal(stats.ready, true);
    assert.equal(typeof stats.published, 'number');
    // The hub's position, by which the console tells replayed history from live messages.
    const id = await publish(hub.url, 'stats-position', 'x');
    assert.equal((await (await fetch(`${hub.url}/stats`)).json()).lastEventId, id);
  });

  it('answers /healthz and /readyz, and /readyz turns 503 while shutting down', async () => {
    const own = await startHub({ store: 'memory' });
    assert.equal((await fetch(`${own.url}/healthz`)).status, 200);
    const ready = await fetch(`${own.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await ready.json()).status, 'ready');
    // Hold a publish-free request open? Simpler: check the flag the route reads during close.
    const closing = own.close();
    assert.equal(own.hub.isReady(), false);
    await closing;
  });

  it('serves the web console without any external resource', async () => {
    const page = await fetch(`${hub.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    const html = await page.text();
    assert.ok(!/https?:\/\//.test(html), 'no absolute URLs (no CDN)');
    for (const asset of ['/console/console.js', '/console/console.css']) {
      assert.ok(html.includes(asset));
      const res = await fetch(`${hub.url}${asset}`);
      assert.equal(res.status, 200, asset);
    }
    const traversal = await fetch(`${hub.url}/console/..%2f..%2fpackage.json`);
    assert.equal(traversal.status, 404);
  });
});

describe('operations: protected metrics', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', metricsToken: 's3cret' });
  });
  after(() => hub.close());

  it('requires the bearer token when one is configured', async () => {
    const anonymous = await fetch(`${hub.url}/metrics`);
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).error.code, 'HUB_ERR_UNAUTHORIZED');
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await fetch(`${hub.url}/metrics`, { headers: { Authorization: 'Bearer wrong!' } })).status, 401);
    assert.equal((await fetch(`${hub.url}/metrics`, { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
  });
});
