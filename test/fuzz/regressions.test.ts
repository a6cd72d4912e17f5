/**
 * The bugs the fuzz, chaos and soak suites found, pinned as plain example tests so that they
 * stay fixed whatever the generators happen to produce.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, publish } from '../helpers/sse-client.js';
import { afterOpening, openRawStream, rawExchange, requestBytes } from './raw-http.js';

describe('regressions found by the robustness suites', () => {
  let hub: TestHub;
  let port: number;
  before(async () => {
    hub = await startHub({ maxBacklog: 64 * 1024, maxBodySize: 256 * 1024 });
    port = Number(new URL(hub.url).port);
  });
  after(() => hub?.close());

  const json = (body: Buffer): { error: { code: string; message: string } } => JSON.parse(body.toString('utf8'));
  const mercureForm = async (fields: Record<string, string>): Promise<string> => {
    const res = await fetch(`${hub.url}/.well-known/mercure`, { method: 'POST', body: new URLSearchParams(fields) });
    assert.equal(res.status, 200);
    return res.text();
  };

  it('requests Node refuses before routing get the JSON error shape: malformed (400), headers too large (431)', async () => {
    const malformed = await rawExchange(port, Buffer.from('GET /messages/?\u0000=x HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'));
    assert.equal(malformed.status, 400);
    assert.equal(json(malformed.body).error.code, 'HUB_ERR_BAD_REQUEST');
    const huge = await rawExchange(port, requestBytes({ method: 'GET', target: '/healthz', headers: { Cookie: `a=${'c'.repeat(40_000)}` } }));
    assert.equal(huge.status, 431);
    assert.equal(json(huge.body).error.code, 'HUB_ERR_HEADERS_TOO_LARGE');
  });

  it('router errors get the JSON shape without quoting the URL: bad percent-encoding (400), over-long id (400), CONNECT (405)', async () => {
    const bad = await rawExchange(port, requestBytes({ method: 'GET', target: '/messages/subscribe/%E0%A4%A' }));
    assert.equal(bad.status, 400);
    assert.deepEqual(json(bad.body).error, { code: 'HUB_ERR_BAD_REQUEST', message: 'The URL is not valid (malformed percent-encoding)' });
    const long = await rawExchange(port, requestBytes({ method: 'POST', target: `/messages/${'x'.repeat(5000)}?message=m` }));
    assert.equal(long.status, 400);
    assert.equal(json(long.body).error.code, 'HUB_ERR_TOPIC_INVALID');
    const connectMethod = await rawExchange(port, requestBytes({ method: 'CONNECT', target: 'example.com:443' }));
    assert.equal(connectMethod.status, 405);
    assert.equal(json(connectMethod.body).error.code, 'HUB_ERR_METHOD_NOT_ALLOWED');
  });

  it('resumes after a non-ASCII custom id: by query (the stream used to hang), by header as UTF-8 (used to be a gap)', async () => {
    const first = await mercureForm({ topic: 'unicode-ids', data: 'one', id: '日本-1' });
    const second = await mercureForm({ topic: 'unicode-ids', data: 'two' });
    const byQuery = await openRawStream(port, requestBytes({ method: 'GET', target: `/.well-known/mercure?match=unicode-ids&last_event_id=${encodeURIComponent(first)}`, headers: { Connection: 'keep-alive' } }));
    const mercureByHeader = await openRawStream(port, requestBytes({ method: 'GET', target: '/.well-known/mercure?match=unicode-ids', headers: { 'Last-Event-ID': first, Connection: 'keep-alive' } }));
    const messagesByHeader = await openRawStream(port, requestBytes({ method: 'GET', target: '/messages/subscribe/unicode-ids', headers: { 'Last-Event-ID': first, Connection: 'keep-alive' } }));
    try {
      for (const stream of [byQuery, mercureByHeader, messagesByHeader]) {
        await stream.waitFor((events) => events.some((e) => e.id === second));
        assert.deepEqual(afterOpening(stream.events).map((e) => e.data), ['two']);
        assert.equal(stream.head.headers['replay-gap'], undefined);
      }
      assert.equal(byQuery.head.headers['mercure-last-event-id'], encodeURIComponent('日本-1'));
    } finally {
      for (const s of [byQuery, mercureByHeader, messagesByHeader]) s.close();
    }
  });

  it('resumes after an id that starts with a non-HTTP space (U+3000): only spaces and tabs are trimmed', async () => {
    const first = await mercureForm({ topic: 'spaced-ids', data: 'one', id: '\u3000a\u00a0' });
    const second = await mercureForm({ topic: 'spaced-ids', data: 'two' });
    const stream = await openRawStream(port, requestBytes({ method: 'GET', target: '/messages/subscribe/spaced-ids', headers: { 'Last-Event-ID': first, Connection: 'keep-alive' } }));
    try {
      await stream.waitFor((events) => events.some((e) => e.id === second));
      assert.deepEqual(afterOpening(stream.events).map((e) => e.data), ['two']);
    } finally {
      stream.close();
    }
  });

  it('replays history many times larger than --max-backlog to a subscriber that reads (it used to be evicted, forever)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(await publish(hub.url, 'long-history', `${i} ${'h'.repeat(1000)}`));
    // A message larger than the whole backlog limit, behind the greeting and the history.
    ids.push(await publish(hub.url, 'long-history', 'L'.repeat(100 * 1024)));
    for (const url of [`${hub.url}/messages/subscribe/long-history?lastEventId=earliest`, `${hub.url}/.well-known/mercure?match=long-history&last_event_id=earliest`]) {
      const stream = await openStream(url);
      try {
        await stream.waitFor((events) => events.some((e) => e.id === ids.at(-1)), 10_000);
        assert.deepEqual(afterOpening(stream.events).map((e) => e.id), ids);
        assert.ok(!stream.comments.some((c) => c.includes('slow consumer')));
      } finally {
        stream.close();
      }
    }
  });

  it('refuses URL patterns whose repetition is ambiguous, quickly (each took seconds to minutes per topic)', async () => {
    for (const pattern of ['/{(.*)}*example.com', '.:z+b([a-z]+)example.com.', '/(a|aa)+(a|aa)+', '/books/{:id}*']) {
      const started = performance.now();
      const res = await fetch(`${hub.url}/.well-known/mercure?match_urlpattern=${encodeURIComponent(`https://example.com${pattern.startsWith('/') ? '' : '/'}${pattern}`)}`);
      assert.equal(res.status, 400, pattern);
      assert.match(await res.text(), /URL pattern|repeat/);
      assert.ok(performance.now() - started < 1000, pattern);
    }
  });
});
