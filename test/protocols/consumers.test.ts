import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServeOptions } from '../../src/config/options.js';
import { legacyToken } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { startStallingProxy } from '../helpers/stalling-proxy.js';
import { eventually, isMessage, openStream, post, publish, type ReceivedEvent, type TestStream } from '../helpers/sse-client.js';

const streamUrl = (hub: TestHub, topic: string, name: string): string =>
  `${hub.url}/messages/subscribe/${encodeURIComponent(topic)}?consumer=${encodeURIComponent(name)}`;

const consumerUrl = (hub: TestHub, topic: string, name?: string): string =>
  `${hub.url}/messages/${encodeURIComponent(topic)}/consumers${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

const dataOf = (events: readonly ReceivedEvent[]): string[] => events.filter(isMessage).map((e) => e.data);

function ack(hub: TestHub, topic: string, name: string, id: unknown, headers: Record<string, string> = {}) {
  return post(`${consumerUrl(hub, topic, name)}/ack`, JSON.stringify({ id }), { 'content-type': 'application/json', ...headers });
}

async function consumerInfo(hub: TestHub, topic: string, name: string, headers: Record<string, string> = {}) {
  const res = await fetch(consumerUrl(hub, topic, name), { headers });
  return { status: res.status, json: (await res.json()) as any };
}

/** Opens a consumer's stream and waits for its greeting (and `extra` more events). */
async function connect(hub: TestHub, topic: string, name: string, extra = 0, headers: Record<string, string> = {}): Promise<TestStream> {
  const stream = await openStream(streamUrl(hub, topic, name), headers);
  assert.equal(stream.status, 200, stream.raw());
  await stream.waitForCount(1 + extra);
  return stream;
}

/** Closes a stream and waits until the hub saw the consumer go (it may then connect again). */
async function disconnect(hub: TestHub, topic: string, name: string, stream: TestStream, headers: Record<string, string> = {}): Promise<void> {
  stream.close();
  await eventually(async () => (await consumerInfo(hub, topic, name, headers)).json.connected === false, 5000, `${name} disconnected`);
}

for (const kind of ['sqlite', 'redis'] as const) {
  describe(`acknowledged consumers (${kind})`, () => {
    let redis: TestRedis | undefined;
    const hubs: TestHub[] = [];
    let hub: TestHub;
    const startOn = async (overrides: Partial<ServeOptions> = {}): Promise<TestHub> => {
      const store = kind === 'redis' ? ((redis ??= await startRedis()).url as ServeOptions['store']) : 'sqlite';
      const started = await startHub({ store, ...overrides });
      hubs.push(started);
      return started;
    };
    before(async () => {
      // Retention of 2 per topic: anything the consumers get beyond that was held for them.
      hub = await startOn({ retentionCount: 2 });
    });
    after(async () => {
      for (const h of hubs) await h.close();
      await redis?.stop();
    });

    it('redelivers unacknowledged messages on the next connection, in order, past retention', async () => {
      const first = await connect(hub, 'orders', 'billing');
      const ids = [await publish(hub.url, 'orders', 'a'), await publish(hub.url, 'orders', 'b'), await publish(hub.url, 'orders', 'c')];
      await first.waitForCount(4);
      assert.deepEqual(dataOf(first.events), ['a', 'b', 'c']);
      await disconnect(hub, 'orders', 'billing', first);
      // Published while it is away, beyond the topic's retention of 2.
      ids.push(await publish(hub.url, 'orders', 'd'), await publish(hub.url, 'orders', 'e'));
      const topic = (await (await fetch(`${hub.url}/messages/orders`)).json()) as { retained: number };
      assert.equal(topic.retained, 2, 'retention applies to the topic itself');

      const second = await connect(hub, 'orders', 'billing', 5);
      assert.deepEqual(dataOf(second.events), ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(second.events.filter(isMessage).map((e) => e.id), ids);
      second.close();
    });

    it('after an ack, a reconnection gets only the newer messages, then the live ones', async () => {
      const first = await connect(hub, 'acked', 'worker');
      const a = await publish(hub.url, 'acked', 'a');
      const b = await publish(hub.url, 'acked', 'b');
      await publish(hub.url, 'acked', 'c');
      await first.waitForCount(4);
      const res = await ack(hub, 'acked', 'worker', b);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.ackedId, b);
      assert.equal(res.json.pending, 1);
      assert.equal(res.json.connected, true);
      const older = await ack(hub, 'acked', 'worker', a);
      assert.equal(older.status, 200, 'an older id is acknowledged already: idempotent');
      assert.equal(older.json.ackedId, b);
      const metrics = await (await fetch(`${hub.url}/metrics`)).text();
      assert.match(metrics, /^sse_relay_consumer_acks_total [1-9]/m, 'the moving ack is counted');
      assert.match(metrics, /^sse_relay_consumers_connected [1-9]/m);
      await disconnect(hub, 'acked', 'worker', first);

      const second = await connect(hub, 'acked', 'worker', 1);
      assert.equal(second.events[0]!.id, b, 'the greeting names the acknowledged position');
      await publish(hub.url, 'acked', 'd');
      await second.waitForCount(3);
      assert.deepEqual(dataOf(second.events), ['c', 'd']);
      second.close();
    });

    it('redelivers from the ack even when Last-Event-ID is later', async () => {
      const first = await connect(hub, 'later', 'audit');
      const a = await publish(hub.url, 'later', 'a');
      await publish(hub.url, 'later', 'b');
      const c = await publish(hub.url, 'later', 'c');
      await first.waitForCount(4);
      assert.equal((await ack(hub, 'later', 'audit', a)).status, 200);
      await disconnect(hub, 'later', 'audit', first);
      const second = await connect(hub, 'later', 'audit', 2, { 'Last-Event-ID': c });
      assert.deepEqual(dataOf(second.events), ['b', 'c']);
      second.close();
    });

    it('starts a new consumer at Last-Event-ID when given, else at the current end', async () => {
      const a = await publish(hub.url, 'start', 'a');
      await publish(hub.url, 'start', 'b');
      const fromA = await connect(hub, 'start', 'from-a', 1, { 'Last-Event-ID': a });
      assert.deepEqual(dataOf(fromA.events), ['b']);
      const fresh = await connect(hub, 'start', 'fresh');
      await publish(hub.url, 'start', 'c');
      await fresh.waitForCount(2);
      await fromA.waitForCount(3);
      assert.deepEqual(dataOf(fresh.events), ['c']);
      fromA.close();
      fresh.close();
    });

    it('refuses a second stream of the same consumer with 409 while the first is open', async () => {
      const first = await connect(hub, 'busy', 'single');
      const second = await openStream(streamUrl(hub, 'busy', 'single'));
      assert.equal(second.status, 409);
      await second.ended;
      assert.match(second.raw(), /HUB_ERR_CONSUMER_BUSY/);
      await disconnect(hub, 'busy', 'single', first);
      const third = await connect(hub, 'busy', 'single');
      third.close();
    });

    it('takes over with ?takeover=1 a stream a dead connection left open, replaying what was not acknowledged', async () => {
      // The first stream goes through a proxy that stops forwarding without closing anything:
      // the hub keeps it open (its heartbeats go nowhere), as when a client's network vanished.
      const proxy = await startStallingProxy(hub.url);
      try {
        const viaProxy = await openStream(`${proxy.url}/messages/subscribe/takeover?consumer=worker`);
        assert.equal(viaProxy.status, 200);
        await viaProxy.waitForCount(1);
        const a = await publish(hub.url, 'takeover', 'a');
        await publish(hub.url, 'takeover', 'b');
        await viaProxy.waitForCount(3);
        assert.equal((await ack(hub, 'takeover', 'worker', a)).status, 200);
        proxy.stall();
        const subscribersBefore = ((await (await fetch(`${hub.url}/stats`)).json()) as { subscribers: number }).subscribers;

        const refused = await openStream(streamUrl(hub, 'takeover', 'worker'));
        assert.equal(refused.status, 409, 'without takeover the dead stream still holds the consumer');
        await refused.ended;
        assert.match(refused.raw(), /takeover=1/, 'the refusal says how to take over');

        const taken = await openStream(`${streamUrl(hub, 'takeover', 'worker')}&takeover=1`);
        assert.equal(taken.status, 200, taken.raw());
        await taken.waitForCount(2);
        assert.deepEqual(dataOf(taken.events), ['b'], 'what the dead stream got but no one acknowledged comes again');
        const c = await publish(hub.url, 'takeover', 'c');
        await taken.waitFor((events) => events.some((e) => e.id === c));
        assert.deepEqual(dataOf(taken.events), ['b', 'c']);
        // The dead stream was ended: the hub holds one stream for the consumer, not two.
        await eventually(async () => ((await (await fetch(`${hub.url}/stats`)).json()) as { subscribers: number }).subscribers === subscribersBefore, 5000, 'the dead stream to be ended');
        assert.equal((await consumerInfo(hub, 'takeover', 'worker')).json.connected, true);
        taken.close();
        viaProxy.close();
      } finally {
        await proxy.close();
      }
    });

    it('ends a live stream a takeover replaces with a comment saying why', async () => {
      const first = await connect(hub, 'takeover-live', 'worker');
      const second = await openStream(`${streamUrl(hub, 'takeover-live', 'worker')}&takeover=true`);
      assert.equal(second.status, 200);
      await first.ended;
      assert.match(first.raw(), /: closed: a newer stream of this consumer took over\n\n$/);
      const id = await publish(hub.url, 'takeover-live', 'after');
      await second.waitFor((events) => events.some((e) => e.id === id));
      second.close();
    });

    it('refuses ?takeover= without a consumer or with another value', async () => {
      for (const query of ['takeover=1', 'consumer=w&takeover=yes', 'consumer=w&takeover=1&takeover=1', 'consumer=w&takeover=']) {
        const res = await openStream(`${hub.url}/messages/subscribe/takeover-bad?${query}`);
        assert.equal(res.status, 400, query);
        await res.ended;
        assert.match(res.raw(), /HUB_ERR_BAD_REQUEST/, query);
        assert.match(res.raw(), /takeover/, query);
      }
    });

    it('answers malformed, unknown and misplaced acks with codes', async () => {
      const stream = await connect(hub, 'acks', 'strict');
      const id = await publish(hub.url, 'acks', 'a');
      await stream.waitForCount(2);
      const other = await publish(hub.url, 'elsewhere', 'not for this consumer');
      for (const bad of [undefined, '', 42, 'never-issued', other]) {
        const res = await ack(hub, 'acks', 'strict', bad);
        assert.equal(res.status, 400, `ack ${JSON.stringify(bad)}`);
        assert.equal(res.json.error.code, 'HUB_ERR_ACK_INVALID');
      }
      const missing = await ack(hub, 'acks', 'nobody', id);
      assert.equal(missing.status, 404);
      assert.equal(missing.json.error.code, 'HUB_ERR_CONSUMER_NOT_FOUND');
      const badName = await openStream(`${hub.url}/messages/subscribe/acks?consumer=${encodeURIComponent('no spaces')}`);
      assert.equal(badName.status, 400);
      await badName.ended;
      assert.match(badName.raw(), /HUB_ERR_CONSUMER_INVALID/);
      assert.equal((await ack(hub, 'acks', 'strict', id)).status, 200);
      stream.close();
    });

    it('lists the consumers of an id with their acked id, pending count and connection', async () => {
      const one = await connect(hub, 'listed', 'one');
      const two = await connect(hub, 'listed', 'two');
      const first = await publish(hub.url, 'listed', 'a');
      await publish(hub.url, 'listed', 'b');
      await one.waitForCount(3);
      assert.equal((await ack(hub, 'listed', 'one', first)).status, 200);
      await disconnect(hub, 'listed', 'two', two);
      const res = await fetch(consumerUrl(hub, 'listed'));
      const body = (await res.json()) as { id: string; consumers: { name: string; ackedId: string; pending: number; connected: boolean; lastSeen: string }[] };
      assert.equal(body.id, 'listed');
      assert.deepEqual(body.consumers.map((c) => [c.name, c.pending, c.connected]), [['one', 1, true], ['two', 2, false]]);
      assert.equal(body.consumers[0]!.ackedId, first);
      assert.ok(!Number.isNaN(Date.parse(body.consumers[1]!.lastSeen)));
      one.close();
    });

    it('past --consumer-max-pending releases the oldest and tells the consumer with a gap event', async () => {
      const small = await startOn({ consumerMaxPending: 3 });
      const first = await connect(small, 'bounded', 'slow');
      await disconnect(small, 'bounded', 'slow', first);
      const ids: string[] = [];
      for (const m of ['m1', 'm2', 'm3', 'm4', 'm5']) ids.push(await publish(small.url, 'bounded', m));
      await eventually(async () => (await consumerInfo(small, 'bounded', 'slow')).json.lost?.count === 2, 5000, 'two lost');
      const second = await connect(small, 'bounded', 'slow', 4);
      const gap = second.events.find((e) => e.event === 'gap');
      assert.ok(gap, 'a gap event');
      assert.deepEqual(JSON.parse(gap.data), { reason: 'consumer-max-pending', firstId: ids[0], lastId: ids[1], count: 2 });
      assert.deepEqual(dataOf(second.events), ['m3', 'm4', 'm5']);
      const acked = await ack(small, 'bounded', 'slow', ids[4]);
      assert.equal(acked.json.lost, null, 'an ack clears what was lost');
      second.close();
    });

    it('expires consumers idle for --consumer-ttl, never a connected one', async () => {
      const short = await startOn({ consumerTtl: 300 });
      const idle = await connect(short, 'ttl', 'idle');
      const kept = await connect(short, 'ttl', 'kept');
      await disconnect(short, 'ttl', 'idle', idle);
      await eventually(async () => (await consumerInfo(short, 'ttl', 'idle')).status === 404, 5000, 'idle consumer expired');
      const info = await consumerInfo(short, 'ttl', 'idle');
      assert.equal(info.json.error.code, 'HUB_ERR_CONSUMER_NOT_FOUND');
      // Four TTLs later, the connected one is still there.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.equal((await consumerInfo(short, 'ttl', 'kept')).json.connected, true);
      kept.close();
    });
  });
}

describe('acknowledged consumers with subscriber keys', () => {
  let hub: TestHub;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let nobody: Record<string, string>;
  before(async () => {
    hub = await startHub({ publisherJwtKey: '!ChangeThisMercureHubJWTSecretKey!' });
    const grants = { publish: ['*'], subscribe: ['*'] };
    alice = { authorization: `Bearer ${await legacyToken(grants, { sub: 'alice' })}` };
    bob = { authorization: `Bearer ${await legacyToken(grants, { sub: 'bob' })}` };
    nobody = { authorization: `Bearer ${await legacyToken(grants)}` };
  });
  after(() => hub.close());

  it('a consumer belongs to the subject that created it: others get 403 on subscribe, ack and read', async () => {
    const stream = await connect(hub, 'private', 'inbox', 0, alice);
    const res = await post(`${hub.url}/messages/private`, JSON.stringify({ message: 'for alice' }), { 'content-type': 'application/json', ...alice });
    const id = (res.json as { id: string }).id;
    await stream.waitForCount(2);

    const intruder = await openStream(streamUrl(hub, 'private', 'inbox'), bob);
    assert.equal(intruder.status, 403);
    await intruder.ended;
    assert.match(intruder.raw(), /HUB_ERR_CONSUMER_FORBIDDEN/);
    const bobAck = await ack(hub, 'private', 'inbox', id, bob);
    assert.equal(bobAck.status, 403);
    assert.equal(bobAck.json.error.code, 'HUB_ERR_CONSUMER_FORBIDDEN');
    assert.equal((await consumerInfo(hub, 'private', 'inbox', bob)).status, 403);
    const bobList = (await (await fetch(consumerUrl(hub, 'private'), { headers: bob })).json()) as { consumers: unknown[] };
    assert.deepEqual(bobList.consumers, [], 'another subject\'s consumers are not listed');
    const takeover = await openStream(`${streamUrl(hub, 'private', 'inbox')}&takeover=1`, bob);
    assert.equal(takeover.status, 403, 'another subject cannot take the consumer over');
    await takeover.ended;
    assert.match(takeover.raw(), /HUB_ERR_CONSUMER_FORBIDDEN/);
    await post(`${hub.url}/messages/private`, JSON.stringify({ message: 'still for alice' }), { 'content-type': 'application/json', ...alice });
    await stream.waitForCount(3);
    assert.doesNotMatch(stream.raw(), /took over/, "the owner's stream stays open");
    const noSub = await openStream(streamUrl(hub, 'private', 'mine'), nobody);
    assert.equal(noSub.status, 403, 'a token without sub cannot own a consumer');
    await noSub.ended;

    const aliceAck = await ack(hub, 'private', 'inbox', id, alice);
    assert.equal(aliceAck.status, 200, aliceAck.text);
    const aliceList = (await (await fetch(consumerUrl(hub, 'private'), { headers: alice })).json()) as { consumers: { name: string }[] };
    assert.deepEqual(aliceList.consumers.map((c) => c.name), ['inbox']);
    const anonymous = await ack(hub, 'private', 'inbox', id);
    assert.equal(anonymous.status, 401);
    stream.close();
  });
});
