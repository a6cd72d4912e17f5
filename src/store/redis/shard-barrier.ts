import type { Message } from '../../hub/message.js';
import { RingBuffer } from '../ring-buffer.js';
import type { RedisStoreLog } from './connection.js';

/** What the barrier is plugged into (the sharded store). */
export interface ShardBarrierHost {
  /** The shards of a message's topics, once each. */
  shardsOf(message: Message): readonly number[];
  /** True while this node dispatches the shard (followed, registered). */
  isReading(shard: number): boolean;
  /** True while a follow of the shard registers: where it starts is not known yet. */
  isJoining(shard: number): boolean;
  /**
   * Hands copies on to the hub: all of one multi-shard message at once (the node's position is
   * moved past each before any is handed), or one message of one shard.
   */
  hand(copies: readonly ShardCopy[]): void;
  /** {@link hand} for one message, without allocating (the path of every single-shard message). */
  handOne(shard: number, message: Message): void;
  /** The shard's held-back part moved: appends waiting for it may resolve. */
  settle(shard: number): void;
  readonly log: RedisStoreLog;
}

/** A message as one shard's read loop passed it. */
export interface ShardCopy {
  readonly shard: number;
  readonly message: Message;
}

/** How often a held shard's wait is checked against its bound. */
const CHECK_EVERY_MS = 100;

/**
 * Merges the shards' read loops into one order that keeps every topic's order for subscribers
 * of topics on several shards. Copies of a message on several shards carry a ticket, strictly
 * increasing on every shard (the publisher holds every shard's lock while it appends them,
 * sharded-redis-store.ts). A shard whose next copy has ticket `t` and other shards this node
 * reads stops there until each of them has passed `t` (its loop read a copy with a ticket of `t`
 * or more, or it started reading after `t`); the copies of `t` are then handed on together and
 * the stopped shards drain what they queued meanwhile. Tickets being in the same order on every
 * shard, the lowest waiting ticket can always proceed: no deadlock.
 *
 * A copy that never comes (its shard refused the append; the publisher got a 503) would stop a
 * shard forever: after `timeoutMs` it is given up, with a warning, and counted. The bound runs
 * from when the waiting copy reached its shard's head, or from when the shard waited on began
 * to be waited on without delivering anything, whichever is earlier: a shard whose loop
 * delivers nothing (its master unreachable, a follow stuck registering) holds the others once
 * for `timeoutMs`, not that long for each copy, until it delivers again.
 *
 * What a stopped shard reads meanwhile is queued here; its read loop keeps reading, so the queue
 * holds at most `timeoutMs` of that shard's messages.
 */
export class ShardBarrier {
  /** Multi-shard copies given up on after the bound (a copy missing on another shard). */
  timeouts = 0;
  /** What each shard read and did not hand on yet; its head is the copy it is stopped at. */
  private readonly held: RingBuffer<Message>[];
  /** When each shard's current head started waiting. */
  private readonly since: number[];
  /** Highest ticket each shard has passed (read, or started reading after). */
  private readonly passed: number[];
  /**
   * Since when each shard has been waited on without its loop delivering anything (undefined:
   * it delivered since, or nobody waited on it).
   */
  private readonly stalledSince: (number | undefined)[];
  /** The stall of each shard was warned of. */
  private readonly stallWarned: boolean[];
  private timer: NodeJS.Timeout | undefined;
  private releasing = false;

  constructor(
    shardCount: number,
    private readonly host: ShardBarrierHost,
    private readonly timeoutMs: number,
  ) {
    this.held = Array.from({ length: shardCount }, () => new RingBuffer<Message>(16));
    this.since = new Array<number>(shardCount).fill(0);
    this.passed = new Array<number>(shardCount).fill(0);
    this.stalledSince = new Array<number | undefined>(shardCount).fill(undefined);
    this.stallWarned = new Array<boolean>(shardCount).fill(false);
  }

  /** A message the shard's read loop passed, in its order. */
  offer(shard: number, message: Message): void {
    const ticket = message.ticket;
    if (ticket !== undefined && ticket > this.passed[shard]!) this.passed[shard] = ticket;
    this.delivered(shard);
    const queue = this.held[shard]!;
    if (queue.length === 0 && !this.mustWait(shard, message)) {
      this.host.handOne(shard, message);
      // Reading a ticket may be what another shard waits for.
      if (ticket !== undefined && this.anyHeld()) this.release();
      return;
    }
    if (queue.length === 0) this.since[shard] = Date.now();
    queue.push(message);
    this.release();
  }

  /** The shard started being read, from a position whose last ticket is `ticket`. */
  started(shard: number, ticket: number): void {
    this.passed[shard] = ticket;
    this.delivered(shard);
    this.release();
  }

  /**
   * The shard is no longer read: what it held was for nobody here (the caller settles its
   * appends), and shards waiting for it may go on.
   */
  stopped(shard: number): void {
    const queue = this.held[shard]!;
    while (queue.length > 0) queue.shift();
    this.delivered(shard);
    this.release();
  }

  /** Something the waits depend on changed (a follow registered or failed). */
  changed(): void {
    if (this.anyHeld()) this.release();
  }

  /** The highest seq of the shard handed on, as far as the barrier knows (Infinity: nothing held). */
  handedThrough(shard: number): number {
    const head = this.held[shard]!.peek();
    return head === undefined ? Infinity : head.seq - 1;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The shard's loop moved: waits on it are bounded afresh. */
  private delivered(shard: number): void {
    if (this.stalledSince[shard] === undefined) return;
    this.stalledSince[shard] = undefined;
    this.stallWarned[shard] = false;
  }

  /** True when `message`, at the head of `shard`, waits for other shards to pass its ticket. */
  private mustWait(shard: number, message: Message): boolean {
    if (message.ticket === undefined) return false;
    for (const other of this.host.shardsOf(message)) {
      if (other !== shard && (this.host.isReading(other) || this.host.isJoining(other))) return true;
    }
    return false;
  }

  /**
   * The copies of the head of `shard` to hand on now, or undefined while it must wait: every
   * other shard this node reads either holds the copy of the same ticket at its head, or has
   * passed the ticket without it (started after it, or its copy never came).
   */
  private group(shard: number, head: Message, now: number): ShardCopy[] | undefined {
    const ticket = head.ticket!;
    const copies: ShardCopy[] = [{ shard, message: head }];
    let waiting = false;
    const givenUp: number[] = [];
    for (const other of this.host.shardsOf(head)) {
      if (other === shard) continue;
      const wait = this.waitFor(other, head, copies);
      if (wait === undefined) continue;
      if (this.withinBound(shard, wait === 'silent' ? other : undefined, now)) waiting = true;
      else givenUp.push(other);
    }
    if (waiting) return undefined;
    if (givenUp.length === 0) return copies;
    this.timeouts++;
    for (const other of givenUp) {
      if (this.stallWarned[other]) continue;
      this.stallWarned[other] = true;
      this.host.log('warn', `A message on several shards (ticket ${ticket}) waited ${this.timeoutMs} ms on shard ${shard} for its copy on shard ${other}, which never came (that shard refused the append and its publisher got a 503, or its loop delivers nothing): delivering it without, and the next ones at once until shard ${other} delivers again`);
    }
    return copies;
  }

  /**
   * Whether `head` (multi-shard) must wait for `other`: undefined when not (it is not read, has
   * passed the ticket, or holds its copy at its head, then added to `copies`); `held` when it
   * holds messages to give first (it delivers, and they wait on their own bound); `silent` when
   * it is registering or has given everything and not yet reached the ticket.
   */
  private waitFor(other: number, head: Message, copies: ShardCopy[]): 'held' | 'silent' | undefined {
    if (this.host.isJoining(other)) return 'silent';
    if (!this.host.isReading(other)) return undefined;
    const theirs = this.held[other]!.peek();
    if (theirs === undefined) return this.passed[other]! < head.ticket! ? 'silent' : undefined;
    if (theirs.ticket === head.ticket && theirs.writer === head.writer) {
      copies.push({ shard: other, message: theirs });
      return undefined;
    }
    // Before their copy of the ticket (or before the place it would have).
    return theirs.ticket === undefined || theirs.ticket < head.ticket! ? 'held' : undefined;
  }

  /**
   * True while the head of `shard` is within its bound: from when it reached the head, or from
   * when the `silent` shard it waits on was first waited on without delivering since.
   */
  private withinBound(shard: number, silent: number | undefined, now: number): boolean {
    let since = this.since[shard]!;
    if (silent !== undefined) since = Math.min(since, (this.stalledSince[silent] ??= now));
    return now - since < this.timeoutMs;
  }

  /** Hands on everything that can go, until nothing moves. */
  private release(): void {
    if (this.releasing) return;
    this.releasing = true;
    const moved = new Set<number>();
    try {
      const now = Date.now();
      for (let progress = true; progress; ) {
        progress = false;
        for (let shard = 0; shard < this.held.length; shard++) {
          const queue = this.held[shard]!;
          const head = queue.peek();
          if (head === undefined) continue;
          const copies = this.mustWait(shard, head) ? this.group(shard, head, now) : [{ shard, message: head }];
          if (copies === undefined) continue;
          for (const copy of copies) {
            this.held[copy.shard]!.shift();
            this.since[copy.shard] = now;
            moved.add(copy.shard);
          }
          this.host.hand(copies);
          progress = true;
        }
      }
    } finally {
      this.releasing = false;
    }
    for (const shard of moved) this.host.settle(shard);
    if (this.anyHeld()) {
      this.timer ??= setInterval(() => this.release(), CHECK_EVERY_MS);
      this.timer.unref();
    } else this.close();
  }

  private anyHeld(): boolean {
    return this.held.some((queue) => queue.length > 0);
  }
}
