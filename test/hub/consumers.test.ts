import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Consumers } from '../../src/hub/consumers.js';
import { Hub } from '../../src/hub/hub.js';
import { MemoryStore } from '../../src/store/memory-store.js';

/** The hub core alone, on a memory store: no HTTP. */
async function core(t: TestContext, ttlMs = 60_000): Promise<{ hub: Hub; consumers: Consumers }> {
  const store = new MemoryStore({ maxMessages: 1000, maxMessagesPerTopic: 1000, maxAgeMs: 0 });
  const hub = new Hub(store);
  await hub.start();
  t.after(() => hub.shutdown());
  return { hub, consumers: new Consumers(hub, { ttlMs }) };
}

describe('hub core: acknowledged consumers', () => {
  it('allows one session per consumer at a time, and checks the owner before anything', async (t) => {
    const { hub, consumers } = await core(t);
    const alice = { subject: 'alice' };
    const session = await consumers.connect('t', 'c', alice, hub.store.dispatchedThrough(), undefined);
    await assert.rejects(consumers.connect('t', 'c', { subject: 'bob' }, 0, undefined), { code: 'HUB_ERR_CONSUMER_FORBIDDEN' });
    await assert.rejects(consumers.connect('t', 'c', alice, 0, undefined), { code: 'HUB_ERR_CONSUMER_BUSY' });
    session.end();
    session.end();
    const again = await consumers.connect('t', 'c', alice, 0, undefined);
    again.end();
    // On a hub without keys (subject null) nobody owns anything.
    (await consumers.connect('t', 'c', { subject: null }, 0, undefined)).end();
    await assert.rejects(consumers.connect('t', 'bad name', alice, 0, undefined), { code: 'HUB_ERR_CONSUMER_INVALID' });
  });

  it('two sessions opening at once: exactly one gets the consumer', async (t) => {
    const { hub, consumers } = await core(t);
    const at = hub.store.dispatchedThrough();
    const outcomes = await Promise.allSettled([consumers.connect('t', 'race', { subject: null }, at, undefined), consumers.connect('t', 'race', { subject: null }, at, undefined)]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
    const refused = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected')!;
    assert.equal(refused.reason.code, 'HUB_ERR_CONSUMER_BUSY');
  });

  it('a session replays what the consumer holds after its ack, from its own history', async (t) => {
    const { hub, consumers } = await core(t);
    const start = hub.store.dispatchedThrough();
    (await consumers.connect('t', 'c', { subject: null }, start, undefined)).end();
    const a = await hub.publish({ topics: ['t'], data: 'a' });
    await hub.publish({ topics: ['t'], data: 'b' });
    const info = await consumers.ack('t', 'c', { subject: null }, a.id);
    assert.equal(info.pending, 1);
    const session = await consumers.connect('t', 'c', { subject: null }, hub.store.dispatchedThrough(), a.id);
    assert.deepEqual(session.cursor, { afterSeq: a.seq, gap: false });
    assert.deepEqual((await session.history(session.cursor.afterSeq, 10)).map((m) => m.data), ['b']);
    session.end();
  });

  it('a sweep expires consumers idle past the TTL and keeps the connected ones', async (t) => {
    const { hub, consumers } = await core(t, 1000);
    const now = Date.now();
    (await consumers.connect('t', 'idle', { subject: null }, hub.store.dispatchedThrough(), undefined)).end();
    const open = await consumers.connect('t', 'open', { subject: null }, hub.store.dispatchedThrough(), undefined);
    assert.equal(await consumers.sweep(now + 500), 0, 'not idle long enough');
    assert.equal(await consumers.sweep(now + 5000), 1);
    assert.deepEqual((await consumers.list('t', { subject: null })).map((c) => [c.name, c.connected]), [['open', true]]);
    await assert.rejects(consumers.get('t', 'idle', { subject: null }), { code: 'HUB_ERR_CONSUMER_NOT_FOUND' });
    open.end();
  });
});
