/**
 * Way 2 of node-local interest (docs/scaling.md "Node-local interest"), for the benchmark only:
 * the store's own APPEND script with, for every topic a message is indexed under, one
 * `SPUBLISH` of the stored entry to that topic's channel. Nothing else changes, so the two
 * scripts differ by exactly what sharded pub/sub adds to an append.
 *
 * The copy carries `prev`, the seq of the topic's previous message on this shard (its newest
 * retained one before this append; when it retains none, the highest seq pruned from it, else
 * 0): pub/sub is at-most-once, and a node that sees `prev` above the last seq it has for the
 * topic knows it missed something and reads the hole from history (topic-continuity.ts).
 *
 * Derived from the real script's text, so the measurement follows it when it changes; when
 * the line it hooks into is gone, building this throws instead of measuring something else.
 */
import { redisKeys, SCRIPT_DEFINITIONS, type RedisKeys } from '../../src/store/redis/scripts.js';

/** The line of APPEND that indexes a message under one of its own topics. */
const INDEX_LINE = "redis.call('ZADD', topicKey[topic], s, s)";

/** Channels sit under the data set's prefix (its hash tag): `{P k}c:<topic>`, in the shard's slot. */
const CHANNEL_INFIX = 'c:';

/**
 * The channel of `topic` on the shard of `keys`. Same hash tag as the shard's keys, so it is
 * in their slot: Redis Cluster lets the script publish to it, and only that master carries it.
 */
export function topicChannel(keys: RedisKeys, topic: string): string {
  return `${keys.prefix}${CHANNEL_INFIX}${topic}`;
}

/**
 * The copy on the channel: a JSON array `[seq, prev, field, value, ...]`, the stream entry's
 * own fields in its order (cjson, built into Redis' Lua), which Node parses natively.
 */
const PUBLISH_STEP = `local prev = redis.call('ZREVRANGE', topicKey[topic], 0, 0)[1] or redis.call('HGET', wmKey, topic) or '0'
    ${INDEX_LINE}
    redis.call('SPUBLISH', string.sub(seqKey, 1, -4) .. '${CHANNEL_INFIX}' .. topic, cjson.encode({ s, prev, unpack(fields) }))`;

/** APPEND plus one SPUBLISH per indexed topic; same KEYS and ARGV, same reply. */
export function appendWithSpublishLua(): string {
  const append = SCRIPT_DEFINITIONS.sseRelayAppend.lua;
  const at = append.indexOf(INDEX_LINE);
  if (at < 0 || append.indexOf(INDEX_LINE, at + 1) >= 0) {
    throw new Error(`the store's APPEND script no longer has exactly one "${INDEX_LINE}": update bench/interest/spublish-append.ts`);
  }
  // The script builds the channel from the seq key's name, `<prefix>seq`.
  const probe = redisKeys('p:', true, 0);
  if (probe.seq !== `${probe.prefix}seq`) throw new Error('the seq key is no longer `<prefix>seq`: update bench/interest/spublish-append.ts');
  return append.slice(0, at) + PUBLISH_STEP + append.slice(at + INDEX_LINE.length);
}

/**
 * The store's script definitions with APPEND replaced by {@link appendWithSpublishLua}, under
 * the same name: a client built with them runs way 2 through the store's own `RedisScripts`,
 * with the store's own KEYS and ARGV layout.
 */
export function spublishScriptDefinitions(): Record<string, { lua: string; readOnly?: boolean }> {
  return { ...SCRIPT_DEFINITIONS, sseRelayAppend: { lua: appendWithSpublishLua() } };
}
