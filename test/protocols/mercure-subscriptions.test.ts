import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { accessToken, legacyToken, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, post, type ReceivedEvent, type TestStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(6).toString('hex');
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });
const DETAIL = 'https://mercure.rocks/authorization-detail';
const SUBSCRIPTIONS = '/.well-known/mercure/subscriptions';

interface Doc {
  id: string;
  type: string;
  match_type: string;
  match: string;
  subscriber: string;
  active: boolean;
  payload?: unknown;
}

const mercureEvents = (events: ReceivedEvent[]): Doc[] => events.filter((e) => e.event === 'mercure').map((e) => JSON.parse(e.data) as Doc);

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

describe('Mercure active subscriptions (--subscriptions)', () => {
  let hub: TestHub;
  let off: TestHub;
  let watcherToken: string;
  let publisher: string;
  before(async () => {
    // Like the spec's examples: the hub at https://example.com/.well-known/mercure.
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, publicUrl: 'https://example.com', subscriptions: true });
    off = await startHub({ publisherJwtKey: MERCURE_SECRET, publicUrl: 'https://example.com' });
    // A relative URL pattern, resolved against the hub URL, covers the events and the API alike.
    watcherToken = await accessToken({ subscribe: [{ match: `${SUBSCRIPTIONS}{/*}?`, match_type: 'urlpattern' }] });
    publisher = await accessToken({ publish: [{ match: '*' }] });
  });
  after(async () => {
    await hub.close();
    await off.close();
  });

  /** Subscribes to every subscription event (a relative URL pattern, resolved against the hub URL). */
  function watch(target: TestHub, token = watcherToken): Promise<TestStream> {
    return openStream(mercureUrl(target.url, [['match_urlpattern', `${SUBSCRIPTIONS}/:type/:match/:subscriber`]]), bearer(token));
  }

  it("publishes the spec's example event when a subscription starts and ends, and serves it on the three API URLs", async () => {
    const watcher = await watch(hub);
    const subscriberToken = await accessToken({ details: [{ type: DETAIL, actions: ['subscribe'], topics: [{ match: '*' }], payload: { foo: 'bar' } }] });
    const selector = `https://example.com/${unique()}/:selector`;
    const subscription = await openStream(mercureUrl(hub.url, [['match_urlpattern', selector]]), bearer(subscriberToken));
    try {
      const encodedMatch = encodeURIComponent(selector);
      await watcher.waitFor((events) => mercureEvents(events).some((d) => d.match === selector && d.active));
      const created = mercureEvents(watcher.events).find((d) => d.match === selector)!;
      assert.match(created.subscriber, /^urn:uuid:[0-9a-f-]{36}$/);
      assert.deepEqual(created, {
        id: `${SUBSCRIPTIONS}/urlpattern/${encodedMatch}/${encodeURIComponent(created.subscriber)}`,
        type: 'subscription',
        match_type: 'urlpattern',
        match: selector,
        subscriber: created.subscriber,
        active: true,
        payload: { foo: 'bar' },
      });
      // The spec's encoding: `urn%3Auuid%3A…`, `https%3A%2F%2Fexample.com%2F…%2F%3Aselector`.
      assert.ok(created.id.startsWith(`${SUBSCRIPTIONS}/urlpattern/https%3A%2F%2Fexample.com%2F`));
      assert.ok(created.id.endsWith(`%2F%3Aselector/urn%3Auuid%3A${created.subscriber.slice('urn:uuid:'.length)}`));

      const all = await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(watcherToken));
      assert.equal(all.status, 200);
      assert.match(all.headers.get('content-type') ?? '', /^application\/json/);
      const link = all.headers.get('link') ?? '';
      assert.match(link, /^<https:\/\/example\.com\/\.well-known\/mercure>; rel="mercure"; last-event-id="(\d+|earliest)"; type="mercure"; content-type="application\/json"$/);
      assert.equal(all.json.id, SUBSCRIPTIONS);
      assert.equal(all.json.type, 'subscriptions');
      assert.equal(all.json.lastEventID, /last-event-id="([^"]+)"/.exec(link)![1]);
      assert.deepEqual(all.json.subscriptions.find((d: Doc) => d.id === created.id), created);

      const byMatcher = await getJson(`${hub.url}${SUBSCRIPTIONS}/urlpattern/${encodedMatch}`, bearer(watcherToken));
      assert.equal(byMatcher.status, 200);
      assert.equal(byMatcher.json.id, `${SUBSCRIPTIONS}/urlpattern/${encodedMatch}`);
      assert.deepEqual(byMatcher.json.subscriptions, [created]);

      const single = await getJson(`${hub.url}${created.id}`, bearer(watcherToken));
      assert.equal(single.status, 200);
      assert.deepEqual(single.json, created);
      assert.match(single.headers.get('link') ?? '', /rel="mercure"; last-event-id="/);

      subscription.close();
      await watcher.waitFor((events) => mercureEvents(events).some((d) => d.id === created.id && !d.active));
      assert.deepEqual(mercureEvents(watcher.events).find((d) => d.id === created.id && !d.active), { ...created, active: false });
      assert.equal((await getJson(`${hub.url}${created.id}`, bearer(watcherToken))).status, 404);
      assert.deepEqual((await getJson(`${hub.url}${SUBSCRIPTIONS}/urlpattern/${encodedMatch}`, bearer(watcherToken))).json.subscriptions, []);
      // The events are delivered as `event: mercure` frames, private updates on their topic.
      const frame = watcher.events.find((e) => e.event === 'mercure' && JSON.parse(e.data).id === created.id)!;
      assert.ok(frame.id !== undefined);
    } finally {
      subscription.close();
      watcher.close();
    }
  });

  it("announces one subscription per matcher, one subscriber id per connection, with the payload of the first matching detail (the spec's payload example)", async () => {
    const run = unique();
    const token = await accessToken({
      details: [
        { type: DETAIL, actions: ['subscribe'], topics: [{ match: `https://example.com/foo-${run}` }], payload: { custom1: 'data only available for this topic' } },
        { type: DETAIL, actions: ['subscribe'], topics: [{ match: `https://example.com/bar-${run}/:id`, match_type: 'urlpattern' }], payload: { custom2: 'data available for matching subscriptions' } },
        { type: DETAIL, actions: ['subscribe'], topics: [{ match: '*' }], payload: { custom3: 'default data for all other subscriptions' } },
      ],
    });
    const odd = `urn:x:${run}:a%20b!'()*`;
    const stream = await openStream(
      mercureUrl(hub.url, [
        ['match', `https://example.com/foo-${run}`],
        ['match_urlpattern', `https://example.com/bar-${run}/:id`],
        ['match', odd],
      ]),
      bearer(token),
    );
    try {
      const all = await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(watcherToken));
      const mine: Doc[] = all.json.subscriptions.filter((d: Doc) => d.match.includes(run));
      assert.equal(mine.length, 3);
      assert.equal(new Set(mine.map((d) => d.subscriber)).size, 1);
      const byMatch = new Map(mine.map((d) => [d.match, d]));
      assert.deepEqual(byMatch.get(`https://example.com/foo-${run}`)!.payload, { custom1: 'data only available for this topic' });
      assert.deepEqual(byMatch.get(`https://example.com/bar-${run}/:id`)!.payload, { custom2: 'data available for matching subscriptions' });
      assert.deepEqual(byMatch.get(odd)!.payload, { custom3: 'default data for all other subscriptions' });
      // Percent-encoded exactly once, RFC 6570 style: `%` → `%25`, and `!'()*` too.
      const oddDoc = byMatch.get(odd)!;
      assert.ok(oddDoc.id.includes(`/exact/urn%3Ax%3A${run}%3Aa%2520b%21%27%28%29%2A/`), oddDoc.id);
      assert.equal((await getJson(`${hub.url}${oddDoc.id}`, bearer(watcherToken))).status, 200);
    } finally {
      stream.close();
    }
  });

  it("takes a legacy token's mercure.payload, and names hub 0.x's topic selectors uritemplate", async () => {
    const run = unique();
    const token = await legacyToken({ subscribe: ['*'], payload: { user: `legacy-${run}` } });
    const template = `https://example.com/books-${run}/{id}`;
    const stream = await openStream(mercureUrl(hub.url, [['topic', template]]), bearer(token));
    try {
      const listed = await getJson(`${hub.url}${SUBSCRIPTIONS}/uritemplate/${encodeURIComponent(template)}`, bearer(watcherToken));
      assert.equal(listed.status, 200);
      assert.equal(listed.json.subscriptions.length, 1);
      assert.deepEqual(listed.json.subscriptions[0].payload, { user: `legacy-${run}` });
      assert.equal(listed.json.subscriptions[0].match_type, 'uritemplate');
    } finally {
      stream.close();
    }
  });

  it("reconciles: a watcher resuming from the API's last-event-id receives every change made after the list was read", async () => {
    const run = unique();
    const token = await accessToken({ subscribe: [{ match: '*' }] });
    const first = await openStream(mercureUrl(hub.url, [['match', `https://example.com/first-${run}`]]), bearer(token));
    const listed = await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(watcherToken));
    assert.ok(listed.json.subscriptions.some((d: Doc) => d.match === `https://example.com/first-${run}`));
    const cursor = /last-event-id="([^"]+)"/.exec(listed.headers.get('link') ?? '')![1]!;
    // Changes after the list was read, before the watcher connects.
    const second = await openStream(mercureUrl(hub.url, [['match', `https://example.com/second-${run}`]]), bearer(token));
    first.close();
    await first.ended;
    second.close();
    await second.ended;
    const watcher = await openStream(
      mercureUrl(hub.url, [['match_urlpattern', `${SUBSCRIPTIONS}/:type/:match/:subscriber`], ['last_event_id', cursor]]),
      bearer(watcherToken),
    );
    try {
      await watcher.waitFor((events) => mercureEvents(events).filter((d) => d.match.includes(run)).length >= 3);
      const seen = mercureEvents(watcher.events)
        .filter((d) => d.match.includes(run))
        .map((d) => `${d.match.slice('https://example.com/'.length, -run.length - 1)}:${d.active}`);
      assert.ok(seen.includes('first:false'), seen.join());
      assert.ok(seen.includes('second:true'), seen.join());
      assert.ok(seen.includes('second:false'), seen.join());
      // `first:true` may come too (its event can commit just after the list was read): a
      // duplicate of a state the list already had, which the spec's reconciliation tolerates.
    } finally {
      watcher.close();
    }
  });

  it('validates cached answers: an ETag per body, 304 for If-None-Match while the subscription is unchanged, with the current cursor', async () => {
    const topic = `https://example.com/cached/${unique()}`;
    const subscription = await openStream(mercureUrl(hub.url, [['match', topic]]), bearer(watcherToken));
    try {
      const collection = `${hub.url}${SUBSCRIPTIONS}/exact/${encodeURIComponent(topic)}`;
      let listed: Doc[] = [];
      await eventually(async () => (listed = (await getJson(collection, bearer(watcherToken))).json.subscriptions).length === 1, 5000, 'the subscription to be listed');
      const single = await fetch(`${hub.url}${listed[0]!.id}`, { headers: bearer(watcherToken) });
      const etag = single.headers.get('etag')!;
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      assert.equal(single.headers.get('cache-control'), 'no-cache');
      const again = await fetch(`${hub.url}${listed[0]!.id}`, { headers: { ...bearer(watcherToken), 'If-None-Match': `"other", W/${etag}` } });
      assert.equal(again.status, 304);
      assert.equal(again.headers.get('etag'), etag);
      assert.equal(await again.text(), '');
      assert.match(again.headers.get('link') ?? '', /rel="mercure"; last-event-id="[^"]+"/);
      // A collection's body names the hub's cursor: another tag once anything was published.
      const first = await fetch(collection, { headers: bearer(watcherToken) });
      const tag = first.headers.get('etag')!;
      assert.equal((await fetch(collection, { headers: { ...bearer(watcherToken), 'If-None-Match': tag } })).status, 304);
      await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(publisher));
      const changed = await fetch(collection, { headers: { ...bearer(watcherToken), 'If-None-Match': tag } });
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get('etag'), tag);
      subscription.close();
      // An ended subscription is 404, whatever the If-None-Match.
      await eventually(async () => (await fetch(`${hub.url}${listed[0]!.id}`, { headers: { ...bearer(watcherToken), 'If-None-Match': etag } })).status === 404, 5000, 'a 404 once ended');
    } finally {
      subscription.close();
    }
  });

  it('authorizes the API on the requested path as a topic: 401 without a token, 403 without a matching subscribe grant, 404 for an unknown subscription', async () => {
    const none = await getJson(`${hub.url}${SUBSCRIPTIONS}`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="sse-relay", resource_metadata="https:\/\/example\.com\/\.well-known\/oauth-protected-resource\/\.well-known\/mercure"$/);
    const unrelated = await accessToken({ subscribe: [{ match: 'https://example.com/:x', match_type: 'urlpattern' }] });
    const denied = await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(unrelated));
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    // An exact grant on one matcher's collection opens that one only.
    const collection = `${SUBSCRIPTIONS}/exact/${encodeURIComponent('https://example.com/a-topic')}`;
    const narrow = await accessToken({ subscribe: [{ match: collection }] });
    assert.equal((await getJson(`${hub.url}${collection}`, bearer(narrow))).status, 200);
    assert.equal((await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(narrow))).status, 403);
    assert.equal((await getJson(`${hub.url}${collection}/urn%3Auuid%3Aunknown`, bearer(watcherToken))).status, 404);
    // `*` grants everything.
    const everything = await accessToken({ subscribe: [{ match: '*' }] });
    assert.equal((await getJson(`${hub.url}${SUBSCRIPTIONS}`, bearer(everything))).status, 200);
  });

  it('keeps subscription events private: a subscriber of every topic without a grant on them never receives one', async () => {
    const run = unique();
    const ungranted = await openStream(mercureUrl(hub.url, [['match', '*']]), bearer(await accessToken({ subscribe: [{ match: 'https://example.com/:x', match_type: 'urlpattern' }] })));
    const watcher = await watch(hub);
    try {
      const other = await openStream(mercureUrl(hub.url, [['match', `https://example.com/${run}`]]), bearer(await accessToken({})));
      await watcher.waitFor((events) => mercureEvents(events).some((d) => d.match === `https://example.com/${run}`));
      other.close();
      await watcher.waitFor((events) => mercureEvents(events).some((d) => d.match === `https://example.com/${run}` && !d.active));
      const sentinel = `sentinel-${run}`;
      assert.equal((await mercurePublish(hub.url, [['topic', 'https://example.com/s'], ['data', sentinel]], bearer(publisher))).status, 200);
      await ungranted.waitFor((events) => events.some((e) => e.data === sentinel));
      assert.deepEqual(ungranted.events.filter((e) => e.event === 'mercure'), []);
    } finally {
      ungranted.close();
      watcher.close();
    }
  });

  it('refuses the mercure event type and the reserved namespace from publishers, on both APIs', async () => {
    const mercure = await mercurePublish(hub.url, [['topic', 'https://example.com/x'], ['data', '{}'], ['type', 'mercure']], bearer(publisher));
    assert.equal(mercure.status, 400);
    const forged = await mercurePublish(hub.url, [['topic', `${SUBSCRIPTIONS}/exact/x/urn%3Auuid%3Ay`], ['data', '{}']], bearer(publisher));
    assert.equal(forged.status, 400);
    const json = { 'content-type': 'application/json', ...bearer(publisher) };
    const viaMessages = await post(`${hub.url}/messages/demo-${unique()}`, JSON.stringify({ message: '{}', event: 'mercure' }), json);
    assert.equal(viaMessages.status, 400);
    assert.equal(viaMessages.json.error.code, 'HUB_ERR_EVENT_TYPE_INVALID');
    const reserved = await post(`${hub.url}/messages/${encodeURIComponent(`${SUBSCRIPTIONS}/exact/x/y`)}`, JSON.stringify({ message: '{}' }), json);
    assert.equal(reserved.status, 400);
    assert.equal(reserved.json.error.code, 'HUB_ERR_TOPIC_RESERVED');
  });

  it('refuses, with --subscriptions, a matcher too long to announce (400), and is off by default (no API, no events)', async () => {
    const long = `https://example.com/${'a'.repeat(180)}`;
    const res = await fetch(mercureUrl(hub.url, [['match', long]]), { headers: bearer(await accessToken({})) });
    assert.equal(res.status, 400);
    await res.body?.cancel();
    const accepted = await openStream(mercureUrl(off.url, [['match', long]]), bearer(await accessToken({})));
    assert.equal(accepted.status, 200);
    accepted.close();
    assert.equal((await getJson(`${off.url}${SUBSCRIPTIONS}`, bearer(watcherToken))).status, 404);
    const metadata = await getJson(`${off.url}/.well-known/oauth-protected-resource/.well-known/mercure`);
    assert.equal(metadata.json.mercure_subscriptions, undefined);
  });
});
