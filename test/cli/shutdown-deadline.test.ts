/**
 * `--shutdown-timeout` bounds a shutdown even when a client holds a request open: past the
 * deadline every connection is cut and the process exits non-zero, saying so. Requests that
 * arrive while the hub drains get the hub's 503, not a hang or Fastify's own shape.
 * The request timeout is 60 s in both tests, so only the shutdown deadline can end them in time.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { eventually } from '../helpers/sse-client.js';

interface RawConnection {
  readonly socket: Socket;
  received(): string;
  closed(): boolean;
}

async function rawConnection(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  let received = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed: () => closed };
}

/** True once nothing listens on the hub's port any more (the drain has begun). */
function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const probe = connect({ host: hostname, port: Number(port) });
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', () => resolve(true));
  });
}

async function withHub(shutdownTimeout: string, run: (hub: HubProcess) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sse-relay-shutdown-'));
  const hub = await spawnHub(['--data-dir', dir, '--shutdown-timeout', shutdownTimeout, '--request-timeout', '60s', '--headers-timeout', '30s']);
  try {
    await run(hub);
  } finally {
    hub.child.kill('SIGKILL');
    await hub.exited;
    await rm(dir, { recursive: true, force: true });
  }
}

describe('shutdown deadline', () => {
  it('a stuck upload does not hold SIGTERM past --shutdown-timeout: connections cut, exit 1, said on stderr', async () => {
    await withHub('1s', async (hub) => {
      const upload = await rawConnection(hub.url);
      // `100 Continue` says the hub has parsed the head: the request is in flight, for certain.
      upload.socket.write('POST /messages/stuck HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n');
      await eventually(() => upload.received().startsWith('HTTP/1.1 100 Continue'), 5000, 'the hub to take the request head');
      upload.socket.write('only a little');

      const signalled = performance.now();
      hub.child.kill('SIGTERM');
      // Bounded here so that a hub that hangs fails the test instead of hanging it.
      const code = await Promise.race([hub.exited, sleep(20_000, undefined, { ref: false }).then(() => 'still running 20 s after SIGTERM')]);
      const tookMs = performance.now() - signalled;

      assert.equal(code, 1, 'a forced shutdown exits non-zero');
      assert.ok(tookMs < 5000, `exited in ${Math.round(tookMs)} ms with a 1 s shutdown timeout (request timeout 60 s)`);
      assert.match(hub.stderr(), /shutdown timeout \(1000 ms\) passed.*closed \d+ open connection/i);
      await eventually(() => upload.closed(), 5000, 'the stuck upload to be closed by the hub');
    });
  });

  it('a request that arrives while the hub drains gets 503 HUB_ERR_SHUTTING_DOWN with Connection: close', async () => {
    await withHub('5s', async (hub) => {
      // Half a request head before the signal: the connection is busy, so the drain waits for
      // it, and the rest of the head arrives during the shutdown.
      const late = await rawConnection(hub.url);
      late.socket.write('POST /messages/late HTTP/1.1\r\nHost: x\r\n');
      const ok = await fetch(`${hub.url}/healthz`);
      assert.equal(ok.status, 200);

      hub.child.kill('SIGTERM');
      await eventually(() => refusesConnections(hub.url), 5000, 'the hub to stop listening');
      late.socket.write('Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
      await eventually(() => late.received().includes('\r\n\r\n{'), 5000, 'an answer to the late request');

      const answer = late.received();
      assert.match(answer, /^HTTP\/1\.1 503 /);
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.match(answer, /\r\nretry-after: 1\r\n/i);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.equal(body.error.code, 'HUB_ERR_SHUTTING_DOWN');

      // Once answered, nothing holds the hub: it exits cleanly, well before its deadline.
      assert.equal(await hub.exited, 0);
    });
  });
});
