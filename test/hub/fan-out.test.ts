import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, publish, type TestStream } from '../helpers/sse-client.js';

describe('fan-out and connection lifecycle', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ maxBacklog: 64 * 1024 });
  });
  after(() => hub.close());

  it('delivers 100 messages in order to each of 1,000 subscribers on one id', async () => {
    const streams: TestStream[] = [];
    try {
      for (let batch = 0; batch < 10; batch++) {
        streams.push(...(await Promise.all(Array.from({ length: 100 }, () => openStream(`${hub.url}/messages/subscribe/crowd`)))));
      }
      await Promise.all(streams.map((s) => s.waitForCount(1)));
      assert.equal(hub.hub.subscriberCount('crowd'), 1000);
      const ids: string[] = [];
      for (let i = 0; i < 100; i++) ids.push(await publish(hub.url, 'crowd', `message ${i}`));
      await Promise.all(streams.map((s) => s.waitForCount(101, 30_000)));
      const expected = ids.map((id, i) => `${id}:message ${i}`);
      for (const stream of streams) {
        assert.deepEqual(stream.events.slice(1).map((e) => `${e.id}:${e.data}`), expected);
      }
    } finally {
      for (const s of streams) s.close();
    }
    await eventually(() => hub.hub.subscriberCount('crowd') === 0, 10_000, 'crowd to leave');
  });

  it('leaves no subscription, timer or listener behind after 10,000 connect/disconnect cycles', async () => {
    const agent = new Agent({ keepAlive: false, maxSockets: 50 });
    const listenersBefore = hub.app.server.listenerCount('connection') + hub.app.server.listenerCount('request');
    const server = hub.app.server;
    const connections = (): Promise<number> => new Promise((resolve) => server.getConnections((_e, n) => resolve(n)));
    // fetch() keeps its publishing connections alive; those are not the churn's.
    const connectionsBefore = await connections();
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const cycle = (i: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const req = request(`${hub.url}/messages/subscribe/churn-${i % 100}`, { agent }, (res) => {
          // Wait for the greeting so the subscription really was registered, then hang up.
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(error)));
        req.end();
      });
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 10_000) await cycle(next++);
      }),
    );
    agent.destroy();
    await eventually(() => hub.hub.subscriptionCount === 0, 10_000, 'all subscriptions to close');
    assert.equal(hub.hub.indexedTopicCount, 0, 'no topic index entries left');
    await eventually(async () => (await connections()) <= connectionsBefore, 10_000, 'the churned connections to close');
    assert.equal(hub.app.server.listenerCount('connection') + hub.app.server.listenerCount('request'), listenersBefore);
    assert.ok(timers() <= timersBefore, `timers: ${timers()} now, ${timersBefore} before`);
  });

  it('delivers a message larger than the backlog limit to a subscriber that keeps up', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/big`);
    try {
      await stream.waitForCount(1);
      const big = 'b'.repeat(200 * 1024);
      const id = await publish(hub.url, 'big', big);
      await stream.waitForCount(2);
      assert.deepEqual(stream.events[1], { id, event: undefined, data: big });
    } finally {
      stream.close();
    }
  });

  it('disconnects a subscriber that does not read, while a fast one keeps receiving', async () => {
    const fast = await openStream(`${hub.url}/messages/subscribe/slow-test`);
    const { port } = new URL(hub.url);
    const slow = connect(Number(port), '127.0.0.1');
    const slowChunks: Buffer[] = [];
    let slowClosed = false;
    slow.on('close', () => (slowClosed = true));
    slow.on('error', () => {});
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write('GET /messages/subscribe/slow-test HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    // Read until the greeting arrived, then stop reading for good.
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        slowChunks.push(chunk);
        if (Buffer.concat(slowChunks).includes('Subscribed to id')) {
          slow.off('data', onData);
          slow.pause();
          resolve();
        }
      };
      slow.on('data', onData);
    });
    await fast.waitForCount(1);
    assert.equal(hub.hub.subscriberCount('slow-test'), 2);

    const payload = 'z'.repeat(32 * 1024);
    const ids: string[] = [];
    // The kernel's socket buffers absorb a few MB before the hub's own backlog grows; bounded.
    for (let i = 0; i < 1000 && hub.hub.subscriberCount('slow-test') === 2; i++) {
      ids.push(await publish(hub.url, 'slow-test', `${i} ${payload}`));
    }
    assert.equal(hub.hub.subscriberCount('slow-test'), 1, 'the slow subscriber was evicted');
    const last = await publish(hub.url, 'slow-test', 'after eviction');
    await fast.waitFor((e) => e.at(-1)?.id === last, 20_000);
    assert.deepEqual(fast.events.slice(1).map((e) => e.id), [...ids, last], 'the fast subscriber missed nothing');

    // The slow client, once it reads again, finds the stream ended with the eviction notice
    // and the last chunk (or, if it was too slow even for that, the connection closed). The
    // connection itself may then stay open for keep-alive (see test/sse/slow-consumer-socket).
    slow.on('data', (chunk: Buffer) => slowChunks.push(chunk));
    slow.resume();
    await eventually(
      () => slowClosed || Buffer.concat(slowChunks).includes(': closed: slow consumer\n\n\r\n0\r\n\r\n'),
      10_000,
      'the slow stream to end',
    );
    fast.close();
  });
});
