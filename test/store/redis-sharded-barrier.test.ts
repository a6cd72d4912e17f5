import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from '../../src/hub/message.js';
import { ShardBarrier } from '../../src/store/redis/shard-barrier.js';

// The barrier fed as two read loops would: shard 0 delivers, shard 1 (read, followed) delivers
// nothing, as when its master is unreachable or its follow is stuck registering.

let seq = 0;
const multi = (ticket: number): Message => ({ seq: ++seq, id: String(seq), topics: ['a', 'b'], data: `multi${ticket}`, time: 0, ticket, writer: 'w' });
const single = (data: string): Message => ({ seq: ++seq, id: String(seq), topics: ['a'], data, time: 0 });

describe('sharded Redis store: the live barrier across shards (issue 14 review)', () => {
  it('a shard that delivers nothing holds the others once for the bound, not for each message on both', async (t) => {
    const handed: string[] = [];
    let firstHanded!: () => void;
    const first = new Promise<void>((resolve) => (firstHanded = resolve));
    const warnings: string[] = [];
    const barrier = new ShardBarrier(
      2,
      {
        shardsOf: (m) => (m.ticket === undefined ? [0] : [0, 1]),
        isReading: () => true,
        isJoining: () => false,
        hand: (copies) => {
          for (const copy of copies) handed.push(copy.message.data);
          firstHanded();
        },
        handOne: (_shard, m) => void handed.push(m.data),
        settle: () => {},
        log: (level, message) => void (level === 'warn' && warnings.push(message)),
      },
      100,
    );
    t.after(() => barrier.close());
    // The barrier's check timer does not hold the process open; the test must, until it fires.
    const alive = setInterval(() => {}, 1000);
    t.after(() => clearInterval(alive));
    for (let ticket = 1; ticket <= 5; ticket++) barrier.offer(0, multi(ticket));
    for (const data of ['s1', 's2', 's3']) barrier.offer(0, single(data));
    assert.deepEqual(handed, [], 'held for shard 1 at first');

    await first;
    // Once the first waited its bound, shard 1 still silent, the rest do not wait again.
    assert.deepEqual(handed, ['multi1', 'multi2', 'multi3', 'multi4', 'multi5', 's1', 's2', 's3']);
    assert.equal(barrier.timeouts, 5);
    assert.equal(warnings.length, 1, warnings.join('\n'));

    // Shard 1 delivers again: a new message on both waits for it as it should.
    barrier.offer(1, single('b1'));
    barrier.offer(0, multi(6));
    assert.deepEqual(handed.slice(8), ['b1'], 'multi6 waits for shard 1 to pass ticket 6');
    barrier.offer(1, { ...multi(6), seq: ++seq });
    assert.deepEqual(handed.slice(8), ['b1', 'multi6', 'multi6'], 'its two copies together');
  });
});
