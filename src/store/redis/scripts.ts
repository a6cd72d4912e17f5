import type { RedisClient } from './connection.js';
import { APPEND_VALUES_PER_MESSAGE, type StreamEntry } from './codec.js';

/**
 * The Lua scripts of the Redis store. Each runs atomically on the server, so numbering,
 * storing, indexing and pruning a message can never be seen half done by another node.
 *
 * Keys (all under the configured prefix `P`; on a cluster `{P}`, see {@link redisKeys}):
 * - `P seq`      string: the last seq issued (INCR).
 * - `P meta`     hash: `base` (the first seq of this data set, minus one), `pruned` (highest seq
 *                pruned from any topic), `aged` (highest seq age retention has passed).
 * - `P log`      stream: every message, entry id `<seq>-0`, fields `t` (topics joined by LF:
 *                topics cannot contain control characters), `ts` (time), `d` (data), and only
 *                when set `i` (custom id), `y` (type), `p` (private 0/1), `r` (retry), `o`
 *                (the topics of this shard, when a sharded copy has topics of other shards). Plain
 *                messages share one field list, which the stream encoding stores once per node.
 * - `P t:<topic>` sorted set: the seqs a topic retains (score = member = seq). The authority
 *                on retention: history by topic reads it, count retention trims it.
 * - `P wm`       hash: topic -> highest seq pruned from it (for topics retaining messages).
 * - `P ids`      hash: custom id -> seq of the latest retained message carrying it; `P idof`
 *                the reverse (seq -> custom id), for retained messages with a custom id only,
 *                so pruning finds the id without reading the message (measured: 9 -> 5 µs of
 *                Redis CPU per pruned message).
 * - `P refs`     hash: seq -> topics still retaining it, only for multi-topic messages.
 * - `P dead`     sorted set: seqs no topic retains any more, still in `P log` for readers that
 *                have not dispatched them yet; swept once every live reader has passed them.
 * - `P readers`  hash: node id -> last seq its read loop dispatched; `P reader:<id>` is the
 *                node's liveness key (PX), so a crashed node stops holding the sweep back.
 * - `P lock`     string (sharded only): the token of the publisher appending a message on topics of
 *                several shards (PX lease); `P meta` `ticket` is the last such message's ticket.
 *                A copy of one carries `k` = `<ticket>:<token>` (sharded-redis-store.ts).
 *
 * Every key a script touches is declared in its KEYS, never built inside Lua: the wrappers
 * below know which topics and readers a call concerns (age retention asks a read-only script
 * first). That is what Redis Cluster needs to route a script; there every key of a data set
 * shares one hash tag (see {@link redisKeys}), so the whole data set lives in one slot.
 *
 * Seqs travel as decimal strings: Lua 5.1 numbers are doubles and exact to 2^53, but
 * `tostring` and Redis' number-to-argument conversion would print a 16-digit seq in
 * exponent notation; `string.format('%d', n)` does not.
 */

/** Helpers shared by the scripts that prune; expect the locals of {@link PRUNE_PRELUDE}. */
const PRUNE_FUNCTIONS = `
local function raise(hash, field, seq)
  local current = redis.call('HGET', hash, field)
  if not current or tonumber(current) < tonumber(seq) then redis.call('HSET', hash, field, seq) end
end
-- A topic no longer retains message s: when no topic does, it leaves history (ids, reads) at
-- once and its body waits in the dead set for the sweep.
local function release(s)
  local refs = redis.call('HGET', refsKey, s)
  if refs and tonumber(refs) > 1 then
    redis.call('HINCRBY', refsKey, s, -1)
    return
  end
  if refs then redis.call('HDEL', refsKey, s) end
  local custom = redis.call('HGET', idOfKey, s)
  if custom then
    redis.call('HDEL', idOfKey, s)
    if redis.call('HGET', idsKey, custom) == s then redis.call('HDEL', idsKey, custom) end
  end
  redis.call('ZADD', deadKey, s, s)
end
local function pruneTopic(topic, key, count)
  local victims = redis.call('ZRANGE', key, 0, count - 1)
  if #victims == 0 then return end
  redis.call('ZREMRANGEBYRANK', key, 0, count - 1)
  for _, s in ipairs(victims) do release(s) end
  local last = victims[#victims]
  raise(wmKey, topic, last)
  raise(metaKey, 'pruned', last)
end
`;

/**
 * KEYS 1-8 are the data set's fixed keys, KEYS 9.. the keys of the topics the call concerns;
 * ARGV begins with the names of those topics, in the same order.
 */
const PRUNE_PRELUDE = prunePrelude(0);

/** {@link PRUNE_PRELUDE} for a call with `extraKeys` more keys after the topics' ones. */
function prunePrelude(extraKeys: number): string {
  return `
local seqKey, metaKey, logKey, idsKey, refsKey, wmKey, deadKey, idOfKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local topicCount = #KEYS - 8 - ${extraKeys}
local topicKey = {}
for i = 1, topicCount do topicKey[ARGV[i]] = KEYS[8 + i] end
`;
}

/**
 * Appends a batch. KEYS: the fixed keys, then the key of every topic of the batch. ARGV: those
 * topics (in KEYS' order), base seq (used when the data set is new), count limit per topic
 * (0: none), prune budget per topic, then 7 values per message: time, topics (LF-joined,
 * deduplicated), custom id, data, type, private, retry ('' when unset).
 * Returns {first seq, base}; the batch's seqs are consecutive.
 *
 * Failure: Redis refuses a script for lack of memory only at its first write, and the first
 * write here creates nothing visible (INCR), so an OOM batch stores nothing.
 */
const APPEND_BODY = `local limit = tonumber(ARGV[topicCount + 2])
local budget = tonumber(ARGV[topicCount + 3])
if redis.call('EXISTS', seqKey) == 0 then
  -- A new (or lost) data set. Start above the caller's clock in microseconds, so ids a client
  -- kept from an earlier data set are unknown here, and above anything still in the log.
  local base = tonumber(ARGV[topicCount + 1])
  local top = redis.call('XREVRANGE', logKey, '+', '-', 'COUNT', 1)[1]
  if top then base = math.max(base, tonumber(string.match(top[1], '^(%d+)'))) end
  base = string.format('%d', base)
  redis.call('SET', seqKey, base)
  redis.call('HSET', metaKey, 'base', base)
end
local globalPruned = redis.call('HGET', metaKey, 'pruned') or '0'
local first = nil
for a = firstValue, #ARGV, stride do
  local topics, id, typ, priv, retry = ARGV[a + 1], ARGV[a + 2], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local seq = redis.call('INCR', seqKey)
  if not first then first = seq end
  local s = string.format('%d', seq)
  local fields = { 't', topics, 'ts', ARGV[a], 'd', ARGV[a + 3] }
  if id ~= '' then fields[#fields + 1] = 'i'; fields[#fields + 1] = id end
  if typ ~= '' then fields[#fields + 1] = 'y'; fields[#fields + 1] = typ end
  if priv ~= '' then fields[#fields + 1] = 'p'; fields[#fields + 1] = priv end
  if retry ~= '' then fields[#fields + 1] = 'r'; fields[#fields + 1] = retry end
  if stride == 8 and ARGV[a + 7] ~= '' then
    fields[#fields + 1] = 'k'; fields[#fields + 1] = ARGV[a + 7] .. ':' .. token
    ticket = ARGV[a + 7]
  end
  -- A shard indexes only its own topics (the ones declared); the copy keeps the full list in
  -- 't' and, when some are another shard's, its own in 'o' for retention.
  local count, all, own = 0, 0, {}
  for topic in string.gmatch(topics, '[^\\n]+') do
    all = all + 1
    if topicKey[topic] then
      count = count + 1
      own[count] = topic
    end
  end
  if count < all then fields[#fields + 1] = 'o'; fields[#fields + 1] = table.concat(own, '\\n') end
  redis.call('XADD', logKey, s .. '-0', unpack(fields))
  for _, topic in ipairs(own) do
    redis.call('ZADD', topicKey[topic], s, s)
    -- A topic getting its first message starts from the global watermark: it may have had
    -- messages before, pruned together with its watermark (as in the SQLite store).
    redis.call('HSETNX', wmKey, topic, globalPruned)
  end
  if count > 1 then redis.call('HSET', refsKey, s, count) end
  if id ~= '' then
    redis.call('HSET', idsKey, id, s)
    redis.call('HSET', idOfKey, s, id)
  end
end
if limit > 0 then
  for i = 1, topicCount do
    local topic, key = ARGV[i], KEYS[8 + i]
    local excess = redis.call('ZCARD', key) - limit
    if excess > 0 then pruneTopic(topic, key, math.min(excess, budget)) end
  end
end
`;

const APPEND = `${PRUNE_PRELUDE}${PRUNE_FUNCTIONS}
local firstValue, stride, token, ticket = topicCount + 4, 7, '', nil
${APPEND_BODY}
return { first, redis.call('HGET', metaKey, 'base') }
`;

/**
 * Sharded: appends a batch holding copies of messages on topics of several shards, only while
 * this shard's lock holds the caller's token (fencing: a publisher whose lease expired cannot
 * interleave its copies with the next holder's). KEYS: as {@link APPEND}, then the lock. ARGV:
 * as APPEND up to the prune budget, then the token, then 8 values per message: APPEND's 7 and
 * its ticket ('' for a message of this shard alone). Records the last ticket in `meta`
 * atomically with the copies, and releases the lock. Fails with `FENCED` (nothing stored) when
 * the lock is not held.
 */
const APPEND_FENCED = `${prunePrelude(1)}${PRUNE_FUNCTIONS}
local firstValue, stride, token, ticket = topicCount + 5, 8, ARGV[topicCount + 4], nil
if redis.call('GET', KEYS[#KEYS]) ~= token then return redis.error_reply('FENCED the lock of this shard expired before the append') end
${APPEND_BODY}
if ticket then redis.call('HSET', metaKey, 'ticket', ticket) end
-- Released here, with the copies: no release call, and none that could run before them.
redis.call('DEL', KEYS[#KEYS])
return { first, redis.call('HGET', metaKey, 'base') }
`;

/**
 * Sharded: takes this shard's lock for a message on topics of several shards. KEYS: lock, meta.
 * ARGV: token, lease ms. Returns {1, last ticket} when taken, {0, ms left on the lease} when
 * another publisher holds it.
 */
const LOCK = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return { 1, redis.call('HGET', KEYS[2], 'ticket') or '0' }
end
return { 0, redis.call('PTTL', KEYS[1]) }
`;

/** Sharded: releases the lock if it still holds the token. KEYS: lock. ARGV: token. */
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Sharded, replay: what a reader needs to know, before reading a page, about copies of
 * multi-shard messages still to come: the last ticket appended and the lock's holder ('' when
 * free). KEYS: meta, lock.
 */
const FENCE_STATE = `
return { redis.call('HGET', KEYS[1], 'ticket') or '0', redis.call('GET', KEYS[2]) or '' }
`;

/**
 * The topics the next slice of age retention touches, so that its call can declare their keys:
 * the slice from where the last one stopped (`aged`) to the first message younger than the
 * cut-off. KEYS: meta, log, dead. ARGV: cut-off time, budget. Returns {messages due, topics...}.
 */
const AGE_PLAN = `
local cutoff = tonumber(ARGV[1])
local aged = redis.call('HGET', KEYS[1], 'aged') or '0'
local entries = redis.call('XRANGE', KEYS[2], aged .. '-1', '+', 'COUNT', tonumber(ARGV[2]))
local due = 0
local seen, out = {}, { 0 }
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local topics, ts = '', 0
  for j = 1, #fields, 2 do
    if fields[j] == 't' then topics = fields[j + 1] elseif fields[j] == 'ts' then ts = tonumber(fields[j + 1]) end
  end
  for j = 1, #fields, 2 do
    if fields[j] == 'o' then topics = fields[j + 1] end
  end
  if ts >= cutoff then break end
  due = due + 1
  if not redis.call('ZSCORE', KEYS[3], string.match(entry[1], '^(%d+)')) then
    for topic in string.gmatch(topics, '[^\\n]+') do
      if not seen[topic] then
        seen[topic] = true
        out[#out + 1] = topic
      end
    end
  end
end
out[1] = due
return out
`;

/**
 * Age retention, one bounded slice from where the last one stopped (`aged`). KEYS: the fixed
 * keys, then the keys of the topics AGE_PLAN named. ARGV: those topics, cut-off time, budget.
 * The slice stops before a message of a topic not declared (another node pruned meanwhile and
 * the plan is stale): the next slice plans again. Returns {pruned, more}.
 */
const PRUNE_AGE = `${PRUNE_PRELUDE}${PRUNE_FUNCTIONS}
local cutoff = tonumber(ARGV[topicCount + 1])
local budget = tonumber(ARGV[topicCount + 2])
local aged = redis.call('HGET', metaKey, 'aged') or '0'
local entries = redis.call('XRANGE', logKey, aged .. '-1', '+', 'COUNT', budget)
local pruned = 0
local through = nil
local stale = false
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local topics, ts = '', 0
  for j = 1, #fields, 2 do
    if fields[j] == 't' then topics = fields[j + 1] elseif fields[j] == 'ts' then ts = tonumber(fields[j + 1]) end
  end
  for j = 1, #fields, 2 do
    if fields[j] == 'o' then topics = fields[j + 1] end
  end
  -- Seq order is (nearly) time order: expiry eats the head and stops at the first young one.
  if ts >= cutoff then break end
  local s = string.match(entry[1], '^(%d+)')
  local dead = redis.call('ZSCORE', deadKey, s)
  if not dead then
    for topic in string.gmatch(topics, '[^\\n]+') do
      if not topicKey[topic] then stale = true end
    end
  end
  if stale then break end
  if not dead then
    for topic in string.gmatch(topics, '[^\\n]+') do
      local key = topicKey[topic]
      if redis.call('ZREM', key, s) == 1 then
        if redis.call('ZCARD', key) == 0 then redis.call('HDEL', wmKey, topic) else raise(wmKey, topic, s) end
      end
    end
    redis.call('HSET', refsKey, s, 1)
    release(s)
    raise(metaKey, 'pruned', s)
  end
  through = s
  pruned = pruned + 1
end
if through then redis.call('HSET', metaKey, 'aged', through) end
local more = 0
if pruned == budget or stale then more = 1 end
return { pruned, more }
`;

/**
 * Registers a node's read loop and, from the second call on, its progress; returns
 * {lastSeq, base, wasRegistered, last multi-shard ticket (sharded; '0' when none)}: the ticket
 * is read atomically with the position, so a copy above the position has a higher ticket.
 * KEYS: seq, meta, readers, the node's liveness key. ARGV: node id, position ('' = the last seq
 * issued), liveness TTL in ms.
 */
const JOIN = `
local position = ARGV[2]
local last = redis.call('GET', KEYS[1]) or '0'
if position == '' then position = last end
local registered = redis.call('EXISTS', KEYS[4])
redis.call('HSET', KEYS[3], ARGV[1], position)
redis.call('SET', KEYS[4], position, 'PX', ARGV[3])
return { position, redis.call('HGET', KEYS[2], 'base') or '', registered, redis.call('HGET', KEYS[2], 'ticket') or '0' }
`;

/**
 * Heartbeat and sweep: records this node's position, forgets readers whose liveness key
 * expired, and deletes from the log the dead messages every live reader has dispatched.
 * KEYS: readers, dead, log, meta, then the liveness keys of the readers the caller knows of
 * (itself first). ARGV: position, TTL ms, budget, then the ids of those readers, in KEYS'
 * order. A reader that registered after the caller looked is taken for live.
 * Returns {bodies deleted, base ('' when the data set is new or gone)}.
 */
const SWEEP = `
local readersKey, deadKey, logKey = KEYS[1], KEYS[2], KEYS[3]
local liveKey = {}
for i = 4, #ARGV do liveKey[ARGV[i]] = KEYS[i + 1] end
redis.call('HSET', readersKey, ARGV[4], ARGV[1])
redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[2])
local min = nil
local readers = redis.call('HGETALL', readersKey)
for j = 1, #readers, 2 do
  local key = liveKey[readers[j]]
  if not key or redis.call('EXISTS', key) == 1 then
    local p = tonumber(readers[j + 1])
    if not min or p < min then min = p end
  else
    redis.call('HDEL', readersKey, readers[j])
  end
end
local victims
if min then
  victims = redis.call('ZRANGEBYSCORE', deadKey, '-inf', string.format('%d', min), 'LIMIT', 0, tonumber(ARGV[3]))
else
  victims = redis.call('ZRANGE', deadKey, 0, tonumber(ARGV[3]) - 1)
end
for _, s in ipairs(victims) do redis.call('XDEL', logKey, s .. '-0') end
if #victims > 0 then redis.call('ZREMRANGEBYSCORE', deadKey, '-inf', victims[#victims]) end
return { #victims, redis.call('HGET', KEYS[4], 'base') or '' }
`;

/**
 * Resolves a Last-Event-ID. KEYS: seq, meta, ids, wm. ARGV: the id, '1' when it is a decimal
 * safe integer (then read only as a seq, never as a custom id) or '2' for the start of the data
 * set (seq 0, a gap when anything was pruned), '1' when every topic is meant, then the topics.
 * Returns {seq or '', gap}.
 */
const RESOLVE = `
local s = nil
-- A decimal id is only ever read as a seq: a custom id of that form must not shadow it.
if ARGV[2] ~= '1' then s = redis.call('HGET', KEYS[3], ARGV[1]) end
if ARGV[2] == '1' then
  local base = redis.call('HGET', KEYS[2], 'base')
  local last = redis.call('GET', KEYS[1])
  local n = tonumber(ARGV[1])
  if base and last and n >= tonumber(base) and n <= tonumber(last) then s = ARGV[1] end
end
-- '2': the start of the data set (a shard a position vector has no component for).
if ARGV[2] == '2' then s = '0' end
if not s then return { '', 1 } end
local seq = tonumber(s)
local global = tonumber(redis.call('HGET', KEYS[2], 'pruned') or '0')
local gap = 0
if ARGV[3] == '1' then
  if global > seq then gap = 1 end
else
  for i = 4, #ARGV do
    local w = redis.call('HGET', KEYS[4], ARGV[i])
    local through = global
    if w then through = tonumber(w) end
    if through > seq then
      gap = 1
      break
    end
  end
end
return { s, gap }
`;

/**
 * History of some topics. KEYS: log, then the topic keys. ARGV: afterSeq, limit. Returns
 * stream entries, oldest first.
 */
const READ_TOPICS = `
local after, limit = '(' .. ARGV[1], tonumber(ARGV[2])
local seqs
if #KEYS == 2 then
  seqs = redis.call('ZRANGEBYSCORE', KEYS[2], after, '+inf', 'LIMIT', 0, limit)
else
  local seen, all = {}, {}
  for k = 2, #KEYS do
    for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[k], after, '+inf', 'LIMIT', 0, limit)) do
      if not seen[s] then
        seen[s] = true
        all[#all + 1] = tonumber(s)
      end
    end
  end
  table.sort(all)
  seqs = {}
  for i = 1, math.min(limit, #all) do seqs[i] = string.format('%d', all[i]) end
end
local out = {}
for _, s in ipairs(seqs) do
  local entry = redis.call('XRANGE', KEYS[1], s .. '-0', s .. '-0')[1]
  if entry then out[#out + 1] = entry end
end
return out
`;

/**
 * History of every topic: the log after the cursor, less what age retention passed and what
 * no topic retains. KEYS: log, dead, meta. ARGV: afterSeq, limit, scan budget. Returns
 * {entries, last seq scanned, 1 when the end of the log was reached}.
 */
const READ_ALL = `
local from = math.max(tonumber(ARGV[1]), tonumber(redis.call('HGET', KEYS[3], 'aged') or '0'))
local limit, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local cursor = string.format('%d', from)
local out = {}
local scanned = 0
while #out < limit and scanned < budget do
  local chunk = redis.call('XRANGE', KEYS[1], cursor .. '-1', '+', 'COUNT', limit - #out)
  if #chunk == 0 then return { out, cursor, 1 } end
  for _, entry in ipairs(chunk) do
    cursor = string.match(entry[1], '^(%d+)')
    scanned = scanned + 1
    if not redis.call('ZSCORE', KEYS[2], cursor) then out[#out + 1] = entry end
  end
end
return { out, cursor, 0 }
`;

/**
 * A topic's retained count and first and last messages. KEYS: log, topic key. Returns {0} or
 * {count, first seq, first custom id or '', last seq, last custom id or ''}.
 */
const TOPIC_STATS = `
local n = redis.call('ZCARD', KEYS[2])
if n == 0 then return { 0 } end
local function customId(s)
  local entry = redis.call('XRANGE', KEYS[1], s .. '-0', s .. '-0')[1]
  if entry then
    local fields = entry[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'i' then return fields[j + 1] end
    end
  end
  return ''
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local last = redis.call('ZRANGE', KEYS[2], -1, -1)[1]
return { n, first, customId(first), last, customId(last) }
`;

/** The key names of one data set, from the configured prefix. */
export interface RedisKeys {
  /** Every key starts with it (with its hash tag on a cluster): keys of other parts of the store use it too. */
  readonly prefix: string;
  readonly seq: string;
  readonly meta: string;
  readonly log: string;
  readonly ids: string;
  readonly refs: string;
  readonly wm: string;
  readonly dead: string;
  readonly idOf: string;
  readonly readers: string;
  readonly readerPrefix: string;
  readonly lock: string;
  readonly topicPrefix: string;
}

/**
 * The keys of the data set under `prefix`. With `hashTag` (Redis Cluster) the prefix is
 * wrapped in braces, `{sse-relay:}seq`: Redis hashes only what is inside them, so every key
 * of the data set is in one slot and each script runs on the one master that holds it. Shard
 * `k` of a sharded deployment (`--redis-shards`) has the tag `{<prefix><k>}`, `{sse-relay:2}seq`,
 * on a cluster and on one server alike: each shard is a data set of its own.
 */
export function redisKeys(keyPrefix: string, hashTag = false, shard?: number): RedisKeys {
  const prefix = shard !== undefined ? `{${keyPrefix}${shard}}` : hashTag ? `{${keyPrefix}}` : keyPrefix;
  return Object.freeze({
    prefix,
    seq: `${prefix}seq`,
    meta: `${prefix}meta`,
    log: `${prefix}log`,
    ids: `${prefix}ids`,
    refs: `${prefix}refs`,
    wm: `${prefix}wm`,
    dead: `${prefix}dead`,
    idOf: `${prefix}idof`,
    readers: `${prefix}readers`,
    readerPrefix: `${prefix}reader:`,
    lock: `${prefix}lock`,
    topicPrefix: `${prefix}t:`,
  });
}

/**
 * The scripts as ioredis custom commands (`defineCommand`, given to each client as its
 * `scripts` option): ioredis sends EVALSHA and falls back to EVAL when the server does not
 * know the script yet (a restarted or flushed Redis has an empty script cache). The number of
 * keys is given per call.
 */
export const SCRIPT_DEFINITIONS = {
  sseRelayAppend: { lua: APPEND },
  sseRelayAppendFenced: { lua: APPEND_FENCED },
  sseRelayLock: { lua: LOCK },
  sseRelayUnlock: { lua: UNLOCK },
  sseRelayFenceState: { lua: FENCE_STATE, readOnly: true },
  sseRelayAgePlan: { lua: AGE_PLAN, readOnly: true },
  sseRelayPruneAge: { lua: PRUNE_AGE },
  sseRelayJoin: { lua: JOIN },
  sseRelaySweep: { lua: SWEEP },
  sseRelayResolve: { lua: RESOLVE },
  sseRelayReadTopics: { lua: READ_TOPICS, readOnly: true },
  sseRelayReadAll: { lua: READ_ALL, readOnly: true },
  sseRelayTopicStats: { lua: TOPIC_STATS, readOnly: true },
} as const;

type ScriptName = keyof typeof SCRIPT_DEFINITIONS;
type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>;

function run(client: RedisClient, name: ScriptName, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  return (client as unknown as Record<ScriptName, ScriptCommand>)[name](keys.length, ...keys, ...args);
}

/** One batch for {@link RedisScripts.append}. */
export interface AppendBatch {
  /** Base seq of a data set this batch would start. */
  readonly base: number;
  /** Count limit per topic (0: none). */
  readonly maxMessagesPerTopic: number;
  /** Messages one topic may prune in this call at most. */
  readonly pruneBudget: number;
  /** Every topic of the batch, once. */
  readonly topics: readonly string[];
  /** The messages' values, seven each, as codec.ts `encodeDraft` gives them. */
  readonly values: readonly (string | number)[];
}

/** What a reader's position script reports. */
export interface JoinReply {
  /** The position registered: the one given, or the last seq issued. */
  readonly position: string;
  /** `base` of the data set, '' when there is none yet. */
  readonly base: string;
  /** True when the node was still registered as live. */
  readonly wasRegistered: boolean;
  /** Sharded: the last multi-shard ticket at that position (0: none). */
  readonly ticket: number;
}

/** The retained count of a topic, and its first and last seqs with their custom ids ('' for none). */
export type TopicStatsReply = [count: number, firstSeq?: string, firstId?: string, lastSeq?: string, lastId?: string];

/**
 * Typed calls of the store's scripts on the data set of `keys`: each builds its own KEYS and
 * ARGV, so their layout is known in this file only.
 */
export class RedisScripts {
  constructor(private readonly keys: RedisKeys) {}

  /** Appends a batch atomically; resolves with the first seq (the others follow) and `base`. */
  async append(client: RedisClient, batch: AppendBatch): Promise<{ first: number; base: string }> {
    const [first, base] = (await run(
      client,
      'sseRelayAppend',
      this.keysWithTopics(batch.topics),
      [...batch.topics, batch.base, batch.maxMessagesPerTopic, batch.pruneBudget, ...batch.values],
    )) as [number, string];
    return { first, base };
  }

  /**
   * Sharded: appends a batch under this shard's lock (see APPEND_FENCED); `tickets` has one entry
   * per message, undefined for a message of this shard alone. Rejects with `FENCED` when the
   * lock no longer holds `token`.
   */
  async appendFenced(client: RedisClient, batch: AppendBatch, token: string, tickets: readonly (number | undefined)[]): Promise<{ first: number; base: string }> {
    const values: (string | number)[] = [];
    for (let i = 0; i < tickets.length; i++) {
      for (let j = 0; j < APPEND_VALUES_PER_MESSAGE; j++) values.push(batch.values[i * APPEND_VALUES_PER_MESSAGE + j]!);
      values.push(tickets[i] ?? '');
    }
    const [first, base] = (await run(
      client,
      'sseRelayAppendFenced',
      [...this.keysWithTopics(batch.topics), this.keys.lock],
      [...batch.topics, batch.base, batch.maxMessagesPerTopic, batch.pruneBudget, token, ...values],
    )) as [number, string];
    return { first, base };
  }

  /** Sharded: takes the lock with `token` for `leaseMs`; see LOCK. */
  async lock(client: RedisClient, token: string, leaseMs: number): Promise<{ taken: true; ticket: number } | { taken: false; leftMs: number }> {
    const [taken, value] = (await run(client, 'sseRelayLock', [this.keys.lock, this.keys.meta], [token, leaseMs])) as [number, string | number];
    return taken === 1 ? { taken: true, ticket: Number(value) } : { taken: false, leftMs: Number(value) };
  }

  /** Sharded: releases the lock if `token` still holds it. */
  async unlock(client: RedisClient, token: string): Promise<void> {
    await run(client, 'sseRelayUnlock', [this.keys.lock], [token]);
  }

  /** Sharded: the last ticket and the lock's holder ('' when free); see FENCE_STATE. */
  async fenceState(client: RedisClient): Promise<{ ticket: number; holder: string }> {
    const [ticket, holder] = (await run(client, 'sseRelayFenceState', [this.keys.meta, this.keys.lock], [])) as [string, string];
    return { ticket: Number(ticket), holder };
  }

  /** One slice of age retention; resolves true when there is more to prune. */
  async pruneAge(client: RedisClient, cutoff: number, budget: number): Promise<boolean> {
    const [due, ...topics] = (await run(client, 'sseRelayAgePlan', [this.keys.meta, this.keys.log, this.keys.dead], [cutoff, budget])) as [number, ...string[]];
    if (due === 0) return false;
    const [, more] = (await run(client, 'sseRelayPruneAge', this.keysWithTopics(topics), [...topics, cutoff, budget])) as [number, number];
    return more === 1;
  }

  /** Registers a node's read loop at `position` ('' = the last seq issued). */
  async join(client: RedisClient, nodeId: string, position: string, ttlMs: number): Promise<JoinReply> {
    const [registered, base, was, ticket] = (await run(
      client,
      'sseRelayJoin',
      [this.keys.seq, this.keys.meta, this.keys.readers, this.keys.readerPrefix + nodeId],
      [nodeId, position, ttlMs],
    )) as [string, string, number, string];
    return { position: registered, base, wasRegistered: was === 1, ticket: Number(ticket) };
  }

  /**
   * Heartbeat of a reader at `position()` and sweep of dead bodies; resolves with `base`, or
   * undefined when `position()` is undefined by the time the script is sent (the reader left
   * meanwhile: a heartbeat sent after its leave would register it again).
   */
  async sweep(client: RedisClient, nodeId: string, position: () => number | undefined, ttlMs: number, budget: number): Promise<string | undefined> {
    const { readers, dead, log, meta, readerPrefix } = this.keys;
    const nodes = [nodeId, ...(await client.hkeys(readers)).filter((id) => id !== nodeId)];
    const at = position();
    if (at === undefined) return undefined;
    const [, base] = (await run(
      client,
      'sseRelaySweep',
      [readers, dead, log, meta, ...nodes.map((id) => readerPrefix + id)],
      [at, ttlMs, budget, ...nodes],
    )) as [number, string];
    return base;
  }

  /** The fixed keys of the prune prelude, then the keys of `topics`. */
  private keysWithTopics(topics: readonly string[]): string[] {
    const { seq, meta, log, ids, refs, wm, dead, idOf, topicPrefix } = this.keys;
    return [seq, meta, log, ids, refs, wm, dead, idOf, ...topics.map((t) => topicPrefix + t)];
  }

  /**
   * Resolves a Last-Event-ID for `topics` (undefined: all). `numeric`: the id is a decimal safe
   * integer, read only as a seq. Resolves with the seq ('' when unknown) and whether there is a gap.
   */
  async resolve(client: RedisClient, lastEventId: string, numeric: boolean | 'start', topics: readonly string[] | undefined): Promise<{ seq: string; gap: boolean }> {
    const { seq, meta, ids, wm } = this.keys;
    const [found, gap] = (await run(
      client,
      'sseRelayResolve',
      [seq, meta, ids, wm],
      [lastEventId, numeric === 'start' ? '2' : numeric ? '1' : '0', topics === undefined ? '1' : '0', ...new Set(topics)],
    )) as [string, number];
    return { seq: found, gap: gap === 1 };
  }

  /** Retained history of some topics after `afterSeq`, oldest first. */
  readTopics(client: RedisClient, topics: readonly string[], afterSeq: number, limit: number): Promise<StreamEntry[]> {
    const keys = [this.keys.log, ...[...new Set(topics)].map((t) => this.keys.topicPrefix + t)];
    return run(client, 'sseRelayReadTopics', keys, [afterSeq, limit]) as Promise<StreamEntry[]>;
  }

  /**
   * Retained history of every topic after `afterSeq`, scanning at most `budget` entries:
   * resolves with the entries, the last seq scanned and whether the end of the log was reached.
   */
  async readAll(client: RedisClient, afterSeq: number, limit: number, budget: number): Promise<{ entries: StreamEntry[]; last: number; end: boolean }> {
    const [entries, last, end] = (await run(client, 'sseRelayReadAll', [this.keys.log, this.keys.dead, this.keys.meta], [afterSeq, limit, budget])) as [StreamEntry[], string, number];
    return { entries, last: Number(last), end: end === 1 };
  }

  /** What one topic retains. */
  topicStats(client: RedisClient, topic: string): Promise<TopicStatsReply> {
    return run(client, 'sseRelayTopicStats', [this.keys.log, this.keys.topicPrefix + topic], []) as Promise<TopicStatsReply>;
  }
}
