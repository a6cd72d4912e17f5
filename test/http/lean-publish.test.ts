/**
 * The lean publish path (src/http/lean-publish.ts) beside Fastify's route. First which requests
 * it takes and which it leaves to Fastify, on a node:http server whose fallback answers 599;
 * then, through a real hub, that both paths answer every kind of publish the same way: each
 * request is sent once plain (the lean path) and once with an unrelated cookie (which the lean
 * path leaves to Fastify, for the CSRF check), and status, headers and body must match; and once
 * more on raw keep-alive connections, where the raw socket path (src/http/raw-publish.ts) takes
 * the plain one and its whole answer, head included, must be Fastify's byte for byte.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { serveOptions } from '../../src/config/load.js';
import { createLeanPublish } from '../../src/http/lean-publish.js';
import { openRelayCore, type RelayCore } from '../../src/relay.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { RawClient, type RawAnswer } from '../helpers/raw-http-client.js';
import { legacyToken, MERCURE_SECRET } from '../auth/tokens.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw request (no client-side rewriting of headers or body framing). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string | (string | Buffer)[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => {
        const kept: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (!['date', 'connection', 'keep-alive'].includes(name)) kept[name] = String(value);
        }
        resolve({ status: res.statusCode!, headers: kept, body: text });
      });
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const part of body) req.write(part);
      req.end();
    } else req.end(body);
  });
}

describe('lean publish path: which requests it takes', () => {
  let core: RelayCore;
  let server: Server;
  let port: number;
  let shuttingDown = false;
  let overLimit: Socket | undefined;
  const observed: { route: string; status: number; seconds: number; code: string | undefined }[] = [];

  before(async () => {
    core = await openRelayCore(serveOptions({ store: 'memory', logLevel: 'silent', maxBodySize: 1024 }));
    const lean = createLeanPublish({
      context: core,
      options: core.options,
      isShuttingDown: () => shuttingDown,
      isOverLimit: (socket) => socket === overLimit,
      log: { error() {} } as never,
      observer: { observe: (route, _method, status, seconds, code) => void observed.push({ route, status, seconds, code }) },
    });
    server = createServer((req, res) => {
      if (lean(req, res)) return;
      req.resume();
      res.writeHead(599).end('fallback');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await core.hub.shutdown();
  });

  test('plain publishes: text, JSON, form, query, percent-encoded id; errors answered too', async () => {
    const text = { 'content-type': 'text/plain; charset=utf-8' };
    assert.equal((await send(port, 'POST', '/messages/a', text, 'hello')).status, 200);
    assert.equal((await send(port, 'POST', '/messages/a', { 'content-type': 'application/json' }, '{"message":"m"}')).status, 200);
    assert.equal((await send(port, 'POST', '/messages/a', { 'content-type': 'application/x-www-form-urlencoded' }, 'message=m')).status, 200);
    assert.equal((await send(port, 'POST', '/messages/a?message=m', {})).status, 200);
    assert.equal((await send(port, 'POST', '/messages/https%3A%2F%2Fexample.com%2Fbooks%2F1', text, 'x')).status, 200);
    const refused = await send(port, 'POST', '/messages/a', { 'content-type': 'application/json' }, '{');
    assert.equal(refused.status, 400);
    assert.equal(JSON.parse(refused.body).error.code, 'HUB_ERR_BAD_REQUEST');
    // A body that arrives in several pieces (with its Content-Length) is read whole.
    const pieces = await send(port, 'POST', '/messages/a', { 'content-type': 'text/plain', 'content-length': '6' }, ['abc', 'def']);
    assert.equal(pieces.status, 200);
    assert.deepEqual(
      observed.map((o) => [o.route, o.status]),
      [200, 200, 200, 200, 200, 400, 200].map((status) => ['/messages/:id', status]),
    );
    assert.ok(observed.every((o) => o.seconds >= 0));
    assert.deepEqual(
      observed.map((o) => o.code),
      [undefined, undefined, undefined, undefined, undefined, 'HUB_ERR_BAD_REQUEST', undefined],
    );
  });

  test('everything else is left to Fastify', async () => {
    const text = { 'content-type': 'text/plain' };
    const cases: [string, string, Record<string, string>, string | string[] | undefined][] = [
      ['GET', '/messages/a', {}, undefined],
      ['POST', '/messages', { 'content-type': 'application/json' }, '[]'],
      ['POST', '/messages/', text, 'x'],
      ['POST', '/messages/a/b', text, 'x'],
      ['POST', '/messages/subscribe/a', text, 'x'],
      ['POST', '/messages/%zz', text, 'x'],
      ['POST', `/messages/${'a'.repeat(4097)}`, text, 'x'],
      ['POST', '/messages/a', { ...text, cookie: 'theme=dark' }, 'x'],
      ['POST', '/messages/a', { ...text, 'transfer-encoding': 'chunked' }, ['x', 'y']],
      ['POST', '/messages/a', text, 'x'.repeat(1025)],
      ['POST', '/messages/a', { 'content-type': 'text/html' }, 'x'],
      ['POST', '/messages/a', { 'content-type': 'Text/Plain' }, 'x'],
      ['POST', '/messages/a', text, ''],
      ['POST', '/messages/a', {}, 'no type'],
    ];
    for (const [method, path, headers, body] of cases) {
      const answer = await send(port, method, path, headers, body);
      assert.equal(answer.status, 599, `${method} ${path.slice(0, 40)} ${JSON.stringify(headers)}`);
    }
    shuttingDown = true;
    assert.equal((await send(port, 'POST', '/messages/a', text, 'x')).status, 599, 'during shutdown');
    shuttingDown = false;
  });

  test('a connection over the caps is left to Fastify (its 429)', async () => {
    server.once('connection', (socket: Socket) => (overLimit = socket));
    const answer = await send(port, 'POST', '/messages/a', { 'content-type': 'text/plain', connection: 'close' }, 'x');
    assert.equal(answer.status, 599);
    overLimit = undefined;
  });
});

describe('lean publish path and Fastify answer alike', () => {
  let hub: TestHub;
  let port: number;
  let token: string;

  before(async () => {
    hub = await startHub({ store: 'memory', publisherJwtKey: MERCURE_SECRET, anonymous: true, corsOrigins: ['https://app.example', '*'], maxBodySize: 4096 });
    port = Number(new URL(hub.url).port);
    token = await legacyToken({ publish: ['allowed', 'https://example.com/books/{id}'] });
  });
  after(async () => {
    await hub.close();
  });

  /** Every kind of publish and refusal: path, headers, body. */
  const publishCases = (): [string, Record<string, string>, string | undefined][] => {
  const bearer = { authorization: `Bearer ${token}` };
  return [
    ['/messages/allowed', { ...bearer, 'content-type': 'text/plain' }, 'hello'],
    ['/messages/allowed', { ...bearer, 'content-type': 'text/plain; charset=iso-8859-1' }, 'caf\u00e9'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/json' }, '{"message":"m","event":"note","key":"k"}'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/x-www-form-urlencoded' }, 'message=caf%C3%A9&event=e'],
    ['/messages/allowed?message=q&event=e', bearer, undefined],
    ['/messages/https%3A%2F%2Fexample.com%2Fbooks%2F7', { ...bearer, 'content-type': 'text/plain' }, 'percent-encoded id'],
    ['/messages/allowed', { ...bearer, origin: 'https://app.example', 'content-type': 'text/plain' }, 'listed origin'],
    ['/messages/allowed', { ...bearer, origin: 'https://other.example', 'content-type': 'text/plain' }, 'any origin'],
    ['/messages/allowed', { 'content-type': 'text/plain' }, 'no token'],
    ['/messages/allowed', { authorization: 'Bearer not.a.token', 'content-type': 'text/plain' }, 'bad token'],
    ['/messages/other', { ...bearer, 'content-type': 'text/plain' }, 'no grant'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/json' }, '{"message":"m","event":"mercure"}'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/json' }, '{"message":5}'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/json' }, '{"__proto__":{"message":"m"}}'],
    ['/messages/allowed', { ...bearer, 'content-type': 'application/json; charset=latin1' }, '{"message":"m"}'],
    ['/messages/allowed', { ...bearer, 'content-type': 'text/plain; charset=utf-16' }, 'x'],
    ['/messages/allowed?message=100%', bearer, undefined],
    ['/messages/allowed', bearer, undefined],
    ['/messages/%2Fwell-known%2Fmercure%2Fsubscriptions', { ...bearer, 'content-type': 'text/plain' }, 'x'],
    ['/messages/%2E%2Fwell-known%2Fmercure', { ...bearer, 'content-type': 'text/plain' }, 'x'],
    ['/messages/a%00b', { ...bearer, 'content-type': 'text/plain' }, 'x'],
  ];
  };

  test('every kind of publish and refusal', async () => {
    const cases = publishCases();
    const withoutIds = (answer: Answer): Answer => ({ ...answer, body: answer.body.replace(/"id":"\d+"/, '"id":"<n>"') });
    for (const [path, headers, body] of cases) {
      const bytes = body === undefined ? undefined : Buffer.from(body, headers['content-type']?.includes('iso-8859-1') ? 'latin1' : 'utf8');
      const forBody: Record<string, string> = bytes === undefined ? {} : { 'content-length': String(bytes.length) };
      const encoded = bytes?.toString('latin1');
      const lean = await sendBytes(port, path, { ...headers, ...forBody }, encoded);
      const fastify = await sendBytes(port, path, { ...headers, ...forBody, cookie: 'theme=dark' }, encoded);
      assert.deepEqual(withoutIds(lean), withoutIds(fastify), `${path} ${JSON.stringify(headers)} ${body ?? ''}`);
    }
  });

  test('the raw socket path answers byte for byte as Fastify, on keep-alive connections', async () => {
    // One connection each for the whole list, so every answer's connection handling is compared
    // too (an answer that closes the connection is followed by a fresh one on both sides).
    let raw = await RawClient.open(port);
    let fastify = await RawClient.open(port);
    const normal = (answer: RawAnswer | undefined): string =>
      answer ? `${answer.head.replace(/\r\nDate: [^\r]+/, '')}\r\n\r\n${answer.body.replace(/"id":"\d+"/, '"id":"<n>"')}` : 'closed';
    for (const [path, headers, body] of publishCases()) {
      const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(body, headers['content-type']?.includes('iso-8859-1') ? 'latin1' : 'utf8');
      const head = (extra: string): string =>
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Object.entries(headers)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('')}${body === undefined ? '' : `Content-Length: ${bytes.length}\r\n`}${extra}\r\n`;
      // One write each: the raw path takes a request whose bytes arrive together.
      raw.write(Buffer.concat([Buffer.from(head(''), 'latin1'), bytes]));
      fastify.write(Buffer.concat([Buffer.from(head('Cookie: theme=dark\r\n'), 'latin1'), bytes]));
      const [a, b] = [await raw.next(), await fastify.next()];
      assert.equal(normal(a), normal(b), `${path} ${JSON.stringify(headers)} ${body ?? ''}`);
      if (a && /\r\nconnection: close/i.test(a.head)) {
        await Promise.all([raw.closedPromise, fastify.closedPromise]);
        raw = await RawClient.open(port);
        fastify = await RawClient.open(port);
      }
    }
    raw.close();
    fastify.close();
  });
});

/** POST with a body given as latin1 text (bytes as they are). */
function sendBytes(port: number, path: string, headers: Record<string, string>, latin1Body: string | undefined): Promise<Answer> {
  return send(port, 'POST', path, headers, latin1Body === undefined ? undefined : [Buffer.from(latin1Body, 'latin1')]).catch((error: Error) => {
    throw new Error(`${path}: ${error.message}`);
  });
}
