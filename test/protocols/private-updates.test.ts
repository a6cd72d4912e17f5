import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { accessToken, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';

const unique = (): string => `https://example.com/${randomBytes(8).toString('hex')}`;
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

interface Info {
  retained: number;
  firstId: string | null;
  lastId: string | null;
}

/**
 * Issue 12, item 9: private updates reach only those granted them, also through the side door of
 * `GET /messages/:id`, under both rules (`--private-updates any-topic`, Mercure's, and
 * `every-topic`, ours before).
 */
describe('private updates: who receives them, and what topic info reveals', () => {
  let mercureRule: TestHub;
  let everyTopicRule: TestHub;
  let openHub: TestHub;
  let publisher: string;
  before(async () => {
    mercureRule = await startHub({ publisherJwtKey: MERCURE_SECRET, anonymous: true });
    everyTopicRule = await startHub({ publisherJwtKey: MERCURE_SECRET, anonymous: true, privateUpdates: 'every-topic' });
    openHub = await startHub();
    publisher = await accessToken({ publish: [{ match: '*' }] });
  });
  after(async () => {
    await mercureRule.close();
    await everyTopicRule.close();
    await openHub.close();
  });

  async function update(hub: TestHub, topics: string[], data: string, isPrivate: boolean): Promise<string> {
    const fields: [string, string][] = [...topics.map((t): [string, string] => ['topic', t]), ['data', data]];
    if (isPrivate) fields.push(['private', 'on']);
    const res = await mercurePublish(hub.url, fields, bearer(publisher));
    assert.equal(res.status, 200, res.text);
    return res.text;
  }

  async function info(hub: TestHub, topic: string, token?: string): Promise<Info> {
    const res = await fetch(`${hub.url}/messages/${encodeURIComponent(topic)}`, { headers: token === undefined ? {} : bearer(token) });
    assert.equal(res.status, 200);
    const { retained, firstId, lastId } = (await res.json()) as Info;
    return { retained, firstId, lastId };
  }

  it('GET /messages/:id counts and names only the updates the caller may receive', async () => {
    for (const [name, hub] of [['any-topic', mercureRule], ['every-topic', everyTopicRule]] as const) {
      const [topic, other] = [unique(), unique()];
      const p1 = await update(hub, [topic], 'p1', false);
      const s1 = await update(hub, [topic], 's1', true);
      await update(hub, [topic, other], 's2', true);
      const p2 = await update(hub, [topic], 'p2', false);
      const s3 = await update(hub, [topic], 's3', true);

      const publicOnly = { retained: 2, firstId: p1, lastId: p2 };
      assert.deepEqual(await info(hub, topic), publicOnly, `${name}: anonymous`);
      const unrelated = await accessToken({ subscribe: [{ match: unique() }] });
      assert.deepEqual(await info(hub, topic, unrelated), publicOnly, `${name}: a token granted another topic`);
      const noGrant = await accessToken({});
      assert.deepEqual(await info(hub, topic, noGrant), publicOnly, `${name}: a token without grants`);

      const onTopic = await accessToken({ subscribe: [{ match: topic }] });
      const onOther = await accessToken({ subscribe: [{ match: other }] });
      const onBoth = await accessToken({ subscribe: [{ match: '*' }] });
      assert.deepEqual(await info(hub, topic, onBoth), { retained: 5, firstId: p1, lastId: s3 }, `${name}: granted everything`);
      if (name === 'any-topic') {
        // Granted the topic: every private update on it; granted the other topic: s2 only.
        assert.deepEqual(await info(hub, topic, onTopic), { retained: 5, firstId: p1, lastId: s3 }, name);
        assert.deepEqual(await info(hub, topic, onOther), { retained: 3, firstId: p1, lastId: p2 }, name);
      } else {
        // s2 needs both topics.
        assert.deepEqual(await info(hub, topic, onTopic), { retained: 4, firstId: p1, lastId: s3 }, name);
        assert.deepEqual(await info(hub, topic, onOther), publicOnly, name);
      }
      assert.ok(s1 !== p1);
    }
  });

  it('GET /messages/:id on an open hub never counts private updates (they reach nobody)', async () => {
    const topic = unique();
    const secret = await mercurePublish(openHub.url, [['topic', topic], ['data', 'secret'], ['private', 'on']]);
    assert.equal(secret.status, 200);
    const visible = await mercurePublish(openHub.url, [['topic', topic], ['data', 'public']]);
    assert.deepEqual(await info(openHub, topic), { retained: 1, firstId: visible.text, lastId: visible.text });
  });

  it('an update on [A, B] reaches a subscriber of A granted only B under the Mercure rule, not under every-topic', async () => {
    for (const [name, hub, receives] of [['any-topic', mercureRule, true], ['every-topic', everyTopicRule, false]] as const) {
      const [a, b] = [unique(), unique()];
      const token = await accessToken({ subscribe: [{ match: b }] });
      const stream = await openStream(mercureUrl(hub.url, [['match', a]]), bearer(token));
      try {
        assert.equal(stream.status, 200);
        await update(hub, [a, b], 'private-on-a-and-b', true);
        await update(hub, [a], 'private-on-a', true);
        // Dispatch is in commit order: once the public sentinel arrived, the rest was decided.
        await update(hub, [a], 'sentinel', false);
        await stream.waitFor((events) => events.some((e) => e.data === 'sentinel'));
        const received = stream.events.map((e) => e.data).filter((d) => d !== '');
        assert.deepEqual(received, receives ? ['private-on-a-and-b', 'sentinel'] : ['sentinel'], name);
      } finally {
        stream.close();
      }
      // The same on replay.
      const replay = await openStream(mercureUrl(hub.url, [['match', a], ['last_event_id', 'earliest']]), bearer(token));
      try {
        await replay.waitFor((events) => events.some((e) => e.data === 'sentinel'));
        const received = replay.events.map((e) => e.data).filter((d) => d !== '');
        assert.deepEqual(received, receives ? ['private-on-a-and-b', 'sentinel'] : ['sentinel'], `${name}, replayed`);
      } finally {
        replay.close();
      }
    }
  });
});
