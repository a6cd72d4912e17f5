import { isVectorIdForm, MAX_SHARDS, parsePosition } from '../../src/store/position-vector.js';

/** Whether a message came from the hub's history (a replay) or was published while the stream was open. */
export type Arrival = 'replayed' | 'live';

/** Ids a one-shard hub issues: decimal integers that grow with every message it accepts. */
const DECIMAL_ID = /^\d+$/;

/**
 * A hub position read from an event id: a decimal seq (memory, SQLite, one Redis stream) or a
 * sharded hub's position vector (`v1.<shard>:<seq>…`, one seq per shard).
 */
type Position = { readonly kind: 'decimal'; readonly seq: bigint } | { readonly kind: 'vector'; readonly seqs: readonly number[] };

function decimalPosition(id: string): Position | undefined {
  return DECIMAL_ID.test(id) ? { kind: 'decimal', seq: BigInt(id) } : undefined;
}

function vectorPosition(id: string): Position | undefined {
  const seqs = parsePosition(id, MAX_SHARDS);
  return seqs === undefined ? undefined : { kind: 'vector', seqs };
}

/** True when `id` (of the same kind) is past `position` on any shard. */
function isPast(id: Position, position: Position): boolean {
  if (id.kind === 'decimal' && position.kind === 'decimal') return id.seq > position.seq;
  if (id.kind === 'vector' && position.kind === 'vector') return id.seqs.some((seq, shard) => seq > (position.seqs[shard] ?? 0));
  return false;
}

/**
 * Tells replayed history from live messages on one connection. A connection opened without a
 * cursor replays nothing: all it carries is live. One that resumes (`earliest`, a chosen id, or
 * a reconnection with `Last-Event-ID`) first replays; the console then reads the hub's position
 * (its last event id, from `/stats`) and every message up to it is history. The first message
 * with a hub id past it ends the replay, and so do all after it. On a sharded hub
 * (`--redis-shards`) ids are position vectors and "past" means past on some shard; the form of
 * the hub's own position says which kind its ids are, so a one-shard hub's custom id that looks
 * like a vector (`v1.0`) is not read as one. A Mercure publisher's own id says nothing about
 * order: such a message takes the state of the connection (replayed until a live one arrived).
 * Messages published while the position is being read count as replayed; it takes one request,
 * so that is at most a few.
 *
 * Messages that arrive before the position is known wait (their rows are shown at once; only
 * the mark waits), in order.
 */
export class ReplayBoundary {
  private position: Position | undefined;
  private readPosition: (id: string) => Position | undefined = decimalPosition;
  private live: boolean;
  private readonly waiting: { id: string | undefined; mark: (arrival: Arrival) => void }[] = [];

  constructor(resumed: boolean) {
    this.live = !resumed;
  }

  /** Sets the hub's position read after the connection opened; `undefined` when it could not be read (all is then live). */
  settle(lastEventId: string | undefined): void {
    if (lastEventId !== undefined && isVectorIdForm(lastEventId)) this.readPosition = vectorPosition;
    this.position = lastEventId === undefined ? undefined : this.readPosition(lastEventId);
    if (this.position === undefined) this.live = true;
    for (const { id, mark } of this.waiting.splice(0)) mark(this.arrivalOf(id));
  }

  /** Calls `mark` with the message's arrival, now or once the position is known. */
  classify(id: string | undefined, mark: (arrival: Arrival) => void): void {
    if (this.live || this.position !== undefined) mark(this.arrivalOf(id));
    else this.waiting.push({ id, mark });
  }

  private arrivalOf(id: string | undefined): Arrival {
    if (!this.live && this.position !== undefined && id !== undefined) {
      const position = this.readPosition(id);
      if (position !== undefined && isPast(position, this.position)) this.live = true;
    }
    return this.live ? 'live' : 'replayed';
  }
}
