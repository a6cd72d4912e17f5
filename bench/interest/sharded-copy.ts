/**
 * What a node receives on a topic's channel in way 2 (spublish-append.ts), decoded into the
 * hub's `Message` by the store's own stream-entry codec, so both ways end in the same decode.
 */
import type { Message } from '../../src/hub/message.js';
import { decodeEntry } from '../../src/store/redis/codec.js';

/** One copy: the message, and the seq of its topic's previous message on the shard. */
export interface ShardedCopy {
  readonly message: Message;
  readonly prev: number;
}

/** Decodes a channel payload `[seq, prev, field, value, ...]`; throws on anything else. */
export function decodeShardedCopy(payload: string): ShardedCopy {
  const parsed: unknown = JSON.parse(payload);
  if (!Array.isArray(parsed) || parsed.length < 2 || parsed.length % 2 !== 0) throw new Error(`not a sharded copy: ${payload.slice(0, 80)}`);
  const [seq, prev, ...fields] = parsed as string[];
  return { message: decodeEntry([`${seq}-0`, fields]), prev: Number(prev) };
}
