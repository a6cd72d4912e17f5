/**
 * The raw socket publish path (src/http/raw-publish.ts) in front of node:http. First which
 * requests it answers and which it hands to node:http, on a node:http server whose own handler
 * answers 599 and echoes what node:http parsed (so a handed-over request shows that every byte
 * was put back); then, through a real hub, that its answers are byte for byte Fastify's (Date
 * and event ids aside), on keep-alive connections, and that it keeps the hub's limits:
 * keep-alive and per-socket request limits, connection caps, shutdown.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { serveOptions } from '../../src/config/load.js';
import { leanPublishRules, type LeanPublishRules } from '../../src/http/lean-publish.js';
import { installRawPublish } from '../../src/http/raw-publish.js';
import { openRelayCore, type RelayCore } from '../../src/relay.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { RawClient, type RawAnswer } from '../helpers/raw-http-client.js';
import { openStream } from '../helpers/sse-client.js';

const publish = (path: string, body: string, headers = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers}\r\n${body}`;

/** Resolves once `socket` has read `bytes` bytes (the server side of a connection). */
async function untilRead(socket: Socket, bytes: number): Promise<void> {
  const until = Date.now() + 5000;
  while (socket.bytesRead < bytes) {
    if (Date.now() > until) throw new Error(`read ${socket.bytesRead} of ${bytes} bytes`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('raw publish path: which requests it answers', () => {
  let core: RelayCore;
  let server: Server;
  let port: number;
  let rules: LeanPublishRules;
  /** Delays the answers of the raw path while set (to hold a connection busy). */
  let gate: Promise<void> | undefined;
  let closing = false;
  const serverSockets: Socket[] = [];

  before(async () => {
    core = await openRelayCore(serveOptions({ store: 'memory', logLevel: 'silent', maxBodySize: 1024 }));
    const real = leanPublishRules({ context: core, options: core.options, isShuttingDown: () => false, isOverLimit: () => false, log: { error() {} } as never });
    rules = {
      ...real,
      serve: (url, headers, plan, body, startedAt, write) =>
        real.serve(url, headers, plan, body, startedAt, (status, answerHeaders, text) => {
          if (gate) void gate.then(() => write(status, answerHeaders, text));
          else write(status, answerHeaders, text);
        }),
    };
    // node:http's own handler: what it parsed, echoed, so a handover shows no byte was lost.
    server = createServer({ headersTimeout: 400, requestTimeout: 400, connectionsCheckingInterval: 100 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const echo = Buffer.from(`${req.method} ${req.url} ${Buffer.concat(chunks).toString('latin1')}`, 'latin1');
        res.writeHead(599, { 'content-type': 'text/plain', 'content-length': echo.length }).end(echo);
      });
    });
    server.keepAliveTimeout = 300;
    installRawPublish(server, { rules: () => rules, isShuttingDown: () => closing, keepAliveTimeout: 300, maxRequestsPerSocket: 0 });
    server.on('connection', (socket: Socket) => serverSockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await core.hub.shutdown();
  });

  test('a plain publish is answered in one piece, head as node:http writes it, and the connection kept', async () => {
    const client = await RawClient.open(port);
    for (const message of ['one', 'two', 'three']) {
      client.write(publish('/messages/a', message));
      const answer = await client.next();
      assert.equal(answer?.status, 200);
      assert.match(answer.body, /^\{"id":"\d+"\}$/);
      assert.match(
        answer.head,
        /^HTTP\/1\.1 200 OK\r\nlink: <\/\.well-known\/mercure>; rel="mercure"\r\ncontent-type: application\/json; charset=utf-8\r\ncontent-length: \d+\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=0$/,
      );
    }
    assert.equal(client.closed, false);
    client.close();
  });

  test('header names are matched in any case, and a name one letter off a known one is its own header', async () => {
    const client = await RawClient.open(port);
    client.write('POST /messages/a HTTP/1.1\r\nHOST: hub\r\ncOnTeNt-TyPe: text/plain\r\nCONTENT-LENGTH: 2\r\nContent-Typf: text/html\r\nHosu: x\r\n\r\nhi');
    const answer = await client.next();
    assert.equal(answer?.status, 200, answer?.body);
    assert.match(answer.body, /^\{"id":"\d+"\}$/);
    client.close();
    // Case does not hide a header the raw path leaves to node:http.
    for (const header of ['COOKIE: theme=dark', 'EXPECT: 100-continue', 'Transfer-ENCODING: chunked']) {
      const other = await RawClient.open(port);
      other.write(publish('/messages/a', 'x', `${header}\r\n`));
      let handed = await other.next();
      if (handed?.status === 100) handed = await other.next();
      assert.notEqual(handed?.status, 200, header);
      other.close();
    }
  });

  test('Connection: close is honoured: answered, then closed', async () => {
    const client = await RawClient.open(port);
    client.write(publish('/messages/a', 'bye', 'Connection: close\r\n'));
    const answer = await client.next();
    assert.equal(answer?.status, 200);
    assert.match(answer.head, /\r\nConnection: close$/);
    await client.closedPromise;
  });

  test('anything outside its subset goes to node:http with every byte put back', async () => {
    const cases: [string, string][] = [
      ['another route', 'GET /messages/subscribe/a HTTP/1.1\r\nHost: hub\r\n\r\n'],
      ['HTTP/1.0', 'POST /messages/a HTTP/1.0\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'],
      ['chunked', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n'],
      ['cookie', publish('/messages/a', 'x', 'Cookie: theme=dark\r\n')],
      ['Expect', publish('/messages/a', 'x', 'Expect: 100-continue\r\n')],
      ['Upgrade', publish('/messages/a', 'x', 'Connection: upgrade\r\nUpgrade: websocket\r\n')],
      ['Connection with other tokens', publish('/messages/a', 'x', 'Connection: keep-alive, TE\r\n')],
      ['a header twice', publish('/messages/a', 'x', 'Authorization: Bearer a\r\nAuthorization: Bearer b\r\n')],
      ['a header named after Object.prototype', publish('/messages/a', 'x', '__proto__: x\r\n')],
      ['a byte over 0x7f in a value', publish('/messages/a', 'x', 'X-Name: caf\u00e9\r\n')],
      ['over the body limit', publish('/messages/a', 'x'.repeat(1025))],
      ['unknown media type', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\nx'],
      ['id with a slash', publish('/messages/a/b', 'x')],
      ['two requests in one write', publish('/messages/a', 'x') + publish('/messages/b', 'y')],
    ];
    for (const [what, bytes] of cases) {
      const client = await RawClient.open(port);
      client.write(bytes);
      let answer = await client.next();
      // node:http's own `100 Continue` to the Expect header comes first.
      if (what === 'Expect' && answer?.status === 100) answer = await client.next();
      assert.equal(answer?.status, 599, what);
      const [method, target] = bytes.split(' ');
      assert.ok(answer.body.startsWith(`${method} ${target} `), `${what}: ${answer.body}`);
      if (what === 'chunked') assert.equal(answer.body, 'POST /messages/a x');
      if (what === 'over the body limit') assert.equal(answer.body.length, 'POST /messages/a '.length + 1025);
      if (what === 'two requests in one write') assert.equal((await client.next())?.body, 'POST /messages/b y');
      client.close();
    }
  });

  test('smuggling attempts and malformed heads are node:http\'s to refuse (its 400), never served here', async () => {
    const cases: [string, string][] = [
      ['no Host', 'POST /messages/a HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'],
      ['CL and TE', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['two Content-Lengths', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy'],
      ['Content-Length with a sign', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: +1\r\n\r\nx'],
      ['Content-Length with an inner space', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 1 1\r\n\r\nx'],
      ['Content-Length past 2^53', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 99999999999999999999\r\n\r\nx'],
      ['obs-fold', 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\n folded\r\nContent-Length: 1\r\n\r\nx'],
      ['bare LF', 'POST /messages/a HTTP/1.1\nHost: hub\nContent-Type: text/plain\nContent-Length: 1\n\nx'],
      ['bare CR', 'POST /messages/a HTTP/1.1\r\nHost: hub\rX: y\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'],
      ['space before the colon', 'POST /messages/a HTTP/1.1\r\nHost : hub\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'],
      ['NUL in a value', 'POST /messages/a HTTP/1.1\r\nHost: h\u0000ub\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'],
      ['header bytes past node:http\'s limit', publish('/messages/a', 'x', `X-Long: ${'a'.repeat(20 * 1024)}\r\n`)],
    ];
    for (const [what, bytes] of cases) {
      const client = await RawClient.open(port);
      client.write(bytes);
      const answer = await client.next();
      // node:http refuses these (400, or 431 for the long head) and closes; the 599 handler never runs.
      assert.ok(answer === undefined || answer.status === 400 || answer.status === 431, `${what}: ${answer?.head}`);
      await client.closedPromise;
    }
  });

  test('Content-Length with a leading zero goes to node:http, which reads the body it names', async () => {
    const client = await RawClient.open(port);
    client.write('POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 02\r\n\r\nxy');
    const answer = await client.next();
    assert.equal(answer?.status, 599);
    assert.equal(answer.body, 'POST /messages/a xy');
    client.close();
  });

  test('a head or a body split over reads goes to node:http whole', async () => {
    const bytes = publish('/messages/a', 'hello');
    for (const at of [10, bytes.indexOf('\r\n\r\n') + 4 + 2]) {
      const client = await RawClient.open(port);
      client.write(bytes.slice(0, at));
      const socket = serverSockets.at(-1)!;
      await untilRead(socket, at);
      client.write(bytes.slice(at));
      const answer = await client.next();
      assert.equal(answer?.status, 599, `split at ${at}`);
      assert.equal(answer.body, 'POST /messages/a hello');
      client.close();
    }
  });

  test('a slow head (slowloris) meets node:http\'s header timeout', async () => {
    const client = await RawClient.open(port);
    const started = Date.now();
    let sent = 0;
    const bytes = publish('/messages/a', 'x');
    const drip = setInterval(() => {
      if (!client.closed && sent < bytes.length) client.write(bytes[sent++]!);
    }, 50);
    const answer = await client.next();
    clearInterval(drip);
    await client.closedPromise;
    assert.ok(answer === undefined || answer.status === 408, answer?.head);
    assert.ok(Date.now() - started < 3000, `closed after ${Date.now() - started} ms`);
    assert.ok(sent < bytes.length, 'the head was cut before it was complete');
  });

  test('bytes pipelined while a publish is served go to node:http after its answer, in order', async () => {
    const client = await RawClient.open(port);
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    const first = publish('/messages/a', 'first');
    const second = publish('/messages/b', 'second');
    client.write(first);
    const socket = serverSockets.at(-1)!;
    await untilRead(socket, first.length);
    client.write(second);
    await untilRead(socket, first.length + second.length);
    gate = undefined;
    release();
    assert.equal((await client.next())?.status, 200);
    const handed = await client.next();
    assert.equal(handed?.status, 599);
    assert.equal(handed.body, 'POST /messages/b second');
    client.close();
  });

  test('closing idle connections cuts the idle ones it holds; a busy one is answered, then closed', async () => {
    const idle = await RawClient.open(port);
    idle.write(publish('/messages/a', 'x'));
    assert.equal((await idle.next())?.status, 200);
    const busy = await RawClient.open(port);
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    const request = publish('/messages/a', 'in flight');
    busy.write(request);
    await untilRead(serverSockets.at(-1)!, request.length);
    closing = true;
    try {
      server.closeIdleConnections();
      await idle.closedPromise;
      assert.equal(busy.closed, false);
      gate = undefined;
      release();
      const answer = await busy.next();
      assert.equal(answer?.status, 200);
      assert.match(answer.head, /\r\nConnection: close$/);
      await busy.closedPromise;
    } finally {
      closing = false;
    }
  });

  test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
    const client = await RawClient.open(port);
    client.write(publish('/messages/a', 'x'));
    assert.equal((await client.next())?.status, 200);
    const started = Date.now();
    await client.closedPromise;
    const waited = Date.now() - started;
    assert.ok(waited >= 200 && waited < 3000, `closed after ${waited} ms`);
  });
});

describe('raw publish path in a hub', () => {
  let hub: TestHub;
  let port: number;

  before(async () => {
    hub = await startHub({ store: 'memory', corsOrigins: ['https://app.example'], maxBodySize: 4096, maxRequestsPerSocket: 3, keepAliveTimeout: 4000 });
    port = Number(new URL(hub.url).port);
  });
  after(async () => {
    await hub.close();
  });

  test('answers byte for byte as Fastify does, request after request on keep-alive connections', async () => {
    const raw = await RawClient.open(port);
    const fastify = await RawClient.open(port);
    const cases: string[] = [
      publish('/messages/a', 'hello'),
      publish('/messages/a', 'x', 'Origin: https://app.example\r\n'),
      publish('/messages/https%3A%2F%2Fexample.com%2Fbooks%2F1', 'x', 'Origin: https://other.example\r\n'),
    ];
    const normal = (answer: RawAnswer | undefined): string =>
      `${answer?.head.replace(/\r\nDate: [^\r]+/, '')}\r\n\r\n${answer?.body.replace(/"id":"\d+"/, '"id":"<n>"')}`;
    for (const request of cases) {
      raw.write(request);
      // The cookie sends the same request to Fastify (the raw and lean paths leave cookies to it).
      fastify.write(request.replace('\r\n\r\n', '\r\nCookie: theme=dark\r\n\r\n'));
      assert.equal(normal(await raw.next()), normal(await fastify.next()), request.split('\r\n')[0]);
    }
    // Both reached maxRequestsPerSocket (3): the third answers said `Connection: close`, and a
    // fourth request gets node:http's 503 on either.
    raw.write(publish('/messages/a', 'over'));
    fastify.write(publish('/messages/a', 'over', 'Cookie: theme=dark\r\n'));
    const past = await raw.next();
    assert.equal(past?.status, 503);
    assert.equal(normal(past), normal(await fastify.next()));
    raw.close();
    fastify.close();
  });

  test('a body it cannot parse is answered as Fastify does', async () => {
    const raw = await RawClient.open(port);
    const fastify = await RawClient.open(port);
    const request = 'POST /messages/a HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n{';
    raw.write(request);
    fastify.write(request.replace('\r\n\r\n', '\r\nCookie: theme=dark\r\n\r\n'));
    const a = await raw.next();
    const b = await fastify.next();
    assert.equal(a?.status, 400);
    assert.equal(a.head.replace(/\r\nDate: [^\r]+/, ''), b?.head.replace(/\r\nDate: [^\r]+/, ''));
    assert.equal(a.body, b?.body);
    raw.close();
    fastify.close();
  });

  test('a body shorter than its Content-Length, then a close, publishes nothing', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/short`);
    try {
      const client = await RawClient.open(port);
      client.write('POST /messages/short HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly part');
      client.socket.end();
      await client.closedPromise;
      const after = await RawClient.open(port);
      after.write(publish('/messages/short', 'whole'));
      assert.equal((await after.next())?.status, 200);
      after.close();
      await stream.waitFor((events) => events.some((e) => e.data === 'whole'));
      // The greeting, then 'whole': nothing of the cut request.
      assert.deepEqual(stream.events.slice(1).map((e) => e.data), ['whole']);
    } finally {
      stream.close();
    }
  });

  test('publishes on the raw path are counted in the request metrics', async () => {
    const metricsLine = async (): Promise<number> => {
      const text = await (await fetch(`${hub.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('sse_relay_http_request_duration_seconds_count') && l.includes('route="/messages/:id"') && l.includes('status="200"'));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await metricsLine();
    const client = await RawClient.open(port);
    client.write(publish('/messages/m', 'counted'));
    assert.equal((await client.next())?.status, 200);
    client.close();
    assert.equal(await metricsLine(), before + 1);
  });
});

describe('raw publish path: caps and shutdown', () => {
  test('a connection over the per-address cap gets the 429 of Fastify', async () => {
    const hub = await startHub({ store: 'memory', maxConnectionsPerIp: 1 });
    try {
      const port = Number(new URL(hub.url).port);
      const first = await RawClient.open(port);
      first.write(publish('/messages/a', 'x'));
      assert.equal((await first.next())?.status, 200);
      const second = await RawClient.open(port);
      second.write(publish('/messages/a', 'y'));
      const refused = await second.next();
      assert.equal(refused?.status, 429);
      assert.match(refused.head, /\r\nretry-after: 5/i);
      first.close();
      second.close();
    } finally {
      await hub.close();
    }
  });

  test('shutdown closes the idle keep-alive connections it holds at once, without forcing', async () => {
    const hub = await startHub({ store: 'memory', keepAliveTimeout: 60_000, shutdownTimeout: 10_000 });
    const port = Number(new URL(hub.url).port);
    const client = await RawClient.open(port);
    client.write(publish('/messages/a', 'x'));
    assert.equal((await client.next())?.status, 200);
    const started = Date.now();
    const outcome = await hub.close();
    assert.equal(outcome.forced, false);
    await client.closedPromise;
    assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
  });
});
