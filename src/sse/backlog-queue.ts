import { chunkOf, encodeEvent } from './encode.js';

/** Told about what the `skip` and `latest` policies dropped (metrics). One object for all streams. */
export interface SlowConsumerObserver {
  /** `count` queued messages were dropped to stay under a subscriber's backlog limit. */
  skipped(count: number): void;
  /** A queued message was replaced by a newer one with the same key (`latest`). */
  conflated(count: number): void;
  /** The backlog held for one subscriber (queued plus unsent in its socket) is `bytes` now. */
  backlog(bytes: number): void;
}

/** One frame waiting; `frame` undefined once a newer message with its key replaced it. */
interface Entry {
  frame: Buffer | undefined;
  /** The message's event id; undefined for frames that are not messages (preamble, heartbeat). */
  readonly id: string | undefined;
  readonly key: string | undefined;
}

/**
 * The frames of one subscriber that uses the `skip` or `latest` slow-consumer policy and are
 * not yet handed to its socket. The stream writes them only while the socket takes more (not
 * while it waits for `drain`), so what is here can still be dropped.
 *
 * Bounded: {@link admit} drops the oldest frames until the queued bytes, the pending gap
 * notice and what the socket holds fit `maxBytes` (one frame always fits when nothing else
 * waits, as in the `disconnect` policy). With keys (`latest`), a newer message replaces the
 * queued one of the same key: it is removed from its place and the newer one goes at the end,
 * so ids stay in order. Removed entries stay as holes until they reach the head; the array is
 * compacted when holes (and the dropped head) outnumber the frames, so its length stays within twice the frames held.
 */
export class BacklogQueue {
  private entries: Entry[] = [];
  private head = 0;
  /** Frames held (entries that are not holes). */
  private live = 0;
  /** Bytes of the frames held. */
  bytes = 0;
  /** Keys of the messages held (`latest` only). */
  private readonly byKey: Map<string, Entry> | undefined;
  private gapFirst: string | undefined;
  private gapLast: string | undefined;
  private gapCount = 0;
  /** Size of the gap notice to send before the next frame (0: none pending). */
  gapBytes = 0;

  constructor(
    private readonly maxBytes: number,
    conflate: boolean,
    /** True when frames go out as HTTP/1.1 chunks (the gap notice must be one too). */
    private readonly chunked: () => boolean,
    private readonly observer: SlowConsumerObserver | undefined,
  ) {
    if (conflate) this.byKey = new Map();
  }

  /** True when nothing is held and no gap notice is pending. */
  get empty(): boolean {
    return this.live === 0 && this.gapCount === 0;
  }

  /**
   * Queues a frame, then drops the oldest ones (this one included) until the backlog fits.
   * `socketBytes` is what the socket still holds for this subscriber.
   */
  admit(frame: Buffer, id: string | undefined, key: string | undefined, socketBytes: number): void {
    const entry: Entry = { frame, id, key };
    if (key !== undefined && this.byKey) {
      const older = this.byKey.get(key);
      if (older?.frame) {
        this.bytes -= older.frame.length;
        older.frame = undefined;
        this.live--;
        this.observer?.conflated(1);
      }
      this.byKey.set(key, entry);
    }
    this.entries.push(entry);
    this.live++;
    this.bytes += frame.length;
    let skipped = 0;
    while (this.bytes + this.gapBytes + socketBytes > this.maxBytes && (this.live > 1 || socketBytes > 0)) {
      if (this.dropOldest()) skipped++;
    }
    if (skipped > 0) this.observer?.skipped(skipped);
    if (this.entries.length - this.live > this.live && this.entries.length > 64) this.compact();
    this.observer?.backlog(this.bytes + this.gapBytes + socketBytes);
  }

  /** Everything held, the gap notice first, in one buffer; the queue is then empty. */
  take(): Buffer | undefined {
    const parts: Buffer[] = [];
    let total = 0;
    if (this.gapCount > 0) {
      const notice = this.gapNotice();
      parts.push(notice);
      total += notice.length;
    }
    for (let i = this.head; i < this.entries.length; i++) {
      const frame = this.entries[i]!.frame;
      if (frame === undefined) continue;
      parts.push(frame);
      total += frame.length;
    }
    this.clear();
    if (parts.length === 0) return undefined;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this.live = 0;
    this.bytes = 0;
    this.byKey?.clear();
    this.gapFirst = this.gapLast = undefined;
    this.gapCount = 0;
    this.gapBytes = 0;
  }

  /** Drops the oldest frame; true when it was a message (it then joins the gap). */
  private dropOldest(): boolean {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!;
      this.entries[this.head++] = HOLE;
      if (entry.frame === undefined) continue;
      this.bytes -= entry.frame.length;
      entry.frame = undefined;
      this.live--;
      if (entry.key !== undefined && this.byKey?.get(entry.key) === entry) this.byKey.delete(entry.key);
      if (entry.id === undefined) return false;
      this.gapFirst ??= entry.id;
      this.gapLast = entry.id;
      this.gapCount++;
      this.gapBytes = this.gapNotice().length;
      return true;
    }
    return false;
  }

  /**
   * The in-stream notice of what was skipped: an event of type `gap` without an `id:` (the
   * client's cursor stays on the last message it received, from which it can replay them).
   */
  private gapNotice(): Buffer {
    const data = JSON.stringify({ reason: 'slow-consumer', firstId: this.gapFirst, lastId: this.gapLast, count: this.gapCount });
    const frame = Buffer.from(encodeEvent({ event: 'gap', data }));
    return this.chunked() ? chunkOf(frame) : frame;
  }

  private compact(): void {
    const kept: Entry[] = [];
    for (let i = this.head; i < this.entries.length; i++) if (this.entries[i]!.frame !== undefined) kept.push(this.entries[i]!);
    this.entries = kept;
    this.head = 0;
  }
}

const HOLE: Entry = Object.freeze({ frame: undefined, id: undefined, key: undefined }) as Entry;
