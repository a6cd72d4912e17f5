import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, publish, type TestStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(8).toString('hex');

/**
 * Publishes `fields`, then a public sentinel on `sentinelTopic`; once the sentinel arrived on
 * `stream`, everything published before it has been decided (dispatch is in commit order), so
 * "not received" needs no sleep.
 */
async function settle(hub: TestHub, stream: TestStream, sentinelTopic: string): Promise<void> {
  const sentinel = `sentinel-${unique()}`;
  const res = await mercurePublish(hub.url, [['topic', sentinelTopic], ['data', sentinel]]);
  assert.equal(res.status, 200, res.text);
  await stream.waitFor((events) => events.some((e) => e.data === sentinel));
}

describe('Mercure endpoint on an open hub', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ retry: 2000 });
  });
  after(() => hub.close());

  it('publishes a form with a custom id: 200, text/plain body with the id, delivered with that id', async () => {
    const topic = unique();
    const stream = await openStream(mercureUrl(hub.url, [['match', topic]]));
    try {
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['content-type'], 'text/event-stream');
      const id = `id-["${topic}"]`;
      const data = `data for\n\n        raw string`;
      const res = await mercurePublish(hub.url, [['topic', topic], ['id', id], ['data', data]]);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain(?:$|;)/);
      assert.equal(res.text, id);
      await stream.waitForCount(1);
      assert.deepEqual(stream.events[0], { id, event: undefined, data });
      assert.deepEqual(stream.retries, [2000]);
    } finally {
      stream.close();
    }
  });

  it('assigns an id when none is given, and honours type and retry', async () => {
    const topic = unique();
    const stream = await openStream(mercureUrl(hub.url, [['match', topic]]));
    try {
      const res = await mercurePublish(hub.url, [['topic', topic], ['data', 'x'], ['type', 'update'], ['retry', '1234']]);
      assert.equal(res.status, 200);
      assert.match(res.text, /^\d+$/);
      await stream.waitForCount(1);
      assert.deepEqual(stream.events[0], { id: res.text, event: 'update', data: 'x' });
      assert.ok(stream.retries.includes(1234), `retry hints: ${stream.retries}`);
    } finally {
      stream.close();
    }
  });

  it('delivers an update on every one of its topics, and once to a subscriber of several', async () => {
    const [a, b] = [unique(), unique()];
    const onA = await openStream(mercureUrl(hub.url, [['match', a]]));
    const onB = await openStream(mercureUrl(hub.url, [['topic', b]]));
    const onBoth = await openStream(mercureUrl(hub.url, [['match', a], ['match', b]]));
    try {
      const res = await mercurePublish(hub.url, [['topic', a], ['topic', b], ['data', 'both']]);
      assert.equal(res.status, 200);
      for (const stream of [onA, onB, onBoth]) await stream.waitForCount(1);
      await settle(hub, onBoth, a);
      assert.deepEqual(onBoth.events.map((e) => e.data).filter((d) => d === 'both'), ['both']);
    } finally {
      onA.close();
      onB.close();
      onBoth.close();
    }
  });

  it('matches each selector kind and skips what it does not match', async () => {
    const r = unique();
    const cases: { name: string; params: [string, string][]; topic: string; received: boolean }[] = [
      { name: 'match exact', params: [['match', `https://example.net/foo/${r}`]], topic: `https://example.net/foo/${r}`, received: true },
      { name: 'match exact, other topic', params: [['match', `https://example.net/foo/other-${r}`]], topic: `https://example.net/foo/${r}`, received: false },
      { name: 'match_exact alias', params: [['match_exact', `exact-${r}`]], topic: `exact-${r}`, received: true },
      { name: 'URL pattern', params: [['match_urlpattern', `https://example.net/pattern-${r}/:id`]], topic: `https://example.net/pattern-${r}/42`, received: true },
      { name: 'URL pattern, other path', params: [['match_urlpattern', `https://example.net/pattern-${r}/:id`]], topic: `https://example.net/pattern-${r}/42/more`, received: false },
      { name: 'URL pattern with a regexp group', params: [['match_urlpattern', `https://example.net/feed-${r}/:type(news|alerts)`]], topic: `https://example.net/feed-${r}/alerts`, received: true },
      { name: 'URL pattern never matches a non-URL topic', params: [['match_urlpattern', `https://example.net/x/*`]], topic: `plain-${r}`, received: false },
      { name: 'legacy topic, URI template', params: [['topic', `https://example.net/tpl-${r}/{id}`]], topic: `https://example.net/tpl-${r}/${r}`, received: true },
      { name: 'legacy topic, URI template, other path', params: [['topic', `https://example.net/tpl-${r}/{id}`]], topic: `https://example.net/other-${r}/x`, received: false },
      { name: 'legacy topic, URI template does not cross segments', params: [['topic', `https://example.net/tpl-${r}/{id}`]], topic: `https://example.net/tpl-${r}/1/admin`, received: false },
      { name: 'legacy topic, exact string', params: [['topic', `legacy-${r}`]], topic: `legacy-${r}`, received: true },
      { name: 'multiple selectors', params: [['topic', 'foo'], ['match', `multi-${r}`]], topic: `multi-${r}`, received: true },
    ];
    for (const c of cases) {
      const sentinelTopic = `sentinel-${unique()}`;
      const stream = await openStream(mercureUrl(hub.url, [...c.params, ['match', sentinelTopic]]));
      try {
        assert.equal(stream.status, 200, c.name);
        const data = `payload-${unique()}`;
        const res = await mercurePublish(hub.url, [['topic', c.topic], ['data', data]]);
        assert.equal(res.status, 200, `${c.name}: ${res.text}`);
        await settle(hub, stream, sentinelTopic);
        assert.equal(stream.events.some((e) => e.data === data), c.received, c.name);
      } finally {
        stream.close();
      }
    }
  });

  it('treats * as every topic, for match, match_urlpattern and topic alike', async () => {
    for (const name of ['match', 'match_urlpattern', 'topic']) {
      const stream = await openStream(mercureUrl(hub.url, [[name, '*']]));
      try {
        const data = `any-${unique()}`;
        await mercurePublish(hub.url, [['topic', unique()], ['data', data]]);
        await stream.waitFor((events) => events.some((e) => e.data === data));
      } finally {
        stream.close();
      }
    }
  });

  it('crosses APIs: /messages/demo reaches Mercure subscribers of topic demo, and back', async () => {
    const id = `cross-${unique()}`;
    const mercure = await openStream(mercureUrl(hub.url, [['match', id]]));
    const article = await openStream(`${hub.url}/messages/subscribe/${id}`);
    try {
      await article.waitForCount(1); // greeting
      const fromArticle = await publish(hub.url, id, 'from the article API');
      await mercure.waitForCount(1);
      assert.deepEqual(mercure.events[0], { id: fromArticle, event: undefined, data: 'from the article API' });
      const res = await mercurePublish(hub.url, [['topic', id], ['data', 'from Mercure'], ['id', `m-${id}`]]);
      assert.equal(res.status, 200);
      await article.waitFor((events) => events.some((e) => e.data === 'from Mercure'));
      assert.equal(article.events.find((e) => e.data === 'from Mercure')?.id, `m-${id}`);
    } finally {
      mercure.close();
      article.close();
    }
  });

  it('resumes: Last-Event-ID header wins over last_event_id and lastEventID, and Mercure-Last-Event-ID says where replay starts', async () => {
    const topic = unique();
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const res = await mercurePublish(hub.url, [['topic', topic], ['data', `m${n}`], ['id', `${topic}-${n}`]]);
      ids.push(res.text);
    }
    const byHeader = await openStream(mercureUrl(hub.url, [['match', topic], ['last_event_id', ids[0]!]]), { 'Last-Event-ID': ids[1]! });
    const byQuery = await openStream(mercureUrl(hub.url, [['match', topic], ['last_event_id', ids[0]!], ['lastEventID', ids[1]!]]));
    const byLegacyQuery = await openStream(mercureUrl(hub.url, [['topic', topic], ['lastEventID', ids[1]!]]));
    const earliest = await openStream(mercureUrl(hub.url, [['match', topic], ['last_event_id', 'earliest']]));
    const unknown = await openStream(mercureUrl(hub.url, [['match', topic], ['last_event_id', 'never-issued']]));
    const live = await openStream(mercureUrl(hub.url, [['match', topic]]));
    try {
      await byHeader.waitForCount(1);
      assert.deepEqual(byHeader.events.map((e) => e.data), ['m3']);
      assert.equal(byHeader.headers['mercure-last-event-id'], ids[1]);
      await byQuery.waitForCount(2);
      assert.deepEqual(byQuery.events.map((e) => e.data), ['m2', 'm3']);
      assert.equal(byQuery.headers['mercure-last-event-id'], ids[0]);
      await byLegacyQuery.waitForCount(1);
      assert.deepEqual(byLegacyQuery.events.map((e) => e.data), ['m3']);
      await earliest.waitForCount(3);
      assert.deepEqual(earliest.events.map((e) => e.id), ids);
      assert.equal(earliest.headers['mercure-last-event-id'], 'earliest');
      await unknown.waitForCount(3);
      assert.equal(unknown.headers['mercure-last-event-id'], 'earliest');
      assert.equal(live.headers['mercure-last-event-id'], undefined);
      await settle(hub, live, topic);
      assert.equal(live.events.filter((e) => /^m\d$/.test(e.data)).length, 0);
    } finally {
      for (const s of [byHeader, byQuery, byLegacyQuery, earliest, unknown, live]) s.close();
    }
  });

  it('refuses reserved matcher names, a missing selector and too many matchers with 400', async () => {
    for (const query of ['match_regexp=x', 'match_uritemplate=x', 'matchx=x', 'match_URLPATTERN=x', '', 'foo=bar', 'match=']) {
      const res = await fetch(`${hub.url}/.well-known/mercure?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      await res.body?.cancel();
    }
    const many = Array.from({ length: 101 }, (_, i) => ['match', `t${i}`] as [string, string]);
    const res = await fetch(mercureUrl(hub.url, many));
    assert.equal(res.status, 400);
    await res.body?.cancel();
    // Names are case-sensitive: `Match` is not under the reserved prefix and is ignored.
    const ok = await openStream(`${hub.url}/.well-known/mercure?match=a&Match=b`);
    assert.equal(ok.status, 200);
    ok.close();
  });

  it("refuses matcher values with C0 or C1 control characters or DEL with 400 (the spec's value constraint), on GET and QUERY", async () => {
    for (const value of ['a\u0001b', 'tab\there', 'line\nbreak', 'del\u007f', 'c1\u0085', 'https://example.com/\u009f:id']) {
      for (const name of ['match', 'match_urlpattern', 'topic']) {
        const res = await fetch(mercureUrl(hub.url, [[name, value]]));
        assert.equal(res.status, 400, `${name}=${JSON.stringify(value)}`);
        assert.match(await res.text(), /control characters/);
      }
      const query = await fetch(`${hub.url}/.well-known/mercure`, { method: 'QUERY', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams([['match', value]]).toString() });
      assert.equal(query.status, 400, `QUERY match=${JSON.stringify(value)}`);
      await query.body?.cancel();
    }
  });

  it('refuses a pathological URL pattern with 400, quickly', async () => {
    const patterns = [
      'https://example.com/*a*a*a*b',
      'https://example.com/:a-:b-:c-:d',
      'https://example.com/:x((?:a+)+)b',
      'https://example.com/:x((a|a)*)',
      'https://example.com/:x(a*a*a*)',
      'https://example.com/:x(\\w+(?=a))',
      'https://example.com/' + ':p/'.repeat(400),
    ];
    for (const pattern of patterns) {
      const started = performance.now();
      const res = await fetch(mercureUrl(hub.url, [['match_urlpattern', pattern]]));
      assert.equal(res.status, 400, pattern);
      await res.body?.cancel();
      assert.ok(performance.now() - started < 1000, `${pattern} answered in ${performance.now() - started} ms`);
    }
    // The most expensive accepted shape costs little even against a topic built to fail late.
    const stream = await openStream(mercureUrl(hub.url, [['match_urlpattern', 'https://example.com/*a*b']]));
    try {
      assert.equal(stream.status, 200);
      const started = performance.now();
      const res = await mercurePublish(hub.url, [['topic', `https://example.com/${'a'.repeat(200)}`], ['data', 'slow?']]);
      assert.equal(res.status, 200);
      assert.ok(performance.now() - started < 1000);
    } finally {
      stream.close();
    }
  });

  it('validates updates: topics, reserved namespace, wildcard, id, type, retry, content type, size', async () => {
    const topic = unique();
    const bad: { fields: [string, string][]; status: number; what: string }[] = [
      { fields: [['data', 'no topic']], status: 400, what: 'missing topic' },
      { fields: [['topic', '*'], ['data', 'x']], status: 400, what: 'wildcard topic' },
      { fields: [['topic', '/.well-known/mercure/subscriptions/x'], ['data', 'x']], status: 400, what: 'reserved path' },
      { fields: [['topic', 'https://example.com/.well-known/mercure'], ['data', 'x']], status: 400, what: 'reserved URL' },
      { fields: [['topic', 'https://example.com/a/../.well-known/mercure/x'], ['data', 'x']], status: 400, what: 'dot segments' },
      { fields: [['topic', 'https://example.com/%2E%2E/.well-known%2Fmercure'], ['data', 'x']], status: 400, what: 'percent-encoded' },
      { fields: [['topic', '/.well-known/%252e%252e/.well-known/mercure'], ['data', 'x']], status: 400, what: 'double-encoded' },
      { fields: [['topic', topic], ['id', '#fragment']], status: 400, what: '# id' },
      { fields: [['topic', topic], ['id', 'earliest']], status: 400, what: 'earliest id' },
      { fields: [['topic', topic], ['id', 'bad\u0007id']], status: 400, what: 'control character id' },
      { fields: [['topic', topic], ['id', 'line\nbreak']], status: 400, what: 'line break id' },
      { fields: [['topic', topic], ['type', 'mercure']], status: 400, what: 'reserved type' },
      { fields: [['topic', topic], ['type', 'a\nb']], status: 400, what: 'line break type' },
      { fields: [['topic', topic], ['retry', '10s']], status: 400, what: 'retry not digits' },
      { fields: [['topic', topic], ['retry', '-1']], status: 400, what: 'negative retry' },
    ];
    for (const b of bad) {
      const res = await mercurePublish(hub.url, b.fields);
      assert.equal(res.status, b.status, `${b.what}: ${res.text}`);
    }
    const json = await fetch(`${hub.url}/.well-known/mercure`, { method: 'POST', body: JSON.stringify({ topic }), headers: { 'content-type': 'application/json' } });
    assert.equal(json.status, 415);
    await json.body?.cancel();
    const huge = await mercurePublish(hub.url, [['topic', topic], ['data', 'x'.repeat(2 * 1024 * 1024)]]);
    assert.equal(huge.status, 413);
    // A duplicate custom id is accepted, and each update keeps it.
    for (let i = 0; i < 2; i++) {
      const res = await mercurePublish(hub.url, [['topic', topic], ['id', `dup-${topic}`]]);
      assert.equal(res.status, 200);
      assert.equal(res.text, `dup-${topic}`);
    }
    // Topics that merely look like the namespace are fine.
    const fine = await mercurePublish(hub.url, [['topic', 'https://example.com/.well-known/mercure-not'], ['data', 'x']]);
    assert.equal(fine.status, 200, fine.text);
  });

  it('advertises the hub with a Link rel="mercure" header (discovery)', async () => {
    const id = unique();
    await publish(hub.url, id, 'x');
    const info = await fetch(`${hub.url}/messages/${id}`);
    assert.equal(info.headers.get('link'), '</.well-known/mercure>; rel="mercure"');
    await info.body?.cancel();
    const stream = await openStream(`${hub.url}/messages/subscribe/${id}`);
    assert.equal(stream.headers.link, '</.well-known/mercure>; rel="mercure"');
    stream.close();
    const withPublicUrl = await startHub({ publicUrl: 'https://hub.example.com/relay/' });
    try {
      const res = await fetch(`${withPublicUrl.url}/messages/${id}`);
      assert.equal(res.headers.get('link'), '<https://hub.example.com/relay/.well-known/mercure>; rel="mercure"');
      await res.body?.cancel();
    } finally {
      await withPublicUrl.close();
    }
  });
});
