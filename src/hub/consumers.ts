import type { ConsumerState, LostRange } from '../store/consumer-log.js';
import type { Cursor } from '../store/store.js';
import { RelayError } from './errors.js';
import type { HistoryReader, Hub } from './hub.js';

/** Options of acknowledged consumers. */
export interface ConsumerOptions {
  /** A consumer with no connection and no acknowledgement for this long is deleted (ms; 0: never). */
  readonly ttlMs: number;
}

/** Consumer names: 1–64 characters of `A–Z a–z 0–9 . _ ~ -` (safe in a URL path unencoded). */
const CONSUMER_NAME = /^[A-Za-z0-9._~-]{1,64}$/;
/** Longest event id an acknowledgement may name (as for `Last-Event-ID`). */
const MAX_ACK_ID_LENGTH = 1024;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Who acts on a consumer: the token's subject, or null on a hub without subscriber keys, where
 * consumers belong to nobody and anyone may use them.
 */
export interface ConsumerCaller {
  readonly subject: string | null;
}

/** A consumer as the API shows it. */
export interface ConsumerInfo {
  readonly name: string;
  /** Every message up to this event id is acknowledged (`earliest`: none yet). */
  readonly ackedId: string;
  /** Messages held for it, unacknowledged. */
  readonly pending: number;
  /** True while a stream of this hub process is open for it. */
  readonly connected: boolean;
  /** Its last connection, disconnection or acknowledgement (ISO 8601). */
  readonly lastSeen: string;
  /** Released unacknowledged past `--consumer-max-pending` since its last acknowledgement. */
  readonly lost: LostRange | null;
}

/** Hooks for metrics; the default does nothing. */
export interface ConsumerObserver {
  /** An acknowledgement moved a consumer forward. */
  acknowledged(): void;
}

/** One open stream of a consumer, from {@link Consumers.connect}. */
export interface ConsumerSession {
  /** Where its replay starts: after its last acknowledged message. */
  readonly cursor: Cursor;
  /** What it lost to `--consumer-max-pending` and has not acknowledged past yet. */
  readonly lost: LostRange | null;
  /** Reads what it holds (its replay), instead of the topic's retained history. */
  readonly history: HistoryReader;
  /** Marks it disconnected; idempotent. */
  end(): void;
  /**
   * Sets what ends this session's stream when a newer stream of the consumer takes over
   * (`takeover`); called at once when that already happened while the stream was opening.
   */
  onSuperseded(end: () => void): void;
}

/** How a stream of a consumer that is already connected in this process is treated. */
export type ConsumerConflict = 'refuse' | 'take-over';

/**
 * Named, acknowledged (at-least-once) consumers of a topic, over the store's ConsumerLog:
 * names, ownership, one stream per consumer at a time (per hub process), acknowledgements and
 * the expiry of idle consumers. Protocol-free: the `/messages` adapter maps it to HTTP.
 */
export class Consumers {
  /**
   * `topic \n name` of consumers with a stream open in this process (topics have no LF), each
   * with what ends that stream when another takes over.
   */
  private readonly connected = new Map<string, { supersede(): void }>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private observer: ConsumerObserver = { acknowledged() {} };

  constructor(
    private readonly hub: Hub,
    private readonly options: ConsumerOptions,
  ) {}

  /** Sets the one observer (metrics). */
  observe(observer: ConsumerObserver): void {
    this.observer = observer;
  }

  /** Consumers with a stream open in this process. */
  get connectedCount(): number {
    return this.connected.size;
  }

  private get log() {
    return this.hub.store.consumers;
  }

  /**
   * Starts expiring idle consumers: a sweep every quarter of the TTL (between 100 ms and a
   * minute) first marks the connected ones seen, so a long-lived stream never expires.
   */
  start(): void {
    if (this.options.ttlMs <= 0 || this.sweepTimer) return;
    const every = Math.min(60_000, Math.max(100, Math.floor(this.options.ttlMs / 4)));
    this.sweepTimer = setInterval(() => void this.sweep().catch(() => {}), every);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  /** Deletes consumers idle for longer than the TTL; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    if (this.connected.size > 0) {
      await this.log.touch([...this.connected.keys()].map(splitKey), now);
    }
    return this.log.expire(now - this.options.ttlMs);
  }

  /**
   * Opens a stream of consumer `name` of `topic`, creating the consumer when missing: it then
   * starts after `lastEventId` when given, else at `registeredAfterSeq` (the position of the
   * subscription just registered: the current end). Throws HUB_ERR_CONSUMER_INVALID,
   * HUB_ERR_CONSUMER_FORBIDDEN (another subject's) or, when a stream of it is open in this
   * process, HUB_ERR_CONSUMER_BUSY; with `take-over` that stream is ended instead (its owner,
   * reconnecting after a connection that died without a FIN, needs no wait for the hub to notice).
   * Safe for at-least-once delivery: the new stream replays from the last acknowledgement.
   */
  async connect(topic: string, name: string, caller: ConsumerCaller, registeredAfterSeq: number, lastEventId: string | undefined, conflict: ConsumerConflict = 'refuse'): Promise<ConsumerSession> {
    assertValidConsumerName(name);
    const key = `${topic}\n${name}`;
    // Ownership first: another subject learns nothing, not even that the consumer is connected.
    const existing = await this.log.get(topic, name);
    if (existing) assertOwner(existing, caller);
    const open = this.connected.get(key);
    if (open !== undefined) {
      if (conflict === 'refuse') throw new RelayError('HUB_ERR_CONSUMER_BUSY', `Consumer "${name}" is already connected; close its other stream first, or reconnect with ?takeover=1`);
      open.supersede();
    }
    // Checked and taken in one turn: two streams opening at once cannot both pass.
    let endStream: (() => void) | undefined;
    let superseded = false;
    const entry = {
      supersede: () => {
        superseded = true;
        if (this.connected.get(key) === entry) this.connected.delete(key);
        endStream?.();
      },
    };
    this.connected.set(key, entry);
    try {
      let afterSeq = registeredAfterSeq;
      let gap = false;
      if (!existing && lastEventId !== undefined) {
        const cursor = await this.hub.resolveCursor(lastEventId, [topic]);
        if (cursor) ({ afterSeq, gap } = cursor);
      }
      const state = await this.log.attach(topic, name, { owner: caller.subject, afterSeq }, Date.now());
      assertOwner(state, caller);
      let ended = false;
      return {
        cursor: { afterSeq: state.ackedSeq, gap },
        lost: state.lost,
        history: (after, limit) => this.log.readPending(topic, after, limit),
        end: () => {
          if (ended) return;
          ended = true;
          if (this.connected.get(key) === entry) this.connected.delete(key);
          // Best effort: the TTL then counts from the disconnection, not the connection.
          void this.log.touch([{ topic, name }], Date.now()).catch(() => {});
        },
        onSuperseded: (end) => {
          endStream = end;
          if (superseded) end();
        },
      };
    } catch (error) {
      if (this.connected.get(key) === entry) this.connected.delete(key);
      throw error;
    }
  }

  /**
   * Acknowledges every message of the consumer up to event id `id`. An id at or behind its
   * acknowledgement changes nothing and succeeds (retried acks are harmless); an id that is not
   * pending for it is refused (HUB_ERR_ACK_INVALID).
   */
  async ack(topic: string, name: string, caller: ConsumerCaller, id: unknown): Promise<ConsumerInfo> {
    assertValidConsumerName(name);
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ACK_ID_LENGTH || CONTROL.test(id)) {
      throw new RelayError('HUB_ERR_ACK_INVALID', 'Send {"id": "<event id>"}: the id of a message delivered to this consumer');
    }
    await this.owned(topic, name, caller);
    const outcome = await this.log.ack(topic, name, id, Date.now());
    if (outcome.kind === 'no-consumer') throw notFound(name);
    if (outcome.kind === 'unknown') {
      throw new RelayError('HUB_ERR_ACK_INVALID', `No message with this id is pending for consumer "${name}": it was never delivered on this id, or is not an event id`);
    }
    if (outcome.kind === 'acked') this.observer.acknowledged();
    return this.info(outcome.state);
  }

  /** The consumers of `topic` the caller may see (its own; on a hub without keys, all). */
  async list(topic: string, caller: ConsumerCaller): Promise<ConsumerInfo[]> {
    const all = await this.log.list(topic);
    return all.filter((state) => caller.subject === null || state.owner === caller.subject).map((state) => this.info(state));
  }

  /** One consumer: HUB_ERR_CONSUMER_NOT_FOUND, or HUB_ERR_CONSUMER_FORBIDDEN when another subject's. */
  async get(topic: string, name: string, caller: ConsumerCaller): Promise<ConsumerInfo> {
    assertValidConsumerName(name);
    return this.info(await this.owned(topic, name, caller));
  }

  private async owned(topic: string, name: string, caller: ConsumerCaller): Promise<ConsumerState> {
    const state = await this.log.get(topic, name);
    if (!state) throw notFound(name);
    assertOwner(state, caller);
    return state;
  }

  private info(state: ConsumerState): ConsumerInfo {
    return {
      name: state.name,
      ackedId: state.ackedId,
      pending: state.pending,
      connected: this.connected.has(`${state.topic}\n${state.name}`),
      lastSeen: new Date(state.lastSeenAt).toISOString(),
      lost: state.lost,
    };
  }
}

/** Throws HUB_ERR_CONSUMER_INVALID unless `name` is a valid consumer name. */
export function assertValidConsumerName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !CONSUMER_NAME.test(name)) {
    throw new RelayError('HUB_ERR_CONSUMER_INVALID');
  }
}

function assertOwner(state: ConsumerState, caller: ConsumerCaller): void {
  if (caller.subject !== null && state.owner !== caller.subject) {
    throw new RelayError('HUB_ERR_CONSUMER_FORBIDDEN', `Consumer "${state.name}" belongs to another subject`);
  }
}

function notFound(name: string): RelayError {
  return new RelayError('HUB_ERR_CONSUMER_NOT_FOUND', `No consumer "${name}" on this id`);
}

function splitKey(key: string): { topic: string; name: string } {
  const at = key.lastIndexOf('\n');
  return { topic: key.slice(0, at), name: key.slice(at + 1) };
}
