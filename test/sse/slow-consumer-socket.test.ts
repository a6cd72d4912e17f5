/**
 * Evicting a slow consumer must not hurt the connection once the evicted response has been
 * delivered: the client may read the rest, see the stream end, and send its next request on the
 * same keep-alive connection. The eviction's safety timer (which releases a socket whose
 * client never reads) used to destroy that socket a second later, whatever it carried by then.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { startHub } from '../helpers/hub.js';
import { eventually, publish } from '../helpers/sse-client.js';

/** The end of a chunked event stream cut off as a slow consumer: the notice, then the last chunk. */
const EVICTED_END = /: closed: slow consumer\n\n\r\n0\r\n\r\n/;

describe('slow-consumer eviction and keep-alive', () => {
  it('a request sent on the same connection after the evicted stream ended is served to the end, not reset', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: 64 * 1024 });
    t.after(() => hub.close());
    const { port } = new URL(hub.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    let closed = false;
    let failure: Error | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => (closed = true));
    socket.on('error', (error) => (failure = error));
    t.after(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

    socket.write('GET /messages/subscribe/evicted HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await eventually(() => received.includes('Subscribed to id evicted'), 5000, 'the greeting');
    socket.pause();

    // The kernel's socket buffers absorb a few MB before the hub's own backlog grows; bounded.
    const payload = 'z'.repeat(32 * 1024);
    for (let i = 0; i < 1000 && hub.hub.subscriberCount('evicted') === 1; i++) await publish(hub.url, 'evicted', `${i} ${payload}`);
    assert.equal(hub.hub.subscriberCount('evicted'), 0, 'the subscriber that did not read was evicted');
    const evictedAt = performance.now();

    // The client reads again, finds the end of the evicted stream, and reuses the connection.
    socket.resume();
    await eventually(() => EVICTED_END.test(received), 10_000, 'the end of the evicted stream');
    const secondStart = received.length;
    socket.write('GET /messages/subscribe/after HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await eventually(() => received.slice(secondStart).includes('Subscribed to id after'), 5000, 'the second stream to open');
    assert.match(received.slice(secondStart), /^HTTP\/1\.1 200 /);

    // Well past the eviction's one-second timer (2.5 times it), the second stream still works.
    await sleep(Math.max(0, evictedAt + 2500 - performance.now()));
    const id = await publish(hub.url, 'after', 'still here');
    await eventually(() => received.slice(secondStart).includes(`id: ${id}\ndata: still here\n\n`) || closed, 5000, 'the message on the reused connection');
    assert.equal(closed, false, `the reused connection was closed under the second request${failure ? ` (${failure.message})` : ''}`);
    assert.equal(failure, undefined);
    assert.equal(hub.hub.subscriberCount('after'), 1);
  });

  it('a client that never reads again is still released within seconds of its eviction', async (t) => {
    const hub = await startHub({ store: 'memory', maxBacklog: 64 * 1024 });
    t.after(() => hub.close());
    const serverSides: Socket[] = [];
    hub.app.server.on('connection', (serverSide: Socket) => serverSides.push(serverSide));
    const { port } = new URL(hub.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {});
    t.after(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /messages/subscribe/stalled HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await eventually(() => received.includes('Subscribed to id stalled'), 5000, 'the greeting');
    socket.pause();
    const serverSide = serverSides.find((s) => s.remotePort === socket.localPort);
    assert.ok(serverSide, "the hub's side of the connection");

    const payload = 'z'.repeat(32 * 1024);
    for (let i = 0; i < 1000 && hub.hub.subscriberCount('stalled') === 1; i++) await publish(hub.url, 'stalled', `${i} ${payload}`);
    assert.equal(hub.hub.subscriberCount('stalled'), 0, 'evicted');
    // The final notice can never drain to a client that does not read: the hub lets go of the
    // socket anyway (its timer is one second; ten allowed on a loaded machine).
    await eventually(() => serverSide.destroyed, 10_000, 'the hub to release the stalled connection');
  });
});
