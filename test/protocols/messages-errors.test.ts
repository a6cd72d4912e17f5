import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, post, publish } from '../helpers/sse-client.js';

/** Sends a request with a raw (not re-encoded) path, as a hostile client could. */
function rawRequest(base: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the article API: bad input', () => {
  let hub: TestHub;
  let canary: Awaited<ReturnType<typeof openStream>>;
  before(async () => {
    hub = await startHub({ maxBodySize: 1024 });
    canary = await openStream(`${hub.url}/messages/subscribe/canary`);
    await canary.waitForCount(1);
  });
  after(async () => {
    canary.close();
    await hub.close();
  });

  const long = 'x'.repeat(257);
  const cases: { name: string; method: string; path: string; body?: string; headers?: Record<string, string>; status: number; code: string }[] = [
    { name: 'empty id (publish)', method: 'POST', path: '/messages/?message=x', status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'empty id (subscribe)', method: 'GET', path: '/messages/subscribe/', status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'id of 257 characters', method: 'POST', path: `/messages/${long}?message=x`, status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'id of 257 characters (subscribe)', method: 'GET', path: `/messages/subscribe/${long}`, status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'id with LF', method: 'POST', path: '/messages/a%0Ab?message=x', status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'id with NUL', method: 'GET', path: '/messages/subscribe/a%00b', status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'id with a C1 control', method: 'POST', path: '/messages/a%C2%85b?message=x', status: 400, code: 'HUB_ERR_TOPIC_INVALID' },
    { name: 'body over the limit', method: 'POST', path: '/messages/ok', body: 'y'.repeat(2000), headers: { 'content-type': 'text/plain' }, status: 413, code: 'HUB_ERR_BODY_TOO_LARGE' },
    { name: 'JSON body over the limit', method: 'POST', path: '/messages/ok', body: JSON.stringify({ message: 'y'.repeat(2000) }), headers: { 'content-type': 'application/json' }, status: 413, code: 'HUB_ERR_BODY_TOO_LARGE' },
    { name: 'unsupported media type', method: 'POST', path: '/messages/ok', body: 'abc', headers: { 'content-type': 'application/octet-stream' }, status: 415, code: 'HUB_ERR_UNSUPPORTED_MEDIA_TYPE' },
    { name: 'no message at all', method: 'POST', path: '/messages/ok', status: 400, code: 'HUB_ERR_MESSAGE_MISSING' },
    { name: 'empty text body', method: 'POST', path: '/messages/ok', body: '', headers: { 'content-type': 'text/plain' }, status: 400, code: 'HUB_ERR_MESSAGE_MISSING' },
    { name: 'JSON without message', method: 'POST', path: '/messages/ok', body: '{"event":"x"}', headers: { 'content-type': 'application/json' }, status: 400, code: 'HUB_ERR_MESSAGE_MISSING' },
    { name: 'JSON message not a string', method: 'POST', path: '/messages/ok', body: '{"message":{"a":1}}', headers: { 'content-type': 'application/json' }, status: 400, code: 'HUB_ERR_MESSAGE_INVALID' },
    { name: 'malformed JSON', method: 'POST', path: '/messages/ok', body: '{"message":', headers: { 'content-type': 'application/json' }, status: 400, code: 'HUB_ERR_BAD_REQUEST' },
    { name: 'event type with LF', method: 'POST', path: '/messages/ok', body: '{"message":"m","event":"a\\nb"}', headers: { 'content-type': 'application/json' }, status: 400, code: 'HUB_ERR_EVENT_TYPE_INVALID' },
    { name: 'event type with CR', method: 'POST', path: '/messages/ok?message=m&event=a%0Db', status: 400, code: 'HUB_ERR_EVENT_TYPE_INVALID' },
    { name: 'event type with NUL', method: 'POST', path: '/messages/ok', body: '{"message":"m","event":"a\\u0000b"}', headers: { 'content-type': 'application/json' }, status: 400, code: 'HUB_ERR_EVENT_TYPE_INVALID' },
    { name: 'repeated message field', method: 'POST', path: '/messages/ok?message=a&message=b', status: 400, code: 'HUB_ERR_MESSAGE_INVALID' },
    { name: 'unknown route', method: 'GET', path: '/nope', status: 404, code: 'HUB_ERR_NOT_FOUND' },
    { name: 'unknown method on a route', method: 'DELETE', path: '/messages/ok', status: 405, code: 'HUB_ERR_METHOD_NOT_ALLOWED' },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.status} ${c.code}, then the hub keeps serving`, async () => {
      const res = await rawRequest(hub.url, c.method, c.path, c.body, c.headers);
      assert.equal(res.status, c.status, JSON.stringify(res.json));
      assert.equal(res.json?.error?.code, c.code, JSON.stringify(res.json));
      assert.equal(typeof res.json.error.message, 'string');
      assert.ok(res.json.error.message.length > 0);
      assert.ok(!/\n\s+at /.test(res.json.error.message), 'no stack trace');

      const before = canary.events.length;
      const id = await publish(hub.url, 'canary', `after ${c.name}`);
      await canary.waitForCount(before + 1);
      assert.deepEqual(canary.events.at(-1), { id, event: undefined, data: `after ${c.name}` });
    });
  }

  it('accepts an id of exactly 256 characters with unicode', async () => {
    const id = 'é'.repeat(256);
    const res = await post(`${hub.url}/messages/${encodeURIComponent(id)}?message=ok`);
    assert.equal(res.status, 200, res.text);
  });
});
