/**
 * What a subscriber evicted for its backlog (`?slow=disconnect`) sees, over a real socket. The
 * `: closed: slow consumer` notice is written after everything the hub still holds for it
 * (what the kernel buffers plus at most --max-backlog in the hub), and the hub lets go of the
 * socket one second after the eviction unless the response has been handed to the kernel by
 * then. So:
 * - a client that reads again within that second gets every event up to the notice, the notice,
 *   and the end of the response;
 * - a client that reads nothing for that second (a stuck reader) never gets the notice: when it
 *   reads again it finds what the kernel had buffered (whole events, maybe a cut last one) and
 *   a response that ends unfinished (no last chunk), and it resumes from its last complete
 *   event with no gap.
 * The kernel only wakes a writer once a third of the send buffer is free, so the hub cannot
 * see a slow reader's progress before that: keeping the socket for readers that drain slowly
 * was tried, and made no difference on Linux.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, publish } from '../helpers/sse-client.js';

const PAYLOAD = 'z'.repeat(32 * 1024);
/** A complete message event of this test, as the hub frames it. */
const EVENT = /id: (\d+)\ndata: (\d+) z{32768}\n\n/g;

interface RawStream {
  readonly socket: Socket;
  readonly serverSide: Socket;
  received(): string;
  readonly closed: Promise<void>;
}

async function openRaw(hub: TestHub, topic: string): Promise<RawStream> {
  const serverSides: Socket[] = [];
  const onConnection = (serverSide: Socket): void => void serverSides.push(serverSide);
  hub.app.server.on('connection', onConnection);
  const socket = connect(Number(new URL(hub.url).port), '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /messages/subscribe/${topic} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
  await eventually(() => received.includes(`Subscribed to id ${topic}`), 5000, 'the greeting');
  hub.app.server.off('connection', onConnection);
  const serverSide = serverSides.find((s) => s.remotePort === socket.localPort);
  assert.ok(serverSide, "the hub's side of the connection");
  return { socket, serverSide, received: () => received, closed };
}

/** Publishes 32 KiB messages until the hub evicts the topic's only subscriber. */
async function publishUntilEvicted(hub: TestHub, topic: string): Promise<number> {
  let count = 0;
  while (hub.hub.subscriberCount(topic) === 1 && count < 2000) await publish(hub.url, topic, `${count++} ${PAYLOAD}`);
  assert.equal(hub.hub.subscriberCount(topic), 0, 'the subscriber that did not keep up was evicted');
  return count;
}

describe('what an evicted slow consumer sees', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', maxBacklog: 64 * 1024, memoryMaxMessages: 100_000 });
  });
  after(() => hub.close());

  it('a client that reads again within a second of its eviction gets every event, the notice and the end of the response', async (t) => {
    const stream = await openRaw(hub, 'slow-reader');
    t.after(() => stream.socket.destroy());
    stream.socket.pause();
    const published = await publishUntilEvicted(hub, 'slow-reader');

    const startedReading = performance.now();
    stream.socket.resume();
    await eventually(() => stream.received().includes('\r\n0\r\n\r\n') || stream.serverSide.destroyed, 30_000, 'the end of the response');
    const tookMs = performance.now() - startedReading;

    const text = stream.received();
    assert.match(text, /: closed: slow consumer\n\n\r\n0\r\n\r\n$/, 'the notice, then the end of the chunked response');
    const numbers = [...text.matchAll(EVENT)].map((m) => Number(m[2]));
    assert.ok(numbers.length > 0 && numbers.length < published, `${numbers.length} of ${published} events before the notice`);
    assert.deepEqual(numbers, numbers.map((_, i) => i), 'the events before the notice arrive whole and in order');
    t.diagnostic(`read the end of the evicted stream ${Math.round(tookMs)} ms after resuming (${Math.round(text.length / 1024)} KiB)`);
  });

  it('a client that reads nothing for a second is let go of: no notice, an unfinished response, a gap-free resume', async (t) => {
    const stream = await openRaw(hub, 'stuck-reader');
    t.after(() => stream.socket.destroy());
    stream.socket.pause();
    const published = await publishUntilEvicted(hub, 'stuck-reader');
    await eventually(() => stream.serverSide.destroyed, 10_000, 'the hub to release the stuck connection');

    stream.socket.resume();
    await stream.closed;
    const text = stream.received();
    assert.ok(!text.includes('closed: slow consumer'), 'the notice never reached the stuck reader');
    assert.ok(!text.endsWith('\r\n0\r\n\r\n'), 'the response ends unfinished (no last chunk)');
    const events = [...text.matchAll(EVENT)].map((m) => ({ id: m[1]!, n: Number(m[2]) }));
    assert.ok(events.length > 0, 'what the kernel had buffered still arrives');
    assert.deepEqual(
      events.map((e) => e.n),
      events.map((_, i) => i),
    );

    // Its reconnection resumes after the last complete event: the next one comes first.
    const last = events[events.length - 1]!;
    const resumed = await openStream(`${hub.url}/messages/subscribe/stuck-reader`, { 'Last-Event-ID': last.id });
    t.after(() => resumed.close());
    await resumed.waitFor((received) => received.some((e) => e.data.startsWith(`${published - 1} `)), 20_000);
    const replayed = resumed.events.filter((e) => e.id !== undefined && /^\d+ z/.test(e.data)).map((e) => Number(e.data.split(' ')[0]));
    assert.deepEqual(replayed, Array.from({ length: published - last.n - 1 }, (_, i) => last.n + 1 + i));
  });
});
