/**
 * The raw subscribe path (src/http/raw-subscribe.ts): a plain `GET /messages/subscribe/<id>`
 * is streamed on the socket without node:http's request and response objects, and everything it
 * sends is what the Fastify route sends. Each check opens the same request twice: as it is (the
 * raw path takes it) and with one header byte outside the raw path's subset (a Latin-1 `é`,
 * which node:http accepts and nobody reads), which node:http and Fastify serve. node:http's
 * `request` event tells which one served: the raw path never causes one.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ServeOptions } from '../../src/config/options.js';
import { installRawSubscribe } from '../../src/http/raw-subscribe.js';
import { legacyToken, MERCURE_SECRET } from '../auth/tokens.js';
import { spawnHub } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { RawClient } from '../helpers/raw-http-client.js';
import { eventually, publish } from '../helpers/sse-client.js';

/** A header that keeps a request off the raw path, and changes nothing else. */
const OFF_RAW_PATH = 'X-Pad: \xe9\r\n';

const subscribe = (id: string, headers = ''): string => `GET /messages/subscribe/${id} HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n${headers}\r\n`;

/** What came on a connection so far, as text (Latin-1: bytes one for one). */
async function openConnection(hub: TestHub, request: string): Promise<{ client: RawClient; text: () => string }> {
  const client = await RawClient.open(Number(new URL(hub.url).port));
  let text = '';
  client.socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  client.write(request);
  return { client, text: () => text };
}

/** The bytes with the Date header's value blanked (the two answers may be a second apart). */
const withoutDate = (text: string): string => text.replace(/\r\nDate: [^\r]*\r\n/, '\r\nDate: -\r\n');

/** Opens `request` on the raw path and off it; both once `ready` holds for what they received. */
async function openBoth(hub: TestHub, request: string, ready: (text: string) => boolean) {
  const requests = { count: 0 };
  const count = (): void => void requests.count++;
  hub.app.server.on('request', count);
  const raw = await openConnection(hub, request);
  await eventually(() => ready(raw.text()), 5000, 'the raw path to answer');
  const servedByNodeHttpBefore = requests.count;
  const routed = await openConnection(hub, request.replace('\r\n\r\n', `\r\n${OFF_RAW_PATH}\r\n`));
  await eventually(() => ready(routed.text()), 5000, 'the Fastify route to answer');
  hub.app.server.off('request', count);
  return { raw, routed, rawWasNodeHttps: servedByNodeHttpBefore > 0, routedWasNodeHttps: requests.count > servedByNodeHttpBefore };
}

const hasGreeting = (text: string): boolean => /data: Subscribed to id [^\n]*\n\n\r\n/.test(text);

describe('raw subscribe path', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', corsOrigins: ['http://app.example'], heartbeatInterval: 200 } as Partial<ServeOptions>);
  });
  after(() => hub.close());

  test('a plain subscription is streamed without node:http, byte for byte as the route streams it: head, greeting, messages, heartbeats', async (t) => {
    const request = subscribe('raw-live', 'Origin: http://app.example\r\n');
    const { raw, routed, rawWasNodeHttps, routedWasNodeHttps } = await openBoth(hub, request, hasGreeting);
    t.after(() => {
      raw.client.socket.destroy();
      routed.client.socket.destroy();
    });
    assert.equal(rawWasNodeHttps, false, 'the plain request never reached node:http');
    assert.equal(routedWasNodeHttps, true, 'the other one was node:http and Fastify');
    assert.match(raw.text(), /^HTTP\/1\.1 200 OK\r\n[^]*access-control-allow-origin: http:\/\/app\.example\r\n/);
    assert.equal(withoutDate(raw.text()), withoutDate(routed.text()), 'the same head and greeting');
    assert.equal(hub.hub.subscriberCount('raw-live'), 2);

    const id = await publish(hub.url, 'raw-live', 'hello\nworld');
    const message = `id: ${id}\ndata: hello\ndata: world\n\n\r\n`;
    await eventually(() => raw.text().includes(message) && routed.text().includes(message), 5000, 'the message on both');
    const fromMessage = (text: string): string => text.slice(text.indexOf(message) - 20, text.indexOf(message) + message.length);
    assert.equal(fromMessage(raw.text()), fromMessage(routed.text()), 'the same chunk');

    const heartbeat = '\r\n3\r\n:\n\n\r\n';
    await eventually(() => raw.text().includes(heartbeat) && routed.text().includes(heartbeat), 5000, 'heartbeats on both');
  });

  test('a resuming subscription (Last-Event-ID) replays the same bytes on the raw path', async (t) => {
    const first = await publish(hub.url, 'raw-resume', 'one');
    await publish(hub.url, 'raw-resume', 'two');
    await publish(hub.url, 'raw-resume', 'three');
    const request = subscribe('raw-resume', `Last-Event-ID: ${first}\r\n`);
    const { raw, routed, rawWasNodeHttps } = await openBoth(hub, request, (text) => text.includes('data: three\n\n\r\n'));
    t.after(() => {
      raw.client.socket.destroy();
      routed.client.socket.destroy();
    });
    assert.equal(rawWasNodeHttps, false);
    assert.doesNotMatch(raw.text(), /data: one\n/);
    assert.equal(withoutDate(raw.text()), withoutDate(routed.text()));
  });

  test('a refused request (an invalid id) gets the route\'s error answer, from one attempt', async () => {
    const tooLong = 'x'.repeat(300);
    const isAnswer = (text: string): boolean => /\r\n\r\n[^]*\}$/.test(text);
    const { raw, routed } = await openBoth(hub, subscribe(tooLong), isAnswer);
    raw.client.socket.destroy();
    routed.client.socket.destroy();
    assert.match(raw.text(), /^HTTP\/1\.1 400 /);
    assert.equal(withoutDate(raw.text()), withoutDate(routed.text()));
    assert.equal(hub.hub.subscriberCount(tooLong), 0);
  });

  test('a client that goes away releases its subscription; a client that half-closes too', async () => {
    const gone = await openConnection(hub, subscribe('raw-gone'));
    const halfClosed = await openConnection(hub, subscribe('raw-gone'));
    await eventually(() => hasGreeting(gone.text()) && hasGreeting(halfClosed.text()), 5000, 'both streams');
    assert.equal(hub.hub.subscriberCount('raw-gone'), 2);
    gone.client.socket.destroy();
    halfClosed.client.socket.end();
    await eventually(() => hub.hub.subscriberCount('raw-gone') === 0, 5000, 'both subscriptions released');
    await halfClosed.client.closedPromise;
  });
});

describe('raw subscribe path: authentication and shutdown', () => {
  test('without a token, the raw path gives the route\'s 401 with its challenge', async (t) => {
    const hub = await startHub({ store: 'memory', subscriberJwtKey: 'a-subscriber-secret-of-some-length', publisherJwtKey: 'a-publisher-secret-of-some-length' } as Partial<ServeOptions>);
    t.after(() => hub.close());
    const isAnswer = (text: string): boolean => /\r\n\r\n[^]*\}$/.test(text);
    const { raw, routed } = await openBoth(hub, subscribe('private'), isAnswer);
    raw.client.socket.destroy();
    routed.client.socket.destroy();
    assert.match(raw.text(), /^HTTP\/1\.1 401 [^]*\r\nwww-authenticate: Bearer/i);
    assert.equal(withoutDate(raw.text()), withoutDate(routed.text()));
    assert.equal(hub.hub.subscriptionCount, 0);
  });

  test('a client that resets its connection after its raw stream ended does not take the hub down', async () => {
    // A stream the hub ends (the token expires), on a connection the client asked to close:
    // the hub ends its side and waits for the client's; a reset then must be heard quietly.
    const hub = await spawnHub(['--store', 'memory', '--subscriber-jwt-key', MERCURE_SECRET, '--publisher-jwt-key', MERCURE_SECRET]);
    try {
      const token = await legacyToken({ subscribe: ['*'] }, { exp: Math.floor(Date.now() / 1000) + 1 });
      // Half-open allowed: the client does not answer the hub's FIN with its own, it resets.
      const socket = connect({ port: Number(new URL(hub.url).port), host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.write(subscribe('raw-reset', `Authorization: Bearer ${token}\r\nConnection: close\r\n`));
      await eventually(() => text.endsWith('0\r\n\r\n'), 10_000, 'the stream to end when its token expires');
      assert.match(text, /closed: access token expired/);
      socket.resetAndDestroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const health = await fetch(`${hub.url}/healthz`);
      assert.equal(health.status, 200, 'the hub is still up');
      assert.doesNotMatch(hub.stderr(), /Unhandled 'error'/);
    } finally {
      hub.child.kill('SIGTERM');
      await hub.exited;
    }
  });

  test('after its raw stream ended, an idle keep-alive connection is closed at the keep-alive timeout, with nothing more written', async () => {
    const hub = await startHub({ store: 'memory', subscriberJwtKey: MERCURE_SECRET, publisherJwtKey: MERCURE_SECRET, keepAliveTimeout: 500 } as Partial<ServeOptions>);
    try {
      const token = await legacyToken({ subscribe: ['*'] }, { exp: Math.floor(Date.now() / 1000) + 1 });
      const stream = await openConnection(hub, subscribe('raw-idle', `Authorization: Bearer ${token}\r\n`));
      let closedAt = 0;
      stream.client.socket.on('close', () => (closedAt = Date.now()));
      await eventually(() => stream.text().endsWith('0\r\n\r\n'), 10_000, 'the stream to end when its token expires');
      const endedAt = Date.now();
      await eventually(() => closedAt > 0, 5000, 'the hub to close the idle connection');
      assert.ok(stream.text().endsWith('0\r\n\r\n'), 'nothing after the last chunk (no 408 for a request never sent)');
      assert.ok(closedAt - endedAt >= 300, `closed ${closedAt - endedAt} ms after the stream, not at once`);
    } finally {
      await hub.close();
    }
  });

  test('shutdown ends a raw stream with the final comment and the last chunk', async () => {
    const hub = await startHub({ store: 'memory' });
    const stream = await openConnection(hub, subscribe('raw-shutdown'));
    await eventually(() => hasGreeting(stream.text()), 5000, 'the stream');
    await hub.close();
    await eventually(() => stream.text().endsWith(': closed: hub shutting down\n\n\r\n0\r\n\r\n'), 5000, 'the end of the stream');
    stream.client.socket.destroy();
  });

  test('at shutdown, a request pipelined behind a raw stream gets an answer after the stream ends (the 503 of a request during the drain), then the connection closes', async () => {
    const hub = await startHub({ store: 'memory', shutdownTimeout: 10_000 });
    const serverSockets: Socket[] = [];
    hub.app.server.on('connection', (socket: Socket) => serverSockets.push(socket));
    const request = subscribe('raw-pipelined');
    const pipelined = 'GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n';
    const stream = await openConnection(hub, request);
    await eventually(() => hasGreeting(stream.text()), 5000, 'the stream');
    stream.client.write(pipelined);
    await eventually(() => serverSockets[0]!.bytesRead === request.length + pipelined.length, 5000, 'the pipelined bytes read by the hub before it shuts down');
    const outcome = await hub.close();
    await stream.client.closedPromise;
    assert.equal(outcome.forced, false, 'the drain ended without cutting the connection');
    const text = stream.text();
    const streamEnd = text.indexOf(': closed: hub shutting down\n\n\r\n0\r\n\r\n');
    assert.ok(streamEnd > 0, 'the stream ended with its final comment and last chunk');
    const after = text.slice(text.indexOf('0\r\n\r\n', streamEnd) + 5);
    assert.match(after, /^HTTP\/1\.1 503 Service Unavailable\r\n/, `the pipelined request answered, got ${JSON.stringify(after)}`);
    assert.match(after, /\r\nconnection: close\r\n/i);
    assert.match(after, /HUB_ERR_SHUTTING_DOWN/);
  });

  test('on its own in front of node:http, closing idle connections closes a connection that has not sent its first request yet', async () => {
    // In the hub raw-publish.ts reads new connections first (and closes its silent ones); here
    // the raw subscribe path is the only one in front, as when it is used without the other.
    const server = createServer((_request, response) => response.end());
    installRawSubscribe(server, {
      opener: () => async () => {},
      isShuttingDown: () => false,
      isOverLimit: () => false,
      presetHeaders: () => ({}),
      keepAliveTimeout: 5000,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    let accepted = false;
    server.once('connection', () => (accepted = true));
    const silent = await RawClient.open((server.address() as AddressInfo).port);
    try {
      await eventually(() => accepted, 5000, 'the server to accept the connection');
      server.closeIdleConnections();
      const closed = await Promise.race([silent.closedPromise.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 2000))]);
      assert.equal(closed, true, 'the silent connection was closed as idle');
    } finally {
      silent.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('at shutdown, a connection that has not sent its first request yet is closed at once, not at the shutdown deadline', async () => {
    const hub = await startHub({ store: 'memory', shutdownTimeout: 10_000, headersTimeout: 60_000, requestTimeout: 120_000 } as Partial<ServeOptions>);
    let accepted = false;
    hub.app.server.once('connection', () => (accepted = true));
    const silent = await RawClient.open(Number(new URL(hub.url).port));
    await eventually(() => accepted, 5000, 'the hub to accept the connection');
    const started = Date.now();
    const outcome = await hub.close();
    const waited = Date.now() - started;
    assert.equal(outcome.forced, false, 'closed as idle, not cut at the deadline');
    await silent.closedPromise;
    assert.ok(waited < 5000, `shutdown took ${waited} ms`);
    assert.equal(silent.socket.bytesRead, 0, 'nothing written to a connection that asked for nothing');
  });
});
