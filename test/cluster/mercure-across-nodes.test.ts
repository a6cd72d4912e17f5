import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { accessToken, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { openStream, type TestStream } from '../helpers/sse-client.js';
import { startCluster, type Cluster } from './cluster.js';

const unique = (): string => randomBytes(6).toString('hex');
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

describe('two hub processes on one Redis: Mercure with authorization across nodes', () => {
  let redis: TestRedis;
  let cluster: Cluster;
  let publisher: string;
  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 2, [
      '--publisher-jwt-key', MERCURE_SECRET,
      '--jwt-issuer', CONFORMANCE_ISSUER,
      '--jwt-audience', CONFORMANCE_AUDIENCE,
      '--anonymous',
    ]);
    publisher = await accessToken({ publish: [{ match: '*' }] });
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  it('delivers updates published on one node to subscribers of the other, private ones only to granted tokens', async () => {
    const [a, b] = cluster.nodes as [typeof cluster.nodes[0], typeof cluster.nodes[0]];
    const topic = `https://example.com/books/${unique()}`;
    const granted = await accessToken({ subscribe: [{ match: topic }] });
    const streams = new Map<string, TestStream>([
      ['granted', await openStream(mercureUrl(a.url, [['match', topic]]), bearer(granted))],
      ['anonymous', await openStream(mercureUrl(a.url, [['match', topic]]))],
    ]);
    try {
      for (const [name, stream] of streams) assert.equal(stream.status, 200, name);
      const updates: [string, string][][] = [
        [['topic', topic], ['id', `urn:private:${unique()}`], ['data', 'private one'], ['private', 'on']],
        [['topic', topic], ['data', 'public one']],
        [['topic', topic], ['data', 'private two'], ['private', 'on']],
        [['topic', topic], ['data', 'public two']],
      ];
      const ids: string[] = [];
      for (const fields of updates) {
        const res = await mercurePublish(b.url, fields, bearer(publisher));
        assert.equal(res.status, 200, res.text);
        ids.push(res.text);
      }
      assert.equal(ids[0], updates[0]![1]![1], 'the custom id is the event id on every node');
      const granted1 = streams.get('granted')!;
      const anonymous = streams.get('anonymous')!;
      await granted1.waitFor((events) => events.some((e) => e.data === 'public two'));
      await anonymous.waitFor((events) => events.some((e) => e.data === 'public two'));
      assert.deepEqual(granted1.events.map((e) => [e.id, e.data]), [
        [ids[0], 'private one'],
        [ids[1], 'public one'],
        [ids[2], 'private two'],
        [ids[3], 'public two'],
      ]);
      assert.deepEqual(anonymous.events.map((e) => [e.id, e.data]), [
        [ids[1], 'public one'],
        [ids[3], 'public two'],
      ]);

      // Resume on the other node from the custom id: the id mapping lives in Redis.
      const resumed = await openStream(mercureUrl(b.url, [['match', topic], ['last_event_id', ids[0]!]]), bearer(granted));
      streams.set('resumed', resumed);
      await resumed.waitFor((events) => events.some((e) => e.data === 'public two'));
      assert.deepEqual(resumed.events.map((e) => e.data), ['public one', 'private two', 'public two']);
    } finally {
      for (const stream of streams.values()) stream.close();
    }
  });

  it('refuses a publish without a valid token on every node, whatever the store', async () => {
    for (const node of cluster.nodes) {
      const res = await mercurePublish(node.url, [['topic', 'x'], ['data', 'y']]);
      assert.equal(res.status, 401);
    }
  });
});
