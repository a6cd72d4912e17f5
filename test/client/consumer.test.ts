import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { publish, RelayClientError, subscribe, type RelayEvent } from '../../src/client/index.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually } from '../helpers/sse-client.js';

async function consumerInfo(hub: TestHub, topic: string, name: string): Promise<{ ackedId: string; pending: number; connected: boolean }> {
  const res = await fetch(`${hub.url}/messages/${topic}/consumers/${name}`);
  assert.equal(res.status, 200);
  return (await res.json()) as { ackedId: string; pending: number; connected: boolean };
}

describe('client SDK: acknowledged consumers', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('autoAck acknowledges what the loop took, in one batch, and not the event a break left', async () => {
    const url = hub.url;
    const ids: string[] = [];
    const subscription = subscribe({
      url,
      id: 'sdk-auto',
      consumer: 'loop',
      autoAck: { delayMs: 50 },
      onOpen: ({ reconnect }) => {
        if (reconnect) return;
        void (async () => {
          for (const message of ['a', 'b', 'c']) ids.push((await publish({ url, id: 'sdk-auto', message })).id);
        })();
      },
    });
    const seen: string[] = [];
    for await (const event of subscription) {
      seen.push(event.data);
      if (seen.length === 3) break;
    }
    assert.deepEqual(seen, ['a', 'b', 'c']);
    await eventually(async () => {
      const info = await consumerInfo(hub, 'sdk-auto', 'loop');
      return info.ackedId === ids[1] && !info.connected;
    }, 5000, 'b acknowledged, c not');

    // The next subscription of the consumer gets c again (at-least-once), and acks it.
    const again = subscribe({ url, id: 'sdk-auto', consumer: 'loop', autoAck: { delayMs: 10 } });
    const iterator = again[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as RelayEvent;
    assert.equal(first.data, 'c');
    assert.equal(first.id, ids[2]);
    const pendingNext = iterator.next(); // asking for the next one: c is taken
    await eventually(async () => (await consumerInfo(hub, 'sdk-auto', 'loop')).ackedId === ids[2], 5000, 'c acknowledged');
    again.close();
    assert.deepEqual(await pendingNext, { done: true, value: undefined });
  });

  it('an explicit ack of an earlier event does not cancel the automatic ack of a later one', async () => {
    const url = hub.url;
    const received: RelayEvent[] = [];
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const subscription = subscribe({ url, id: 'sdk-mixed', consumer: 'mixed', autoAck: { delayMs: 2000 }, onOpen: () => opened(), onMessage: (event) => received.push(event) });
    try {
      await open;
      for (const message of ['a', 'b', 'c']) await publish({ url, id: 'sdk-mixed', message });
      await eventually(() => received.length === 3, 5000, 'three events');
      // c's automatic ack is waiting (2 s) when the code acknowledges a by hand.
      await subscription.ack(received[0]!.id);
      assert.equal((await consumerInfo(hub, 'sdk-mixed', 'mixed')).ackedId, received[2]!.id, 'the ack sent covers c, the latest handled');
    } finally {
      subscription.close();
    }
  });

  it('ack(id) resolves once the hub committed it, and rejects with the hub\'s code', async () => {
    const url = hub.url;
    const received: RelayEvent[] = [];
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const subscription = subscribe({ url, id: 'sdk-manual', consumer: 'manual', onOpen: () => opened(), onMessage: (event) => received.push(event) });
    await open;
    const a = (await publish({ url, id: 'sdk-manual', message: 'a' })).id;
    await publish({ url, id: 'sdk-manual', message: 'b' });
    await eventually(() => received.length === 2, 5000, 'two events');
    await subscription.ack(a);
    assert.equal((await consumerInfo(hub, 'sdk-manual', 'manual')).ackedId, a);
    await subscription.ack();
    assert.equal((await consumerInfo(hub, 'sdk-manual', 'manual')).ackedId, received[1]!.id, 'ack() takes the last event');
    await assert.rejects(subscription.ack('not-delivered'), (error: unknown) => error instanceof RelayClientError && error.code === 'HUB_ERR_ACK_INVALID');
    subscription.close();

    const plain = subscribe({ url, id: 'sdk-manual' });
    await assert.rejects(plain.ack('1'), { code: 'CLIENT_ERR_INVALID_OPTIONS' });
    plain.close();
    assert.throws(() => subscribe({ url, id: 'x', consumer: 'no spaces' }), { code: 'CLIENT_ERR_INVALID_OPTIONS' });
  });
});
