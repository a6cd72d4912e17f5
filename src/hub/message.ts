import type { EncodedMessage } from '../sse/encode.js';
import { isVectorIdForm } from '../store/position-vector.js';
import { RelayError } from './errors.js';

/**
 * A message the hub accepted: stored, numbered, and ready to dispatch.
 * Immutable once created; the same object is handed to every subscriber.
 */
export interface Message {
  /**
   * The store's sequence number: a positive safe integer, strictly increasing in the order
   * the store committed messages. Comparable within one store; it orders replay and live.
   */
  readonly seq: number;
  /**
   * The shard of a store with several (`--redis-shards`) whose copy this is: `seq` counts on
   * that shard. Absent: 0, the one shard of every other store.
   */
  readonly shard?: number | undefined;
  /**
   * On a sharded store, the shard of each of `topics` (same order): a message on topics of
   * several shards has a copy on each, and a subscription takes only one (see Subscription).
   */
  readonly topicShards?: readonly number[] | undefined;
  /**
   * Sharded store, a message on topics of several shards: its place in the order every shard
   * keeps among such messages (strictly increasing on each shard), by which the store merges
   * the shards' copies. Absent on every other message.
   */
  readonly ticket?: number | undefined;
  /** With {@link ticket}: the lock token of the publish that wrote the copies. */
  readonly writer?: string | undefined;
  /**
   * The SSE event id sent to clients: a custom id given by the publisher, or the position after
   * this message (`String(seq)` with one shard; a `v1.` position vector with several).
   */
  readonly id: string;
  /** Topics (the article's ids) the message was published to; the first is canonical. */
  readonly topics: readonly string[];
  /** The payload, as published (line breaks are normalised only when framed as SSE). */
  readonly data: string;
  /** The SSE event type; undefined means the default `message` event. */
  readonly type?: string | undefined;
  /** Private messages go only to subscribers authorised for them (Mercure). */
  readonly private?: boolean | undefined;
  /** A reconnection delay hint, in milliseconds, sent as the SSE `retry` field. */
  readonly retry?: number | undefined;
  /** When the hub accepted the message, in milliseconds since the epoch. */
  readonly time: number;
  /**
   * The conflation key a publisher gave (`latest` slow-consumer policy): a subscriber that is
   * behind may receive only the newest queued message of each key. Live only: stores keep it on
   * the message they dispatch but do not persist it, so replayed history carries none (replay
   * is paced to the subscriber and never drops anything).
   */
  readonly key?: string | undefined;
  /**
   * The message's bytes on an event stream, written once by `encodeMessage` (sse/encode.ts) and
   * read by it and the streams; nothing else sets it. A copy made with a spread carries the
   * original's, which `of` tells apart, so a copy with another id is framed afresh.
   */
  encoded?: EncodedMessage | undefined;
}

/** What a publisher hands to the hub; the store turns it into a {@link Message}. */
export interface MessageDraft {
  readonly topics: readonly string[];
  readonly data: string;
  readonly type?: string | undefined;
  readonly private?: boolean | undefined;
  readonly retry?: number | undefined;
  /** A publisher-chosen event id (Mercure); the store assigns `String(seq)` when absent. */
  readonly id?: string | undefined;
  /** The conflation key (see {@link Message.key}). */
  readonly key?: string | undefined;
}

/** Longest topic (the article's id) in characters. */
export const MAX_TOPIC_LENGTH = 256;

// C0 controls, DEL and C1 controls: never part of a printable id; CR/LF would break SSE framing
// and log lines, NUL is forbidden in SSE ids.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional formatting characters (ALM, LRM, RLM, LRE–RLO, LRI–PDI): invisible, they make a
// name display as another (`invoice\u202Efdp.exe` shows as `invoiceexe.pdf`) in the console, in
// logs and in a terminal. RFC 3987 forbids them in IRIs, so no Mercure topic has them either.
const BIDI_FORMATTING = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * Why `text` cannot name a topic, an event id or type, or a key: `control characters` or
 * `bidirectional formatting characters`; undefined when it can.
 */
export function unprintableIn(text: string): string | undefined {
  // One scan for both classes on the common path (every publish checks its topic twice: in the
  // protocol and in the hub); which class matched is only worked out for a refusal.
  if (!UNPRINTABLE.test(text)) return undefined;
  if (CONTROL_CHARACTERS.test(text)) return 'control characters';
  if (BIDI_FORMATTING.test(text)) return 'bidirectional formatting characters (they make a name display as another)';
  return undefined;
}
// eslint-disable-next-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/;

/** The cursor that replays everything retained; never a message's id. */
export const EARLIEST = 'earliest';

// The form of the ids the hub issues itself (`String(seq)`), with room to spare: any run of
// ASCII digits, leading zeros included, so that no reading of a cursor can be ambiguous.
const HUB_FORM_ID = /^[0-9]+$/;

/**
 * True when `id` is reserved for the hub: digits only or `earliest`, and on a sharded store
 * (`sharded`) also `v<digits>.` (its position ids). A publisher-chosen id of such a form would
 * shadow the hub's own id of the same text, and subscribers of other topics resuming from that
 * id would silently get nothing. One-shard stores never issue the `v` form, so it stays the
 * publisher's there, as before sharding.
 */
export function isReservedEventId(id: string, sharded = false): boolean {
  return id === EARLIEST || HUB_FORM_ID.test(id) || (sharded && isVectorIdForm(id));
}

/** Throws HUB_ERR_TOPIC_INVALID unless `topic` is a usable id. */
export function assertValidTopic(topic: string): void {
  if (topic.length === 0) throw new RelayError('HUB_ERR_TOPIC_INVALID', 'The id must not be empty');
  if (topic.length > MAX_TOPIC_LENGTH) {
    throw new RelayError('HUB_ERR_TOPIC_INVALID', `The id must be at most ${MAX_TOPIC_LENGTH} characters long`);
  }
  const unprintable = unprintableIn(topic);
  if (unprintable !== undefined) throw new RelayError('HUB_ERR_TOPIC_INVALID', `The id must not contain ${unprintable}`);
  if (!isWellFormed(topic)) throw new RelayError('HUB_ERR_TOPIC_INVALID', 'The id is not valid Unicode (lone surrogate)');
}

/**
 * Throws unless the draft can be framed as one SSE event without injecting fields. `sharded`:
 * the store has several shards, so custom ids of its position form are refused too.
 */
export function assertValidDraft(draft: MessageDraft, sharded = false): void {
  if (draft.topics.length === 0) throw new RelayError('HUB_ERR_TOPIC_INVALID', 'At least one topic is required');
  for (const topic of draft.topics) assertValidTopic(topic);
  if (typeof draft.data !== 'string') throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'The message must be a string');
  // A lone surrogate cannot be encoded as UTF-8: stores would keep U+FFFD while the live
  // stream sent something else, so replayed and live copies would differ.
  if (!isWellFormed(draft.data)) throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'The message is not valid Unicode (lone surrogate)');
  if (draft.type !== undefined) {
    if (draft.type.length === 0 || draft.type.length > MAX_TOPIC_LENGTH) {
      throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', `The event type must be 1 to ${MAX_TOPIC_LENGTH} characters long`);
    }
    if (LINE_BREAK_OR_NUL.test(draft.type)) {
      throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', 'The event type must not contain CR, LF or NUL');
    }
    if (BIDI_FORMATTING.test(draft.type)) throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', `The event type must not contain ${unprintableIn(draft.type)!}`);
    if (!isWellFormed(draft.type)) throw new RelayError('HUB_ERR_EVENT_TYPE_INVALID', 'The event type is not valid Unicode');
  }
  if (draft.id !== undefined) {
    if (draft.id.length === 0 || draft.id.length > MAX_TOPIC_LENGTH) {
      throw new RelayError('HUB_ERR_EVENT_ID_INVALID', `The event id must be 1 to ${MAX_TOPIC_LENGTH} characters long`);
    }
    if (LINE_BREAK_OR_NUL.test(draft.id)) {
      throw new RelayError('HUB_ERR_EVENT_ID_INVALID', 'The event id must not contain CR, LF or NUL');
    }
    if (BIDI_FORMATTING.test(draft.id)) throw new RelayError('HUB_ERR_EVENT_ID_INVALID', `The event id must not contain ${unprintableIn(draft.id)!}`);
    if (!isWellFormed(draft.id)) throw new RelayError('HUB_ERR_EVENT_ID_INVALID', 'The event id is not valid Unicode');
    if (isReservedEventId(draft.id, sharded)) {
      const forms = sharded ? `"${EARLIEST}", digits only nor start with v<digits>. (with --redis-shards)` : `"${EARLIEST}" nor digits only`;
      throw new RelayError('HUB_ERR_EVENT_ID_RESERVED', `Custom event ids must not be ${forms}: those are the hub's own cursors`);
    }
  }
  if (draft.key !== undefined) {
    if (typeof draft.key !== 'string' || draft.key.length === 0 || draft.key.length > MAX_TOPIC_LENGTH) {
      throw new RelayError('HUB_ERR_MESSAGE_INVALID', `The key must be 1 to ${MAX_TOPIC_LENGTH} characters long`);
    }
    if (unprintableIn(draft.key) !== undefined || !isWellFormed(draft.key)) throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'The key must be printable Unicode text');
  }
  if (draft.retry !== undefined && (!Number.isSafeInteger(draft.retry) || draft.retry < 0)) {
    throw new RelayError('HUB_ERR_MESSAGE_INVALID', 'retry must be a non-negative integer');
  }
}

/** False for strings with lone surrogates (not representable in UTF-8). */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}
