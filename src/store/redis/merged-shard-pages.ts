import type { Message } from '../../hub/message.js';

/** Reads up to `limit` messages of one shard after its seq `afterSeq`, in seq order. */
export type ShardPageReader = (afterSeq: number, limit: number) => Promise<Message[]>;

/**
 * The oldest `limit` messages of several shards, merged by publish time keeping every shard's
 * order: the same page as merging `limit` from each shard, with about `limit` held and read in
 * all instead of `limit` per shard (a `*` replay page over N shards cost N pages of memory and
 * Redis work). Each shard is read in chunks of `limit / shards`; a shard whose chunk runs out
 * is read again before the merge goes on, as its next message may be the oldest. Fewer than
 * `limit` only when every shard is at its end, which is what a pager stops on.
 *
 * `after[i]` is where shard `i` (of `readers`) starts.
 */
export async function readMergedByTime(readers: readonly ShardPageReader[], after: readonly number[], limit: number): Promise<Message[]> {
  if (readers.length === 1) return readers[0]!(after[0]!, limit);
  const chunk = Math.ceil(limit / readers.length);
  const shards = readers.map((read, i) => ({ read, after: after[i]!, page: [] as Message[], head: 0, ended: false }));
  const out: Message[] = [];
  for (;;) {
    // Refill the shards that ran out of what was read, all at once.
    const empty = shards.filter((s) => s.head === s.page.length && !s.ended);
    await Promise.all(
      empty.map(async (s) => {
        s.page = await s.read(s.after, chunk);
        s.head = 0;
        s.ended = s.page.length < chunk;
        const last = s.page.at(-1);
        if (last !== undefined) s.after = last.seq;
      }),
    );
    for (;;) {
      if (out.length >= limit) return out;
      let best: (typeof shards)[number] | undefined;
      let waiting = false;
      for (const s of shards) {
        const candidate = s.page[s.head];
        if (candidate === undefined) {
          waiting ||= !s.ended;
          continue;
        }
        if (best === undefined || candidate.time < best.page[best.head]!.time) best = s;
      }
      // A shard with more to read may hold an older message than every head: read it first.
      if (waiting) break;
      if (best === undefined) return out;
      out.push(best.page[best.head++]!);
    }
  }
}
