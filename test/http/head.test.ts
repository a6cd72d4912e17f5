/**
 * HEAD on every GET route (CORS advertises it): the status and headers of the GET, no body. An
 * event stream's HEAD answers the stream's headers and ends at once, registering nothing.
 */
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { publish } from '../helpers/sse-client.js';

/** Headers whose values differ between two answers for reasons that are not the method's. */
const VARYING = new Set(['date', 'transfer-encoding', 'keep-alive', 'connection', 'content-length', 'etag', 'last-modified']);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
}

/** A GET's status and headers (its body read to the end, or cut once headers arrived for a stream). */
function get(url: string): Promise<Answer & { body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      if (/event-stream/.test(res.headers['content-type'] ?? '')) {
        resolve({ status: res.statusCode!, headers: res.headers, body: '' });
        req.destroy();
        return;
      }
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends HEAD `path` and then GET /healthz on one connection (pipelined) and returns all the
 * bytes until the hub closes it: the HEAD answer must be complete with no body, or the GET's
 * answer would never follow it.
 */
function headThenHealthz(url: string, path: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let raw = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`HEAD ${path} did not end; got ${JSON.stringify(raw.slice(0, 500))}`));
    }, 5000);
    socket.setEncoding('latin1').on('data', (chunk: string) => (raw += chunk));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(raw);
    });
    socket.on('error', reject);
    const host = `${hostname}:${port}`;
    socket.write(`HEAD ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

function parseHead(raw: string): Answer & { rest: string } {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, rest: raw.slice(end + 4) };
}

function stable(headers: IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !VARYING.has(name)));
}

describe('HEAD', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', subscriptions: true, corsOrigins: ['https://app.example'] });
    await publish(hub.url, 'x', 'retained');
  });
  after(() => hub.close());

  const routes = [
    '/healthz',
    '/readyz',
    '/metrics',
    '/openapi.json',
    '/',
    '/console/console.js',
    '/console/console.css',
    '/messages/x',
    '/messages/%00',
    '/.well-known/oauth-protected-resource/.well-known/mercure',
    '/.well-known/mercure/subscriptions',
    '/.well-known/mercure',
    '/messages/subscribe/x',
    '/messages/subscribe/x?lastEventId=unknown-cursor',
    '/.well-known/mercure?match=x&last_event_id=earliest',
    '/messages/sse/x',
    '/.well-known/sse-relay/probe?count=2&interval=10',
  ];
  for (const path of routes) {
    it(`HEAD ${path}: the GET's status and headers, no body, the connection free at once`, async () => {
      const viaGet = await get(`${hub.url}${path}`);
      const raw = await headThenHealthz(hub.url, path);
      const head = parseHead(raw);
      assert.equal(head.status, viaGet.status, raw.slice(0, 300));
      assert.notEqual(head.status, 404);
      assert.deepEqual(stable(head.headers), stable(viaGet.headers));
      // The metrics change between two reads; every other answer is the same bytes.
      if (viaGet.headers['content-length'] !== undefined && path !== '/metrics') assert.equal(head.headers['content-length'], viaGet.headers['content-length']);
      else if (path === '/metrics') assert.match(String(head.headers['content-length']), /^\d+$/);
      // Right after the HEAD's headers: the next answer, not a body.
      assert.match(head.rest, /^HTTP\/1\.1 200 OK\r\n/, `after the HEAD answer: ${JSON.stringify(head.rest.slice(0, 200))}`);
      assert.match(head.rest, /\{"status":"ok"\}$/);
    });
  }

  it('a stream HEAD registers no subscription and keeps the gap signal of its GET', async () => {
    const before = hub.hub.subscriptionCount;
    for (let i = 0; i < 20; i++) await headThenHealthz(hub.url, '/messages/subscribe/x');
    assert.equal(hub.hub.subscriptionCount, before);
    const gap = parseHead(await headThenHealthz(hub.url, '/messages/subscribe/x?lastEventId=unknown-cursor'));
    assert.equal(gap.headers['replay-gap'], 'true');
    const mercure = parseHead(await headThenHealthz(hub.url, '/.well-known/mercure?match=x&last_event_id=earliest'));
    assert.equal(mercure.headers['mercure-last-event-id'], 'earliest');
    // No subscription event was announced for the HEAD (--subscriptions is on).
    const list = (await (await fetch(`${hub.url}/.well-known/mercure/subscriptions`)).json()) as { subscriptions: unknown[] };
    assert.deepEqual(list.subscriptions, []);
  });

  it('CORS headers come with a HEAD as with a GET', async () => {
    const res = await fetch(`${hub.url}/messages/x`, { method: 'HEAD', headers: { Origin: 'https://app.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(await res.text(), '');
  });
});
