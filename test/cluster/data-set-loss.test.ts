/**
 * Redis loses its data (FLUSHALL, or a restart without persistence) under hub processes that
 * keep running. The new data set's seqs start from whichever node publishes first; a node whose
 * dispatch watermark is above them (its clock ran ahead, or a node with a slower clock starts
 * the new set) must still deliver them, and so must every other node.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { startRedis } from '../helpers/redis-server.js';
import { isMessage, openStream, publish, type TestStream } from '../helpers/sse-client.js';

/** A process whose clock runs an hour ahead: what an unsynchronised VM looks like. */
const CLOCK_AN_HOUR_AHEAD = `--import=data:text/javascript,${encodeURIComponent('const real = Date.now; Date.now = () => real() + 3600000;')}`;

const dataOf = (stream: TestStream): string[] => stream.events.filter(isMessage).map((e) => e.data);

describe('Redis store: the data set is lost under running nodes', () => {
  it('after FLUSHALL every node delivers what any node publishes, whatever the clocks of the nodes', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const prefix = `flush-${randomBytes(4).toString('hex')}:`;
    const args = ['--store', redis.url, '--redis-key-prefix', prefix];
    const nodes: HubProcess[] = [];
    const streams: TestStream[] = [];
    t.after(async () => {
      streams.forEach((s) => s.close());
      for (const node of nodes) node.child.kill('SIGKILL');
      await Promise.all(nodes.map((node) => node.exited));
    });
    const ahead = await spawnHub(args, { NODE_OPTIONS: CLOCK_AN_HOUR_AHEAD });
    nodes.push(ahead);
    const steady = await spawnHub(args);
    nodes.push(steady);
    const onAhead = await openStream(`${ahead.url}/messages/subscribe/news`);
    const onSteady = await openStream(`${steady.url}/messages/subscribe/news`);
    streams.push(onAhead, onSteady);

    // The data set starts on the node whose clock is ahead: every watermark is an hour ahead.
    await publish(ahead.url, 'news', 'before the flush');
    for (const stream of [onAhead, onSteady]) await stream.waitFor((events) => events.some(isMessage));

    const admin = new Redis(redis.url, { protocol: 2 });
    try {
      await admin.flushall();
    } finally {
      admin.disconnect();
    }

    // A node that joins the empty Redis starts the new data set from its own (correct) clock.
    const late = await spawnHub(args);
    nodes.push(late);
    const onLate = await openStream(`${late.url}/messages/subscribe/news`);
    streams.push(onLate);
    await publish(late.url, 'news', 'from the late node');
    await publish(steady.url, 'news', 'from the steady node');
    await publish(ahead.url, 'news', 'from the node ahead');

    // Live subscribers on the nodes that saw the old data set are told it is gone and resume:
    // their cursor is unknown now, so they get a gap and everything of the new data set.
    const expected = ['from the late node', 'from the steady node', 'from the node ahead'];
    for (const [name, stream] of [
      ['the node ahead', onAhead],
      ['the steady node', onSteady],
    ] as const) {
      await Promise.race([stream.ended, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      assert.match(stream.raw(), /: closed: the store lost its data; reconnect \(earlier history is gone\)\n\n$/, `the stream on ${name} says why it ended`);
      assert.deepEqual(dataOf(stream).slice(0, 1), ['before the flush']);
      const resumed = await openStream(`${name === 'the node ahead' ? ahead.url : steady.url}/messages/subscribe/news`, { 'Last-Event-ID': stream.lastEventId()! });
      streams.push(resumed);
      await resumed.waitFor((events) => events.filter(isMessage).length >= expected.length, 15_000).catch(() => {});
      assert.equal(resumed.headers['replay-gap'], 'true', `the resumed stream on ${name} reports the gap`);
      assert.deepEqual(dataOf(resumed), expected, `subscriber resumed on ${name}`);
    }
    await onLate.waitFor((events) => events.filter(isMessage).length >= expected.length, 15_000).catch(() => {});
    assert.deepEqual(dataOf(onLate), expected, 'subscriber on the late node');
  });
});
