/**
 * Cross-site request forgery with the token cookie: a page on any site can make a browser send
 * a form POST carrying the hub's cookies. A request that changes state and is authenticated by
 * a token cookie is accepted only from the hub's own origin or one in `--cors-origins`; a
 * `Bearer` header cannot be forged that way and works from anywhere.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { legacyToken, MERCURE_SECRET, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, type TestStream } from '../helpers/sse-client.js';

const LISTED = 'https://app.example';
const FOREIGN = 'https://evil.example';

const unique = (): string => randomBytes(8).toString('hex');

/** A POST over node:http, which sends `Origin`, `Referer` and `Cookie` exactly as given. */
function send(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Content-Length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('cookie-authenticated publishing needs an allowed Origin (CSRF)', () => {
  let hub: TestHub;
  let token: string;
  let topic: string;
  let stream: TestStream;

  before(async () => {
    hub = await startHub({ store: 'memory', publisherJwtKey: MERCURE_SECRET, corsOrigins: [LISTED] });
    token = await legacyToken({ publish: ['*'], subscribe: ['*'] });
    topic = `csrf-${unique()}`;
    stream = await openStream(mercureUrl(hub.url, [['topic', topic]]), { Authorization: `Bearer ${token}` });
    assert.equal(stream.status, 200);
  });
  after(async () => {
    stream?.close();
    await hub?.close();
  });

  /** The same form post on both APIs: the article's `/messages/:id` and Mercure's endpoint. */
  const apis = [
    {
      name: '/messages/:id',
      publish: (data: string, headers: Record<string, string>) =>
        send(`${hub.url}/messages/${topic}`, new URLSearchParams({ message: data }).toString(), { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }),
    },
    {
      name: '/.well-known/mercure',
      publish: (data: string, headers: Record<string, string>) =>
        send(`${hub.url}/.well-known/mercure`, new URLSearchParams({ topic, data }).toString(), { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }),
    },
  ];

  it('refuses a cookie publish from a foreign Origin, a foreign Referer, the null origin or neither, and delivers nothing', async () => {
    const refused: string[] = [];
    for (const api of apis) {
      for (const cookie of [`mercureAuthorization=${token}`, `__Secure-mercure_access_token=${token}`]) {
        for (const [what, headers] of [
          ['foreign Origin', { Origin: FOREIGN }],
          ['foreign Origin, own Referer', { Origin: FOREIGN, Referer: `${hub.url}/` }],
          ['foreign Referer without Origin', { Referer: `${FOREIGN}/page?x=1` }],
          ['null Origin', { Origin: 'null' }],
          ['neither Origin nor Referer', {}],
        ] as const) {
          const data = `forged-${unique()}`;
          const res = await api.publish(data, { Cookie: cookie, ...headers });
          assert.equal(res.status, 403, `${api.name}, ${cookie.split('=')[0]}, ${what}: ${res.text}`);
          if (api.name === '/messages/:id') {
            assert.match(res.type, /^application\/json/);
            assert.equal(JSON.parse(res.text).error.code, 'HUB_ERR_ORIGIN_NOT_ALLOWED');
          }
          assert.match(res.text, /Authorization: Bearer/, 'the refusal says how to publish instead');
          refused.push(data);
        }
      }
    }
    // A Bearer publish after all of them: once it arrives, every refused one would have too.
    const sentinel = `sentinel-${unique()}`;
    assert.equal((await apis[1]!.publish(sentinel, { Authorization: `Bearer ${token}` })).status, 200);
    await stream.waitFor((events) => events.some((e) => e.data === sentinel));
    const delivered = new Set(stream.events.map((e) => e.data));
    assert.deepEqual(refused.filter((data) => delivered.has(data)), []);
  });

  it("accepts a cookie publish from the hub's own origin (Origin or Referer) and from a listed origin", async () => {
    for (const api of apis) {
      for (const [what, headers] of [
        ['own Origin', { Origin: hub.url }],
        ['own Referer without Origin', { Referer: `${hub.url}/console?x=1` }],
        ['listed Origin', { Origin: LISTED }],
      ] as const) {
        const data = `accepted-${unique()}`;
        const res = await api.publish(data, { Cookie: `mercureAuthorization=${token}`, ...headers });
        assert.equal(res.status, 200, `${api.name}, ${what}: ${res.text}`);
        await stream.waitFor((events) => events.some((e) => e.data === data));
      }
    }
  });

  it('accepts a Bearer publish from any origin, with or without a cookie', async () => {
    for (const api of apis) {
      for (const headers of [{ Origin: FOREIGN }, { Origin: FOREIGN, Cookie: `mercureAuthorization=${token}` }, {}] as Record<string, string>[]) {
        const data = `bearer-${unique()}`;
        const res = await api.publish(data, { Authorization: `Bearer ${token}`, ...headers });
        assert.equal(res.status, 200, `${api.name}, ${JSON.stringify(headers)}: ${res.text}`);
        await stream.waitFor((events) => events.some((e) => e.data === data));
      }
    }
  });

  it('takes --public-url as the hub\'s own origin (behind a proxy the browser sees another one)', async () => {
    const proxied = await startHub({ store: 'memory', publisherJwtKey: MERCURE_SECRET, publicUrl: 'https://hub.example/' });
    try {
      const form = (origin: string) =>
        send(`${proxied.url}/messages/${topic}`, 'message=m', { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: `mercureAuthorization=${token}`, Origin: origin });
      assert.equal((await form('https://hub.example')).status, 200);
      assert.equal((await form(proxied.url)).status, 200, 'the address it was reached at still counts');
      assert.equal((await form('http://hub.example')).status, 403, 'another scheme is another origin');
      assert.equal((await form(LISTED)).status, 403, 'not listed on this hub');
    } finally {
      await proxied.close();
    }
  });

  it('still lets a cookie open a subscription from another origin (reading is guarded by CORS, not by this check)', async () => {
    const other = await openStream(mercureUrl(hub.url, [['topic', topic]]), { Cookie: `mercureAuthorization=${token}`, Origin: FOREIGN });
    try {
      assert.equal(other.status, 200);
    } finally {
      other.close();
    }
  });
});
