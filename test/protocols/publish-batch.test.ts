/**
 * `POST /messages`: many messages in one request, all or nothing, on every store. Ids come back
 * in order and are consecutive even while other publishers run; a bad item, a missing grant or
 * too many messages store nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { publishMany, RelayClientError } from '../../src/client/index.js';
import { legacyToken, MERCURE_SECRET } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { isMessage, openStream, post, publish, type TestStream } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(5).toString('hex');
const messagesOf = (stream: TestStream): string[] => stream.events.filter(isMessage).map((e) => e.data);

async function postBatch(hub: TestHub, body: string, contentType = 'application/json', headers: Record<string, string> = {}): Promise<{ status: number; json: { ids?: string[]; error?: { code: string; message: string } } }> {
  const res = await post(`${hub.url}/messages`, body, { 'content-type': contentType, ...headers });
  return { status: res.status, json: res.json as never };
}

/** Publishes a sentinel on `topic` and waits for it: whatever was published before is decided. */
async function settle(hub: TestHub, stream: TestStream, topic: string): Promise<void> {
  const sentinel = `sentinel-${unique()}`;
  await publish(hub.url, topic, sentinel);
  await stream.waitFor((events) => events.some((e) => e.data === sentinel));
}

async function retained(hub: TestHub, topic: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${hub.url}/messages/${topic}`, { headers });
  assert.equal(res.status, 200, `GET /messages/${topic}`);
  return ((await res.json()) as { retained: number }).retained;
}

function batchTests(storeName: string, start: () => Promise<TestHub>): void {
  describe(`POST /messages on the ${storeName} store`, () => {
    let hub: TestHub;
    before(async () => {
      hub = await start();
    });
    after(() => hub.close());

    it('publishes a JSON array in order, answers the ids in order, and subscribers receive theirs', async () => {
      const [a, b] = [unique(), unique()];
      const onA = await openStream(`${hub.url}/messages/subscribe/${a}`);
      const onB = await openStream(`${hub.url}/messages/subscribe/${b}`);
      try {
        const res = await postBatch(hub, JSON.stringify([{ id: a, message: 'a1' }, { id: b, message: 'b1', event: 'note' }, { id: a, message: 'a2\nsecond line' }]));
        assert.equal(res.status, 200, JSON.stringify(res.json));
        const ids = res.json.ids!;
        assert.equal(ids.length, 3);
        assert.deepEqual(ids.map((id) => Number(id) - Number(ids[0])), [0, 1, 2], 'consecutive event ids');
        await onA.waitFor((events) => events.filter(isMessage).length >= 2);
        await onB.waitFor((events) => events.some(isMessage));
        assert.deepEqual(messagesOf(onA), ['a1', 'a2\nsecond line']);
        assert.deepEqual(onA.events.filter(isMessage).map((e) => e.id), [ids[0], ids[2]]);
        assert.deepEqual(onB.events.filter(isMessage).map((e) => [e.id, e.event, e.data]), [[ids[1], 'note', 'b1']]);
      } finally {
        onA.close();
        onB.close();
      }
    });

    it('takes NDJSON (blank lines ignored) the same way', async () => {
      const topic = unique();
      const res = await postBatch(hub, `{"id":"${topic}","message":"one"}\n\n{"id":"${topic}","message":"two"}\n`, 'application/x-ndjson');
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.json.ids!.length, 2);
      assert.equal(await retained(hub, topic), 2);
    });

    it('refuses the whole batch for one bad item, naming it, and stores nothing', async () => {
      const topic = unique();
      const stream = await openStream(`${hub.url}/messages/subscribe/${topic}`);
      try {
        for (const [body, contentType, mention] of [
          [JSON.stringify([{ id: topic, message: 'fine' }, { id: topic, message: 'fine too' }, { id: topic, message: 'bad type', event: 'a\nb' }]), 'application/json', 'message 3'],
          [JSON.stringify([{ id: topic, message: 'fine' }, { id: topic }]), 'application/json', 'message 2'],
          [JSON.stringify([{ id: topic, message: 'fine' }, { id: '', message: 'no topic' }]), 'application/json', 'message 2'],
          [JSON.stringify([{ id: topic, message: 'fine' }, 'not an object']), 'application/json', 'message 2'],
          [`{"id":"${topic}","message":"fine"}\n{not json`, 'application/x-ndjson', 'Line 2'],
          [JSON.stringify({ id: topic, message: 'an object, not an array' }), 'application/json', 'JSON array'],
          ['[]', 'application/json', 'empty'],
          [JSON.stringify(Array.from({ length: 1001 }, () => ({ id: topic, message: 'x' }))), 'application/json', 'At most 1000'],
        ] as const) {
          const res = await postBatch(hub, body, contentType);
          assert.equal(res.status, 400, `${body.slice(0, 60)}: ${JSON.stringify(res.json)}`);
          assert.equal(res.json.error!.code, 'HUB_ERR_BATCH_INVALID');
          assert.ok(res.json.error!.message.includes(mention), `"${res.json.error!.message}" mentions ${mention}`);
        }
        await settle(hub, stream, topic);
        assert.equal(messagesOf(stream).length, 1, 'only the sentinel arrived');
        assert.equal(await retained(hub, topic), 1);
      } finally {
        stream.close();
      }
    });

    it('keeps each batch in one piece while other batches and single publishes run', async () => {
      const topic = unique();
      const batches = Array.from({ length: 12 }, (_, b) =>
        postBatch(hub, JSON.stringify(Array.from({ length: 50 }, (_, i) => ({ id: topic, message: `b${b}-${i}` })))),
      );
      const singles = Array.from({ length: 100 }, (_, i) => publish(hub.url, topic, `single-${i}`));
      const results = await Promise.all(batches);
      await Promise.all(singles);
      for (const res of results) {
        assert.equal(res.status, 200);
        const ids = res.json.ids!.map(Number);
        assert.deepEqual(ids.map((id) => id - ids[0]!), Array.from({ length: 50 }, (_, i) => i), 'no other publish in between');
      }
      assert.equal(await retained(hub, topic), 12 * 50 + 100);
    });

    it('the SDK publishMany resolves with the ids in order, and rejects with the hub\'s code', async () => {
      const topic = unique();
      const ids = await publishMany({ url: hub.url, messages: [{ id: topic, message: 'x' }, { id: topic, message: 'y', event: 'e' }] });
      assert.equal(ids.length, 2);
      assert.equal(Number(ids[1]!.id), Number(ids[0]!.id) + 1);
      await assert.rejects(publishMany({ url: hub.url, messages: [] }), (error: unknown) => error instanceof RelayClientError && error.code === 'HUB_ERR_BATCH_INVALID' && error.status === 400);
    });
  });
}

batchTests('SQLite', () => startHub());
batchTests('memory', () => startHub({ store: 'memory' }));
describe('on Redis', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());
  batchTests('Redis', () => startHub({ store: redis.url as `redis://${string}` }));
});

describe('POST /messages with a publisher key', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET });
  });
  after(() => hub.close());

  it('needs the grant for every id of the batch: one missing refuses all with 403', async () => {
    const [granted, other] = [unique(), unique()];
    const token = await legacyToken({ publish: [granted], subscribe: [granted] });
    const auth = { authorization: `Bearer ${token}` };
    const refused = await postBatch(hub, JSON.stringify([{ id: granted, message: 'ok' }, { id: other, message: 'not granted' }]), 'application/json', auth);
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.equal(await retained(hub, granted, auth), 0);
    const anonymous = await postBatch(hub, JSON.stringify([{ id: granted, message: 'ok' }]));
    assert.equal(anonymous.status, 401);
    const accepted = await postBatch(hub, JSON.stringify([{ id: granted, message: 'ok' }]), 'application/json', auth);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.json));
    assert.equal(await retained(hub, granted, auth), 1);
  });
});

describe('POST /messages keeps the rules of POST /messages/:id', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  it("refuses the hub's Mercure namespace and the mercure event type, as a single publish does", async () => {
    const ok = unique();
    for (const [item, code] of [
      [{ id: '/.well-known/mercure/subscriptions/exact/x/urn:uuid:1', message: '{"active":true}' }, 'HUB_ERR_TOPIC_RESERVED'],
      [{ id: '/./.well-known/mercure/subscriptions', message: 'x' }, 'HUB_ERR_TOPIC_RESERVED'],
      [{ id: ok, message: 'x', event: 'mercure' }, 'HUB_ERR_EVENT_TYPE_INVALID'],
    ] as const) {
      const single = await post(`${hub.url}/messages/${encodeURIComponent(item.id)}`, JSON.stringify(item), { 'content-type': 'application/json' });
      assert.equal(single.status, 400, `single ${JSON.stringify(item)}`);
      assert.equal(single.json.error.code, code);
      const batch = await postBatch(hub, JSON.stringify([{ id: ok, message: 'fine' }, item]));
      assert.equal(batch.status, 400, `batch ${JSON.stringify(item)}: ${JSON.stringify(batch.json)}`);
      assert.match(batch.json.error!.message, /message 2 of the batch/);
      assert.match(batch.json.error!.message, code === 'HUB_ERR_TOPIC_RESERVED' ? /reserved for the hub/ : /"mercure" event type is reserved/);
    }
    assert.equal(await retained(hub, ok), 0);
  });
});
