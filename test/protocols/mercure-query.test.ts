import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { accessToken, MERCURE_SECRET, mercurePublish } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, type TestStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(8).toString('hex');
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

/** Opens a Mercure subscription with the QUERY method (RFC 10008), the matchers in the body. */
function query(hub: TestHub, body: URLSearchParams, search = '', headers: Record<string, string> = {}): Promise<TestStream> {
  return openStream(`${hub.url}/.well-known/mercure${search}`, { ...FORM, ...headers }, { method: 'QUERY', body: body.toString() });
}

async function publishTo(hub: TestHub, topic: string, data: string, id?: string): Promise<void> {
  const fields: [string, string][] = [['topic', topic], ['data', data]];
  if (id !== undefined) fields.push(['id', id]);
  const res = await mercurePublish(hub.url, fields);
  assert.equal(res.status, 200, res.text);
}

describe('Mercure subscriptions with the QUERY method (matchers in a form body)', () => {
  let hub: TestHub;
  let cors: TestHub;
  before(async () => {
    hub = await startHub();
    cors = await startHub({ corsOrigins: ['https://app.example.com'] });
  });
  after(async () => {
    await hub.close();
    await cors.close();
  });

  it("Node 20's parser (llhttp) accepts the QUERY method on a raw socket, and the hub answers with an event stream", async () => {
    const body = 'match=raw-socket';
    const head = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(hub.url).port), '127.0.0.1', () => {
        socket.write(
          `QUERY /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
      });
      let received = '';
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (received.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on('error', reject);
    });
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.match(head, /content-type: text\/event-stream/i);
  });

  it("receives the spec's example subscription (two exact topics and a URL pattern) sent in the body", async () => {
    const run = unique();
    const body = new URLSearchParams();
    body.append('match', `https://example.com/foo/${run}`);
    body.append('match', `bar-${run}`);
    body.append('match_urlpattern', `https://example.com/bar-${run}/:id`);
    const stream = await query(hub, body);
    try {
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      await publishTo(hub, `https://example.com/foo/${run}`, 'one');
      await publishTo(hub, `bar-${run}`, 'two');
      await publishTo(hub, `https://example.com/other/${run}`, 'not matched');
      await publishTo(hub, `https://example.com/bar-${run}/42`, 'three');
      await stream.waitFor((events) => events.some((e) => e.data === 'three'));
      assert.deepEqual(
        stream.events.filter((e) => e.data !== '').map((e) => e.data),
        ['one', 'two', 'three'],
      );
    } finally {
      stream.close();
    }
  });

  it('takes the union of query and body matchers; last_event_id from the query wins over the body, the header over both', async () => {
    const run = unique();
    await publishTo(hub, `q-${run}`, 'old-q', `urn:q:${run}`);
    await publishTo(hub, `b-${run}`, 'old-b', `urn:b:${run}`);
    const body = new URLSearchParams([['match', `b-${run}`], ['last_event_id', `urn:b:${run}`]]);
    const stream = await query(hub, body, `?match=q-${run}&last_event_id=${encodeURIComponent(`urn:q:${run}`)}`);
    try {
      assert.equal(stream.headers['mercure-last-event-id'], `urn:q:${run}`);
      // After urn:q:… only old-b was published: it replays, old-q does not.
      await stream.waitFor((events) => events.some((e) => e.data === 'old-b'));
      await publishTo(hub, `q-${run}`, 'new-q');
      await stream.waitFor((events) => events.some((e) => e.data === 'new-q'));
      assert.ok(!stream.events.some((e) => e.data === 'old-q'));
    } finally {
      stream.close();
    }
    const withHeader = await query(hub, new URLSearchParams([['match', `b-${run}`], ['last_event_id', `urn:b:${run}`]]), '', { 'Last-Event-ID': `urn:q:${run}` });
    withHeader.close();
    assert.equal(withHeader.headers['mercure-last-event-id'], `urn:q:${run}`);
  });

  it('refuses, as with GET, an unknown match* name or no matcher in the body, and a body without a Content-Type', async () => {
    for (const body of ['match_regexp=x', 'other=1', 'match=']) {
      const res = await fetch(`${hub.url}/.well-known/mercure`, { method: 'QUERY', headers: FORM, body });
      assert.equal(res.status, 400, body);
      await res.body?.cancel();
    }
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${hub.url}/.well-known/mercure`, { method: 'QUERY', headers: { 'Content-Length': '7' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('match=a');
    });
    assert.equal(status, 400);
  });

  it('treats QUERY as safe: a cookie-authenticated subscription from another origin is not taken for a forged publish (CSRF)', async () => {
    const keyed = await startHub({ publisherJwtKey: MERCURE_SECRET });
    try {
      const token = await accessToken({ subscribe: [{ match: '*' }] });
      const stream = await query(keyed, new URLSearchParams([['match', 'csrf']]), '', { Cookie: `__Secure-mercure_access_token=${token}`, Origin: 'https://elsewhere.example' });
      stream.close();
      assert.equal(stream.status, 200);
    } finally {
      await keyed.close();
    }
  });

  it('lets a listed origin preflight QUERY (Access-Control-Allow-Methods)', async () => {
    const headers = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      const req = request(
        `${cors.url}/.well-known/mercure`,
        { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'QUERY', 'Access-Control-Request-Headers': 'content-type' } },
        (res) => {
          res.resume();
          assert.equal(res.statusCode, 204);
          resolve(res.headers);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.ok(String(headers['access-control-allow-methods']).split(/,\s*/).includes('QUERY'));
    assert.equal(headers['access-control-allow-origin'], 'https://app.example.com');
  });
});
