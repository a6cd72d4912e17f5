import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { mercurePublish, mercureUrl } from '../auth/tokens.js';
import type { ServeOptions } from '../../src/config/options.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { isGreeting, openStream, publish } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(8).toString('hex');

/**
 * Issue 12, item 8: custom (publisher-chosen) event ids never take the form of the hub's own
 * ids, so a cursor the hub issued always means the same position.
 */
describe('custom event ids cannot shadow the hub’s ids', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('refuses a custom id of the hub’s form with 400 and stores nothing; resuming from the real id still works', async () => {
    const [victim, attacker] = [unique(), unique()];
    const hubId = await publish(hub.url, victim, 'first');
    const secondId = await publish(hub.url, victim, 'second');

    for (const id of [hubId, secondId, String(Number(hubId) + 1_000), '0', '007', 'earliest']) {
      const res = await mercurePublish(hub.url, [['topic', attacker], ['id', id], ['data', 'shadow']]);
      assert.equal(res.status, 400, `id ${id}: ${res.text}`);
      assert.match(res.text, /digits only/, `id ${id}: the message says why`);
    }
    const info = (await (await fetch(`${hub.url}/messages/${attacker}`)).json()) as { retained: number };
    assert.equal(info.retained, 0, 'nothing was stored for the refused updates');

    // Ids that merely contain digits are still the publisher's to choose.
    const custom = await mercurePublish(hub.url, [['topic', attacker], ['id', `${hubId}-a`], ['data', 'fine']]);
    assert.equal(custom.status, 200, custom.text);
    assert.equal(custom.text, `${hubId}-a`);

    // A subscriber of the victim topic resuming from the hub's first id gets the second message.
    const stream = await openStream(`${hub.url}/messages/subscribe/${victim}`, { 'Last-Event-ID': hubId });
    try {
      assert.equal(stream.status, 200);
      await stream.waitFor((events) => events.some((e) => e.data === 'second'));
      assert.deepEqual(
        stream.events.filter((e) => !isGreeting(e)).map((e) => [e.id, e.data]),
        [[secondId, 'second']],
      );
      assert.equal(stream.headers['replay-gap'], undefined);
    } finally {
      stream.close();
    }

    // On Mercure too, the cursor is the hub's id, not a custom one.
    const mercure = await openStream(mercureUrl(hub.url, [['match', victim], ['last_event_id', hubId]]));
    try {
      await mercure.waitFor((events) => events.some((e) => e.data === 'second'));
      assert.equal(mercure.headers['mercure-last-event-id'], hubId);
    } finally {
      mercure.close();
    }
  });
});

/**
 * Mercure lets the publisher choose an update's id ("the topic's revision identifier") and
 * assumes it names one update. The hub does not check that it is unused: a reused id names its
 * latest retained use (README, "Mercure"), so resuming from it continues after that use.
 */
const REUSE_STORES: readonly [name: string, store: 'memory' | 'sqlite' | 'redis', redisShards: number][] = [
  ['memory', 'memory', 1],
  ['sqlite', 'sqlite', 1],
  ['redis', 'redis', 1],
  ['redis, 4 shards', 'redis', 4],
];

for (const [storeName, store, redisShards] of REUSE_STORES) {
  describe(`a reused custom id names its latest use (${storeName})`, () => {
    let hub: TestHub;
    let redis: TestRedis | undefined;
    before(async () => {
      if (store === 'redis') redis = await startRedis();
      hub = await startHub(redis ? { store: redis.url as ServeOptions['store'], redisShards } : { store: store === 'memory' ? 'memory' : 'sqlite' });
    });
    after(async () => {
      await hub.close();
      await redis?.stop();
    });

    it('is accepted, both updates are delivered with it, and a resume from it continues after its latest use', async () => {
      const topic = unique();
      const fields = (id: string | undefined, data: string): [string, string][] => [['topic', topic], ['data', data], ...(id ? [['id', id] as [string, string]] : [])];
      for (const [id, data] of [['rev-1', 'one'], [undefined, 'two'], ['rev-1', 'three'], [undefined, 'four']] as const) {
        const res = await mercurePublish(hub.url, fields(id, data));
        assert.equal(res.status, 200, res.text);
        if (id) assert.equal(res.text, id, 'answered with the id it was given');
      }
      const replay = await openStream(mercureUrl(hub.url, [['match', topic], ['lastEventID', 'earliest']]));
      try {
        await replay.waitFor((events) => events.some((e) => e.data === 'four'));
        assert.deepEqual(
          replay.events.filter((e) => !isGreeting(e) && e.data !== '').map((e) => [/^(\d+|v1\..*)$/.test(e.id ?? '') ? 'hub' : e.id, e.data]),
          [['rev-1', 'one'], ['hub', 'two'], ['rev-1', 'three'], ['hub', 'four']],
        );
      } finally {
        replay.close();
      }
      const resumed = await openStream(mercureUrl(hub.url, [['match', topic]]), { 'Last-Event-ID': 'rev-1' });
      try {
        await resumed.waitFor((events) => events.some((e) => e.data === 'four'));
        assert.deepEqual(
          resumed.events.filter((e) => !isGreeting(e) && e.data !== '').map((e) => e.data),
          ['four'],
          'after the latest use of the id (a client that saw only its first use misses "two" and "three")',
        );
        assert.equal(resumed.headers['mercure-last-event-id'], 'rev-1', 'a known id, not a gap');
      } finally {
        resumed.close();
      }
    });
  });
}
