import type { Message } from '../../hub/message.js';

/** One page of a shard's history, and what its shard said just before it was read. */
export interface ShardPage {
  readonly messages: readonly Message[];
  /** The shard's last multi-shard ticket, read before the page. */
  readonly ticket: number;
  /** The lock token holding the shard then ('' when free). */
  readonly holder: string;
}

/** Where the merge reads one shard's history. */
export interface ShardHistory {
  readonly shard: number;
  /** Where the merge starts on this shard: after this seq. */
  readonly afterSeq: number;
  /** The next page after `afterSeq`: at most the merge's `chunk` messages. */
  read(afterSeq: number): Promise<ShardPage>;
}

/** How long to wait between two reads of a shard whose copy of a message is being written. */
const REREAD_MS = 5;

/**
 * The oldest `limit` copies of several shards' histories, in an order that keeps every shard's
 * order and puts the copies of a message on several shards (same ticket) together, after what
 * precedes any of them on its shard: the order live dispatch gives (shard-barrier.ts), so that
 * a subscriber's per-topic order holds across replay and live.
 *
 * Single-shard messages come by publisher time. A copy with ticket `t` comes only once every
 * other shard of its `relevant` topics has reached its own copy of `t` or passed where it would
 * be. A shard whose page ran out is read further; a shard at its end that has not seen `t`
 * (ticket read before its page) while the publisher of `t` still holds its lock is read again
 * (its copy is being written, and a message published there before it would otherwise come
 * live after it), for at most `waitMs` from when that copy was first found being written. A
 * shard at its end whose lock is no longer the publisher's will not get its copy (it refused
 * the append): it does not hold the merge. That lock state only tells so when it was read
 * after the page holding `t` came back (reads of shards run in parallel, and one read before
 * `t`'s lock was taken says nothing of it): a shard whose last read is older is read again first.
 *
 * Each shard is read `chunk` messages at a time (`limit / shards`, so a `*` page over N shards
 * holds and reads about one page in all, not N), and a shard whose chunk ran out is read again
 * before the merge goes on, as its next message may be the oldest.
 */
export async function mergeShardHistories(
  histories: readonly ShardHistory[],
  limit: number,
  chunk: number,
  relevantShards: (message: Message) => readonly number[],
  waitMs: number,
): Promise<Message[]> {
  const clock = new ReadClock();
  const cursors = await Promise.all(histories.map((history) => Cursor.open(history, chunk, clock)));
  const byShard = new Map(cursors.map((cursor) => [cursor.shard, cursor]));
  const out: Message[] = [];
  // When each copy (writer and ticket) was first found being written on a shard at its end.
  const writingSince = new Map<string, number>();
  while (out.length < limit) {
    const ranOut = cursors.filter((cursor) => cursor.head === undefined && cursor.full);
    if (ranOut.length > 0) {
      await Promise.all(ranOut.map((cursor) => cursor.readMore()));
      continue;
    }
    let best: { cursor: Cursor; copies: Cursor[] } | undefined;
    let refill: Cursor | undefined;
    let reread: Cursor | undefined;
    let stale: Cursor | undefined;
    for (const cursor of cursors) {
      const head = cursor.head;
      if (head === undefined) continue;
      if (best !== undefined && head.time >= best.cursor.head!.time) continue;
      const copies = [cursor];
      let blocked = false;
      if (head.ticket !== undefined) {
        for (const shard of relevantShards(head)) {
          const other = byShard.get(shard);
          if (other === undefined || other === cursor) continue;
          const state = other.stateOf(head, cursor.headArrival);
          if (state === 'here') copies.push(other);
          else if (state === 'passed') continue;
          // Its publisher still holds the lock after the bound: it will fail; do not hold replay.
          else if (state === 'writing' && writingFor(writingSince, head) >= waitMs) continue;
          else {
            blocked = true;
            if (state === 'more') refill ??= other;
            if (state === 'stale') stale ??= other;
            if (state === 'writing') reread ??= other;
          }
        }
      }
      if (!blocked) best = { cursor, copies };
    }
    if (best !== undefined) {
      // A page may end between a message's copies: the next one finds the rest at their shards'
      // heads, and the shards already given past their ticket.
      for (const copy of best.copies) if (out.length < limit) out.push(copy.take());
      continue;
    }
    if (refill !== undefined) {
      await refill.readMore();
      continue;
    }
    if (stale !== undefined) {
      await stale.readMore();
      continue;
    }
    if (reread !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, REREAD_MS));
      await reread.readMore();
      continue;
    }
    break;
  }
  return out;
}

/** How long the copy of `message` has been found being written (0 the first time). */
function writingFor(writingSince: Map<string, number>, message: Message): number {
  const key = `${message.ticket!} ${message.writer ?? ''}`;
  const now = Date.now();
  const since = writingSince.get(key);
  if (since === undefined) writingSince.set(key, now);
  return since === undefined ? 0 : now - since;
}

/** Orders the merge's reads: each is stamped when issued and when its page came back. */
class ReadClock {
  private ticks = 0;
  tick(): number {
    return ++this.ticks;
  }
}

/** One shard's read position in the merge. */
class Cursor {
  private messages: Message[];
  /** When the page holding each message came back (a {@link ReadClock} stamp). */
  private arrivals: number[];
  private index = 0;
  /** The last page was full: there may be more after it. */
  full: boolean;
  private ticket: number;
  private holder: string;
  /** The seq the next read starts after (the last one read). */
  private last: number;

  static async open(history: ShardHistory, limit: number, clock: ReadClock): Promise<Cursor> {
    const issued = clock.tick();
    const page = await history.read(history.afterSeq);
    return new Cursor(history, limit, clock, page, issued, clock.tick());
  }

  private constructor(
    private readonly history: ShardHistory,
    private readonly limit: number,
    private readonly clock: ReadClock,
    page: ShardPage,
    /** When the last read was issued: its lock state is from then. */
    private issued: number,
    arrived: number,
  ) {
    this.messages = [...page.messages];
    this.arrivals = page.messages.map(() => arrived);
    this.full = page.messages.length >= limit;
    this.ticket = page.ticket;
    this.holder = page.holder;
    this.last = page.messages.at(-1)?.seq ?? history.afterSeq;
  }

  get shard(): number {
    return this.history.shard;
  }

  get head(): Message | undefined {
    return this.messages[this.index];
  }

  /** When the page holding the head came back. */
  get headArrival(): number {
    return this.arrivals[this.index]!;
  }

  take(): Message {
    return this.messages[this.index++]!;
  }

  /**
   * Where this shard stands towards the copy of `message` (a multi-shard one): `here` at its
   * head, `passed` (nothing of this shard must come before it), or it must wait: `before` (this
   * shard has messages to give first), `more` (a page ran out first), `stale` (at the end, its
   * lock state read before `arrived`, when the page holding `message` came back: it may predate
   * the lock of `message`), `writing` (at the end, the copy being written).
   */
  stateOf(message: Message, arrived: number): 'here' | 'passed' | 'before' | 'more' | 'stale' | 'writing' {
    const ticket = message.ticket!;
    for (let i = this.index; i < this.messages.length; i++) {
      const candidate = this.messages[i]!;
      if (candidate.ticket === undefined) continue;
      if (candidate.ticket === ticket && candidate.writer === message.writer) return i === this.index ? 'here' : 'before';
      if (candidate.ticket > ticket) return 'passed';
      if (candidate.ticket < ticket) return 'before';
    }
    if (this.full) return 'more';
    // At its end: the copy was stored before the page was read (so it lies at or before where
    // this reader stands: passed), or it will never be (the lock is no longer its publisher's,
    // as read once the publisher had stored another copy, so had taken every lock).
    if (this.ticket >= ticket) return 'passed';
    if (this.issued < arrived) return 'stale';
    if (this.holder !== message.writer) return 'passed';
    return 'writing';
  }

  /** Reads the next page after what was read, behind what is left. */
  async readMore(): Promise<void> {
    const issued = this.clock.tick();
    const page = await this.history.read(this.last);
    const arrived = this.clock.tick();
    this.messages = [...this.messages.slice(this.index), ...page.messages];
    this.arrivals = [...this.arrivals.slice(this.index), ...page.messages.map(() => arrived)];
    this.issued = issued;
    this.index = 0;
    this.full = page.messages.length >= this.limit;
    this.ticket = page.ticket;
    this.holder = page.holder;
    if (page.messages.length > 0) this.last = page.messages.at(-1)!.seq;
  }
}
