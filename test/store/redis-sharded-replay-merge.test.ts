import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { Message } from '../../src/hub/message.js';
import { mergeShardHistories, type ShardHistory, type ShardPage } from '../../src/store/redis/replay-merge.js';

// The merge over shard histories scripted as Redis answers them in a given interleaving: the
// order of reads is what matters here, and a script states it exactly.

function message(shard: number, seq: number, data: string, time: number, ticket?: { ticket: number; writer: string }): Message {
  return { seq, id: String(seq), shard, topics: ['x', 'y'], data, time, ...ticket };
}

const named = (messages: readonly Message[]): string[] => messages.map((m) => `${m.data}@${m.shard}`);

describe('sharded Redis store: the replay merge across shards (issue 14 review)', () => {
  it('does not call a shard at its end past a message from lock state it read before that message was stored', async () => {
    // x on shard 0, y on shard 1. Both reads are issued together; shard 1 answers from before
    // publisher P locked it (empty, lock free); then y-new is stored on shard 1, P locks both
    // shards and stores M on shard 0, which shard 0's read sees; then M on shard 1.
    const m = { ticket: 1, writer: 'P' };
    let shard1Reads = 0;
    const histories: ShardHistory[] = [
      { shard: 0, afterSeq: 0, read: async (after) => ({ ticket: 1, holder: '', messages: after < 1 ? [message(0, 1, 'M', 10, m)] : [] }) },
      {
        shard: 1,
        afterSeq: 0,
        read: async (after): Promise<ShardPage> => {
          if (shard1Reads++ === 0) return { ticket: 0, holder: '', messages: [] };
          return { ticket: 1, holder: '', messages: [message(1, 1, 'y-new', 9), message(1, 2, 'M', 10, m)].filter((c) => c.seq > after) };
        },
      },
    ];
    const page = await mergeShardHistories(histories, 10, 5, () => [0, 1], 4000);
    // Shard 1's order is y-new, M: a page of M alone would end replay and bring y-new live after M.
    assert.deepEqual(named(page), ['y-new@1', 'M@0', 'M@1']);
  });

  it('bounds the wait for a copy being written from when it was found so, not from the start of the merge', async () => {
    // Shard 0 is slow: reading up to M takes longer than the bound. M's copy on shard 1 is
    // being written when the merge reaches it (its publisher holds the lock), and stored soon.
    const waitMs = 30;
    const m = { ticket: 1, writer: 'P' };
    const shard0 = [message(0, 1, 'a1', 1), message(0, 2, 'a2', 2), message(0, 3, 'M', 10, m)];
    let shard1Reads = 0;
    const histories: ShardHistory[] = [
      {
        shard: 0,
        afterSeq: 0,
        read: async (after) => {
          await sleep(waitMs);
          return { ticket: 1, holder: '', messages: shard0.filter((c) => c.seq > after).slice(0, 1) };
        },
      },
      {
        shard: 1,
        afterSeq: 0,
        read: async (after): Promise<ShardPage> => {
          // Read once at the start, once when M arrived (lock held by P), once after: stored.
          if (++shard1Reads < 3) return { ticket: 0, holder: 'P', messages: [] };
          return { ticket: 1, holder: '', messages: [message(1, 1, 'M', 10, m)].filter((c) => c.seq > after) };
        },
      },
    ];
    const page = await mergeShardHistories(histories, 10, 1, () => [0, 1], waitMs);
    assert.deepEqual(named(page), ['a1@0', 'a2@0', 'M@0', 'M@1']);
  });
});
