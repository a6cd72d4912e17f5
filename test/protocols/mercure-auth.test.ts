import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  accessToken,
  CONFORMANCE_ACCESS_TOKEN,
  CONFORMANCE_AUDIENCE,
  CONFORMANCE_ISSUER,
  CONFORMANCE_LEGACY_TOKEN,
  legacyToken,
  MERCURE_SECRET,
  mercurePublish,
  mercureUrl,
} from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, post, type TestStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(8).toString('hex');
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

describe('Mercure and /messages authorization (HS256 keys, RFC 9068 issuer and audience)', () => {
  let hub: TestHub;
  let open: TestHub;
  let strict: TestHub;
  let publisher: string;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, jwtIssuer: CONFORMANCE_ISSUER, jwtAudience: CONFORMANCE_AUDIENCE });
    strict = await startHub({ publisherJwtKey: MERCURE_SECRET, jwtIssuer: CONFORMANCE_ISSUER, jwtAudience: CONFORMANCE_AUDIENCE, privateUpdates: 'every-topic' });
    open = await startHub({ publisherJwtKey: MERCURE_SECRET, anonymous: true });
    publisher = await accessToken({ publish: [{ match: '*' }] });
  });
  after(async () => {
    await hub.close();
    await open.close();
    await strict.close();
  });

  const defaultHub = (): TestHub => hub;

  /** Publishes a public sentinel and waits for it: every earlier update has been decided. */
  async function settle(target: TestHub, stream: TestStream, topic: string): Promise<void> {
    const data = `sentinel-${unique()}`;
    const res = await mercurePublish(target.url, [['topic', topic], ['data', data]], bearer(publisher));
    assert.equal(res.status, 200, res.text);
    await stream.waitFor((events) => events.some((e) => e.data === data));
  }

  it("accepts Mercure's conformance tokens verbatim (RFC 9068 and legacy)", async () => {
    for (const token of [CONFORMANCE_ACCESS_TOKEN, CONFORMANCE_LEGACY_TOKEN]) {
      const res = await mercurePublish(hub.url, [['topic', unique()], ['data', 'x'], ['id', `c-${unique()}`]], bearer(token));
      assert.equal(res.status, 200, res.text);
    }
  });

  it('answers 401 with a bare Bearer challenge without a token, 403 insufficient_scope without the grant', async () => {
    const topic = `https://example.com/books/${unique()}`;
    const none = await mercurePublish(hub.url, [['topic', topic], ['data', 'x']]);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), `Bearer realm="sse-relay", resource_metadata="${hub.url}/.well-known/oauth-protected-resource/.well-known/mercure"`);
    const other = await accessToken({ publish: [{ match: 'https://example.com/other' }] });
    const denied = await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(other));
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer realm="sse-relay", error="insufficient_scope"/);
    // A subscribe grant is not a publish grant.
    const subscriber = await accessToken({ subscribe: [{ match: '*' }] });
    assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(subscriber))).status, 403);
    // Every topic of the update must be granted, alternates included.
    const books = await accessToken({ publish: [{ match: 'https://example.com/books/:id', match_type: 'urlpattern' }] });
    assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(books))).status, 200);
    assert.equal((await mercurePublish(hub.url, [['topic', topic], ['topic', 'https://example.com/users/1'], ['data', 'x']], bearer(books))).status, 403);
    // Legacy grants are URI templates.
    const legacy = await legacyToken({ publish: ['https://example.com/books/{id}'] });
    assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(legacy))).status, 200);
    assert.equal((await mercurePublish(hub.url, [['topic', `${topic}/x`], ['data', 'x']], bearer(legacy))).status, 403);
    // A token without any grant claim is valid but allows nothing.
    const empty = await legacyToken(undefined, { sub: 'nobody' });
    assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', 'x']], bearer(empty))).status, 403);
  });

  it('requires a subscriber token unless --anonymous', async () => {
    const res = await fetch(mercureUrl(hub.url, [['match', 'x']]));
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer realm="sse-relay", resource_metadata="${hub.url}/.well-known/oauth-protected-resource/.well-known/mercure"`);
    await res.body?.cancel();
    const anonymous = await openStream(mercureUrl(open.url, [['match', 'x']]));
    assert.equal(anonymous.status, 200);
    anonymous.close();
    // A token with no grant at all may still subscribe (to public updates).
    const bare = await openStream(mercureUrl(hub.url, [['match', 'x']]), bearer(await accessToken({})));
    assert.equal(bare.status, 200);
    bare.close();
  });

  for (const rule of ['any-topic', 'every-topic'] as const) {
    it(`delivers private updates only to subscribers granted ${rule === 'any-topic' ? 'one' : 'every'} topic (--private-updates ${rule}), live and on replay`, async () => {
      const hub = rule === 'any-topic' ? defaultHub() : strict;
      const r = unique();
      const book = `https://example.com/books/${r}`;
      const user = `https://example.com/users/${r}`;
      const sentinel = `https://example.com/sentinel/${r}`;
      const grants = {
        all: await accessToken({ subscribe: [{ match: '*' }] }),
        books: await accessToken({ subscribe: [{ match: 'https://example.com/books/:id', match_type: 'urlpattern' }] }),
        bookExact: await accessToken({ subscribe: [{ match: book }] }),
        booksLegacy: await legacyToken({ subscribe: ['https://example.com/books/{id}'] }),
        bookAndUser: await accessToken({ subscribe: [{ match: book }, { match: user }] }),
        other: await accessToken({ subscribe: [{ match: 'https://example.com/books/other' }] }),
        none: await accessToken({}),
      };
      // Published before anyone subscribes: seen only through replay (earliest).
      const early = [
        { data: `private-book-${r}`, topics: [book] },
        { data: `private-book-and-user-${r}`, topics: [book, user] },
      ];
      for (const update of early) {
        const res = await mercurePublish(hub.url, [...update.topics.map((t): [string, string] => ['topic', t]), ['data', update.data], ['private', 'on']], bearer(publisher));
        assert.equal(res.status, 200, res.text);
      }
      // Under any-topic (Mercure's rule), a grant on the book is enough for the update on book and user.
      const onBookOnly = rule === 'any-topic' ? ['book', 'book-and-user'] : ['book'];
      const expected: Record<keyof typeof grants, string[]> = {
        all: ['book', 'book-and-user'],
        books: onBookOnly,
        bookExact: onBookOnly,
        booksLegacy: onBookOnly,
        bookAndUser: ['book', 'book-and-user'],
        other: [],
        none: [],
      };
      const streams = new Map<string, TestStream>();
      try {
        for (const [name, token] of Object.entries(grants)) {
          const stream = await openStream(
            mercureUrl(hub.url, [['match_urlpattern', 'https://example.com/:kind/:id'], ['match', sentinel], ['last_event_id', 'earliest']]),
            bearer(token),
          );
          assert.equal(stream.status, 200, name);
          streams.set(name, stream);
        }
        const anonymous = await openStream(mercureUrl(open.url, [['match', '*']]));
        streams.set('anonymous', anonymous);
        // Now live: the same two updates again, and one public update everyone gets.
        for (const update of early) {
          const res = await mercurePublish(hub.url, [...update.topics.map((t): [string, string] => ['topic', t]), ['data', `live-${update.data}`], ['private', 'on']], bearer(publisher));
          assert.equal(res.status, 200);
          const onOpen = await mercurePublish(open.url, [['topic', book], ['data', `live-${update.data}`], ['private', 'on']], bearer(publisher));
          assert.equal(onOpen.status, 200);
        }
        for (const [name, stream] of streams) {
          const target = name === 'anonymous' ? open : hub;
          await settle(target, stream, sentinel);
          const received = stream.events.map((e) => e.data).filter((d) => d.includes(r) && !d.startsWith('sentinel'));
          const wanted = name === 'anonymous' ? [] : expected[name as keyof typeof grants].flatMap((k) => [`private-${k}-${r}`]);
          const wantedAll = [...wanted, ...wanted.map((d) => `live-${d}`)];
          assert.deepEqual(received.sort(), wantedAll.sort(), name);
        }
      } finally {
        for (const stream of streams.values()) stream.close();
      }
    });
  }

  it('takes the token from the Authorization header first, then __Secure-mercure_access_token, then mercureAuthorization', async () => {
    const topic = `https://example.com/cookie/${unique()}`;
    const granted = await accessToken({ subscribe: [{ match: topic }] });
    const notGranted = await accessToken({ subscribe: [{ match: 'https://example.com/nothing' }] });
    const cases: { name: string; headers: Record<string, string>; status: number; receives?: boolean }[] = [
      { name: 'Mercure 1.x cookie', headers: { Cookie: `__Secure-mercure_access_token=${granted}` }, status: 200, receives: true },
      { name: 'legacy cookie', headers: { Cookie: `other=1; mercureAuthorization=${granted}` }, status: 200, receives: true },
      { name: 'header wins over cookie', headers: { ...bearer(notGranted), Cookie: `__Secure-mercure_access_token=${granted}` }, status: 200, receives: false },
      { name: '1.x cookie wins over legacy cookie', headers: { Cookie: `mercureAuthorization=${granted}; __Secure-mercure_access_token=${notGranted}` }, status: 200, receives: false },
      { name: 'invalid header, valid cookie', headers: { Authorization: 'Bearer nope', Cookie: `__Secure-mercure_access_token=${granted}` }, status: 401 },
      { name: 'lower-case bearer scheme', headers: { Authorization: `bearer ${granted}` }, status: 200, receives: true },
    ];
    for (const c of cases) {
      const stream = await openStream(mercureUrl(hub.url, [['match', topic]]), c.headers);
      try {
        assert.equal(stream.status, c.status, c.name);
        if (c.status !== 200) continue;
        const data = `private-${unique()}`;
        assert.equal((await mercurePublish(hub.url, [['topic', topic], ['data', data], ['private', '']], bearer(publisher))).status, 200);
        await settle(hub, stream, topic);
        assert.equal(stream.events.some((e) => e.data === data), c.receives, c.name);
      } finally {
        stream.close();
      }
    }
  });

  it('applies the same rules to /messages/{id}, with the JSON error shape and a challenge', async () => {
    const id = `article-${unique()}`;
    const url = `${hub.url}/messages/${id}`;
    const body = JSON.stringify({ message: 'hello' });
    const json = { 'content-type': 'application/json' };

    const none = await post(url, body, json);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'HUB_ERR_UNAUTHORIZED');
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="sse-relay"');
    const invalid = await post(url, body, { ...json, ...bearer('x.y.z') });
    assert.equal(invalid.status, 401);
    assert.equal(invalid.json.error.code, 'HUB_ERR_TOKEN_INVALID');
    assert.match(invalid.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    const other = await post(url, body, { ...json, ...bearer(await accessToken({ publish: [{ match: 'other' }] })) });
    assert.equal(other.status, 403);
    assert.equal(other.json.error.code, 'HUB_ERR_FORBIDDEN');
    assert.match(other.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    const ok = await post(url, body, { ...json, ...bearer(await accessToken({ publish: [{ match: id }] })) });
    assert.equal(ok.status, 200, ok.text);

    // Subscribing needs a subscribe grant on the id (no --anonymous here).
    const anonymous = await openStream(`${hub.url}/messages/subscribe/${id}`);
    assert.equal(anonymous.status, 401);
    anonymous.close();
    const wrongGrant = await openStream(`${hub.url}/messages/subscribe/${id}`, bearer(await accessToken({ subscribe: [{ match: 'other' }] })));
    assert.equal(wrongGrant.status, 403);
    wrongGrant.close();
    const granted = await openStream(`${hub.url}/messages/subscribe/${id}?lastEventId=earliest`, bearer(await legacyToken({ subscribe: [id] })));
    try {
      assert.equal(granted.status, 200);
      await granted.waitFor((events) => events.some((e) => e.data === 'hello'));
    } finally {
      granted.close();
    }
    const info = await fetch(url);
    assert.equal(info.status, 401);
    await info.body?.cancel();

    // With --anonymous, anyone may subscribe to public messages; private ones stay hidden.
    const publicStream = await openStream(`${open.url}/messages/subscribe/${id}`);
    try {
      assert.equal(publicStream.status, 200);
      await publicStream.waitForCount(1);
      assert.equal((await mercurePublish(open.url, [['topic', id], ['data', 'secret'], ['private', 'on']], bearer(publisher))).status, 200);
      assert.equal((await mercurePublish(open.url, [['topic', id], ['data', 'public']], bearer(publisher))).status, 200);
      await publicStream.waitFor((events) => events.some((e) => e.data === 'public'));
      assert.ok(!publicStream.events.some((e) => e.data === 'secret'));
    } finally {
      publicStream.close();
    }
  });

  it('ends a subscription when its token expires', async () => {
    const token = await accessToken({ subscribe: [{ match: '*' }] }, { exp: Math.floor(Date.now() / 1000) + 2 });
    const stream = await openStream(mercureUrl(hub.url, [['match', 'expiring']]), bearer(token));
    assert.equal(stream.status, 200);
    const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('stream still open 6 s after its token expired')), 6000).unref());
    await Promise.race([stream.ended, deadline]);
    assert.match(stream.raw(), /closed: access token expired/);
  });
});
