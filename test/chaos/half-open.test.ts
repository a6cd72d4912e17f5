/**
 * A thousand half-open connections (connected and silent, a partial request line or header,
 * complete headers and a body that never ends) must not stop a normal client from subscribing
 * and publishing, with the default limits; the header and request timeouts then cut every one
 * of them off, silent ones included; and an attacker that fills its own per-address quota only
 * locks itself out. Attackers connect from other loopback addresses (127.0.0.2–11) so that the
 * per-address cap applies to them and not to the normal client on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, publish } from '../helpers/sse-client.js';
import { rawExchange, requestBytes } from '../fuzz/raw-http.js';

interface Attacker {
  readonly socket: Socket;
  closedByServer: boolean;
}

/** Opens `count` connections from `address` that each stop half-way in one of three ways. */
async function halfOpen(hub: TestHub, address: string, count: number, kinds: readonly ('silent' | 'partial-head' | 'partial-body')[]): Promise<Attacker[]> {
  const port = Number(new URL(hub.url).port);
  const attackers: Attacker[] = [];
  const connected: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', localAddress: address });
    const attacker: Attacker = { socket, closedByServer: false };
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.on('close', () => (attacker.closedByServer = true));
    connected.push(
      new Promise((resolve, reject) => {
        socket.once('connect', () => {
          const kind = kinds[i % kinds.length];
          if (kind === 'partial-head') socket.write(`GET /messages/subscribe/victim-${i} HTTP/1.1\r\nHost: x\r\nX-Slow: `);
          else if (kind === 'partial-body') socket.write(`POST /messages/victim HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nonly a little`);
          resolve();
        });
        socket.once('error', reject);
      }),
    );
    attackers.push(attacker);
  }
  await Promise.all(connected);
  return attackers;
}

/** A normal client on 127.0.0.1 subscribes on both APIs, publishes 20 messages and receives them all. */
async function normalClientIsServed(hub: TestHub): Promise<number> {
  const started = performance.now();
  const stream = await openStream(`${hub.url}/messages/subscribe/normal`);
  const mercure = await openStream(`${hub.url}/.well-known/mercure?match=normal`);
  try {
    assert.equal(stream.status, 200);
    assert.equal(mercure.status, 200);
    await stream.waitForCount(1, 5000);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await publish(hub.url, 'normal', `message ${i}`));
    await stream.waitFor((events) => events.at(-1)?.id === ids.at(-1), 5000);
    await mercure.waitFor((events) => events.at(-1)?.id === ids.at(-1), 5000);
    assert.deepEqual(stream.events.slice(1).map((e) => e.id), ids);
    return performance.now() - started;
  } finally {
    stream.close();
    mercure.close();
  }
}

describe('half-open connections', () => {
  it('a thousand of them do not stop a normal client, with the default limits', async (t) => {
    const hub = await startHub({ store: 'memory' });
    const attackers: Attacker[] = [];
    t.after(async () => {
      for (const a of attackers) a.socket.destroy();
      await hub.close();
    });
    for (let n = 2; n <= 11; n++) attackers.push(...(await halfOpen(hub, `127.0.0.${n}`, 100, ['silent', 'partial-head', 'partial-body'])));
    assert.equal(attackers.filter((a) => a.closedByServer).length, 0, 'all 1,000 held open');
    const ms = await normalClientIsServed(hub);
    t.diagnostic(`normal client subscribed twice, published and received 20 messages in ${ms.toFixed(0)} ms beside 1,000 half-open connections`);
  });

  it('the header and request timeouts cut every kind off, silent connections included', async (t) => {
    const hub = await startHub({ store: 'memory', headersTimeout: 1000, requestTimeout: 2000 });
    const attackers: Attacker[] = [];
    t.after(async () => {
      for (const a of attackers) a.socket.destroy();
      await hub.close();
    });
    for (let n = 2; n <= 4; n++) attackers.push(...(await halfOpen(hub, `127.0.0.${n}`, 100, ['silent', 'partial-head', 'partial-body'])));
    const started = performance.now();
    await eventually(() => attackers.every((a) => a.closedByServer), 10_000, 'every half-open connection to be closed by the hub');
    t.diagnostic(`300 half-open connections closed by the hub within ${(performance.now() - started).toFixed(0)} ms`);
    await normalClientIsServed(hub);
  });

  it('an address at its per-address cap locks out only itself', async (t) => {
    const hub = await startHub({ store: 'memory', maxConnectionsPerIp: 500 });
    const attackers: Attacker[] = [];
    t.after(async () => {
      for (const a of attackers) a.socket.destroy();
      await hub.close();
    });
    attackers.push(...(await halfOpen(hub, '127.0.0.20', 500, ['silent'])));
    const port = Number(new URL(hub.url).port);
    const refused = await rawExchange(port, requestBytes({ method: 'GET', target: '/healthz' }), { localAddress: '127.0.0.20' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '5');
    assert.match(refused.body.toString(), /HUB_ERR_TOO_MANY_CONNECTIONS/);
    await normalClientIsServed(hub);
    const other = await rawExchange(port, requestBytes({ method: 'GET', target: '/healthz' }), { localAddress: '127.0.0.21' });
    assert.equal(other.status, 200);
  });
});
