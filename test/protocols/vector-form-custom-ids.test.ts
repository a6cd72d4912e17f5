import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import type { ServeOptions } from '../../src/config/options.js';
import { mercurePublish } from '../auth/tokens.js';
import { startHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { isGreeting, openStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(8).toString('hex');

let redis: Promise<TestRedis> | undefined;
after(async () => {
  if (redis) await (await redis).stop();
});

/**
 * Issue 14, review item 6: the `v<digits>.` form is the id of a sharded store's positions, so it
 * is reserved only there (--redis-shards above 1). Every one-shard store accepts such custom
 * ids as main did, and resumes from them.
 */
describe('custom ids of the v<digits>. form on one-shard stores', () => {
  const stores: [string, () => Promise<Partial<ServeOptions>>][] = [
    ['sqlite', async () => ({ store: 'sqlite' })],
    ['memory', async () => ({ store: 'memory' })],
    ['redis (one stream)', async () => ({ store: (await (redis ??= startRedis())).url as ServeOptions['store'] })],
  ];
  for (const [name, options] of stores) {
    it(`${name}: accepts v1.0 and v2.release-notes and resumes after them`, async () => {
      const hub = await startHub(await options());
      try {
        const topic = unique();
        for (const id of ['v1.0', 'v2.release-notes']) {
          const res = await mercurePublish(hub.url, [['topic', topic], ['id', id], ['data', `data of ${id}`]]);
          assert.equal(res.status, 200, `${id}: ${res.text}`);
          assert.equal(res.text, id);
        }
        const stream = await openStream(`${hub.url}/messages/subscribe/${topic}`, { 'Last-Event-ID': 'v1.0' });
        try {
          await stream.waitFor((events) => events.some((e) => e.data === 'data of v2.release-notes'));
          assert.deepEqual(stream.events.filter((e) => !isGreeting(e)).map((e) => [e.id, e.data]), [['v2.release-notes', 'data of v2.release-notes']]);
          assert.equal(stream.headers['replay-gap'], undefined);
        } finally {
          stream.close();
        }
      } finally {
        await hub.close();
      }
    });
  }
});
