import { createHash } from 'node:crypto';
import type { Message } from '../../hub/message.js';
import { isSeqId, positionId, type AckOutcome, type ConsumerLog, type ConsumerStart, type ConsumerState } from '../consumer-log.js';
import type { ReadQuery } from '../store.js';
import type { RedisClient, RedisStoreLog } from './connection.js';

/**
 * A consumer script run by its SHA1, its source sent only when the server does not know it.
 * Not one of the store's `defineCommand` scripts: holding must be able to load its script
 * ahead (see `refresh`), so that a hold is always one command in order with the others.
 */
class ConsumerScript {
  private readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(client: RedisClient, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      // A restarted (or flushed) Redis has an empty script cache.
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/**
 * Lua helpers shared by the scripts. A consumer is a JSON value in the topic's consumers hash;
 * seqs travel as strings (cjson keeps 14 significant digits, a seq has 16). A held message is
 * a member of the topic's held sorted set scored by its seq: the JSON array
 * `[seq, id, topics, data, type, private, retry, time]`, the same bytes whichever node holds
 * it, so every node may hold every message it dispatches and ZADD NX keeps one copy.
 */
const LUA_HELPERS = `
local function lowestAck(hash)
  local lowest = nil
  local all = redis.call('HGETALL', hash)
  for i = 2, #all, 2 do
    local seq = tonumber(cjson.decode(all[i]).ackedSeq)
    if lowest == nil or seq < lowest then lowest = seq end
  end
  return lowest
end
local function releaseAcknowledged(hash, held)
  local lowest = lowestAck(hash)
  if lowest == nil then redis.call('DEL', held) else redis.call('ZREMRANGEBYSCORE', held, '-inf', lowest) end
end
local function releaseBeyondLimit(hash, held, name, c, max)
  local pending = redis.call('ZCOUNT', held, '(' .. c.ackedSeq, '+inf')
  if pending <= max then return false end
  local excess = pending - max
  local rows = redis.call('ZRANGEBYSCORE', held, '(' .. c.ackedSeq, '+inf', 'LIMIT', 0, excess)
  local first = cjson.decode(rows[1])
  local last = cjson.decode(rows[#rows])
  local lost = c.lost
  if lost == cjson.null then lost = nil end
  c.lost = { firstId = lost and lost.firstId or first[2], lastId = last[2], count = (lost and lost.count or 0) + excess }
  c.ackedSeq = last[1]
  c.ackedId = last[2]
  redis.call('HSET', hash, name, cjson.encode(c))
  return true
end
`;

/** KEYS: consumers hash, held zset. ARGV: seq, member, maxPending. */
const HOLD_LUA = `${LUA_HELPERS}
local lowest = lowestAck(KEYS[1])
-- No consumer yet: one is being created (its node holds before it exists); expiry drops it otherwise.
if lowest ~= nil and tonumber(ARGV[1]) <= lowest then return 0 end
redis.call('ZADD', KEYS[2], 'NX', ARGV[1], ARGV[2])
local released = false
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if releaseBeyondLimit(KEYS[1], KEYS[2], all[i], cjson.decode(all[i + 1]), tonumber(ARGV[3])) then released = true end
end
if released then releaseAcknowledged(KEYS[1], KEYS[2]) end
return 1`;

/** KEYS: consumers hash, held zset, topics set. ARGV: topic, name, new consumer JSON, now, maxPending, then score/member pairs. */
const ATTACH_LUA = `${LUA_HELPERS}
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local c
if raw then
  c = cjson.decode(raw)
  c.lastSeenAt = ARGV[4]
  redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(c))
else
  c = cjson.decode(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[1])
  for i = 6, #ARGV, 2 do redis.call('ZADD', KEYS[2], 'NX', ARGV[i], ARGV[i + 1]) end
  if releaseBeyondLimit(KEYS[1], KEYS[2], ARGV[2], c, tonumber(ARGV[5])) then releaseAcknowledged(KEYS[1], KEYS[2]) end
end
return { cjson.encode(c), redis.call('ZCOUNT', KEYS[2], '(' .. c.ackedSeq, '+inf') }`;

/** KEYS: consumers hash, held zset. ARGV: name, id, seq of a hub id or '', now. */
const ACK_LUA = `${LUA_HELPERS}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'no-consumer' } end
local c = cjson.decode(raw)
local target = nil
local rows
if ARGV[3] ~= '' then rows = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], ARGV[3]) else rows = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. c.ackedSeq, '+inf') end
for _, row in ipairs(rows) do
  local m = cjson.decode(row)
  if m[2] == ARGV[2] and tonumber(m[1]) > tonumber(c.ackedSeq) then target = m end
end
if not target then
  local kind = 'unknown'
  if ARGV[3] ~= '' and tonumber(ARGV[3]) <= tonumber(c.ackedSeq) then kind = 'behind' end
  return { kind, raw, redis.call('ZCOUNT', KEYS[2], '(' .. c.ackedSeq, '+inf') }
end
c.ackedSeq = target[1]
c.ackedId = target[2]
c.lost = nil
c.lastSeenAt = ARGV[4]
local encoded = cjson.encode(c)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
releaseAcknowledged(KEYS[1], KEYS[2])
return { 'acked', encoded, redis.call('ZCOUNT', KEYS[2], '(' .. c.ackedSeq, '+inf') }`;

/** KEYS: consumers hash. ARGV: now, then names. */
const TOUCH_LUA = `
for i = 2, #ARGV do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local c = cjson.decode(raw)
    c.lastSeenAt = ARGV[1]
    redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(c))
  end
end
return 0`;

/** KEYS: consumers hash, held zset, topics set. ARGV: topic, before. Returns how many expired. */
const EXPIRE_LUA = `${LUA_HELPERS}
local all = redis.call('HGETALL', KEYS[1])
local expired = 0
for i = 1, #all, 2 do
  if tonumber(cjson.decode(all[i + 1]).lastSeenAt) < tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], all[i])
    expired = expired + 1
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[3], ARGV[1]) end
releaseAcknowledged(KEYS[1], KEYS[2])
return expired`;

const SCRIPTS = {
  hold: new ConsumerScript(HOLD_LUA),
  attach: new ConsumerScript(ATTACH_LUA),
  ack: new ConsumerScript(ACK_LUA),
  touch: new ConsumerScript(TOUCH_LUA),
  expire: new ConsumerScript(EXPIRE_LUA),
} as const;

/** A consumer as the scripts keep it. */
interface StoredConsumer {
  owner: string | null;
  ackedSeq: string;
  ackedId: string;
  lastSeenAt: string;
  lost?: { firstId: string; lastId: string; count: number } | null;
}

type HeldMember = [seq: string, id: string, topics: string[], data: string, type: string | null, priv: boolean | null, retry: number | null, time: number];

/** How often a node rereads which topics have consumers (created on other nodes). */
const TOPICS_REFRESH_MS = 1000;

/**
 * The Redis store's consumers, in the store's Redis under its key prefix: `consumers:<topic>`
 * (hash of consumers), `held:<topic>` (sorted set of held messages), `consumer-topics` (set).
 * Every node holds, from its read loop, each message of a topic with consumers, before
 * dispatching it (the same member on every node: one copy). A consumer created on another node
 * is known here within {@link TOPICS_REFRESH_MS}; the node that created it holds at once.
 */
export class RedisConsumerLog implements ConsumerLog {
  private readonly heldTopics = new Set<string>();
  /** Topics whose consumer this node is creating: held whatever a refresh reads meanwhile. */
  private readonly attaching = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly prefix: string,
    private readonly maxPending: number,
    /** The command client once connected; throws HUB_ERR_STORE_UNAVAILABLE otherwise. */
    private readonly client: () => RedisClient,
    /** Runs a command, mapping failures to the hub's codes. */
    private readonly guard: <T>(work: Promise<T>) => Promise<T>,
    /** The store's read of retained history. */
    private readonly read: (query: ReadQuery) => Promise<Message[]>,
    /**
     * The command client whether or not the store accepts work: a closing store still
     * dispatches what Redis accepted, and each of those messages must still be held.
     */
    private readonly holdClient: () => RedisClient | undefined,
    private readonly log: RedisStoreLog,
  ) {}

  /** Starts following which topics have consumers. */
  async open(): Promise<void> {
    await this.refresh().catch(() => {});
    this.refreshTimer ??= setInterval(() => void this.refresh().catch(() => {}), TOPICS_REFRESH_MS);
    this.refreshTimer.unref();
  }

  close(): void {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  /**
   * Called by the store's read loop for each message before dispatching it. Never throws: the
   * loop must dispatch the message whatever happens to its hold.
   */
  hold(message: Message): void {
    if (this.heldTopics.size === 0) return;
    for (const topic of new Set(message.topics)) {
      if (!this.heldTopics.has(topic)) continue;
      const client = this.holdClient();
      if (client === undefined) {
        this.holdFailed(topic, message, 'not connected');
        continue;
      }
      // Sent before the message is dispatched and its publisher answered; a node killed after
      // that leaves the command in its socket, which the kernel still delivers.
      SCRIPTS.hold
        .run(client, [this.hash(topic), this.held(topic)], [String(message.seq), member(message), String(this.maxPending)])
        .catch((error: unknown) => this.holdFailed(topic, message, error instanceof Error ? error.message : String(error)));
    }
  }

  /** Another node holds it too when it follows the topic; otherwise its consumers miss it on replay. */
  private holdFailed(topic: string, message: Message, reason: string): void {
    this.log('error', `A message could not be held for the consumers of its topic: ${reason}`, { topic: topic.slice(0, 200), seq: message.seq });
  }

  async attach(topic: string, name: string, start: ConsumerStart, now: number): Promise<ConsumerState> {
    // Held from now on by this node's read loop, so nothing dispatched while the retained
    // messages are read escapes (ZADD NX: what both bring is held once).
    this.heldTopics.add(topic);
    this.attaching.set(topic, (this.attaching.get(topic) ?? 0) + 1);
    try {
      return await this.attachHeld(topic, name, start, now);
    } finally {
      const left = this.attaching.get(topic)! - 1;
      if (left === 0) this.attaching.delete(topic);
      else this.attaching.set(topic, left);
    }
  }

  private async attachHeld(topic: string, name: string, start: ConsumerStart, now: number): Promise<ConsumerState> {
    await this.guard(this.client().script('LOAD', HOLD_LUA));
    const retained: Message[] = [];
    for (let afterSeq = start.afterSeq; ; ) {
      const page = await this.read({ afterSeq, topics: [topic], limit: 1000 });
      retained.push(...page);
      if (page.length < 1000) break;
      afterSeq = page[page.length - 1]!.seq;
    }
    const fresh: StoredConsumer = { owner: start.owner, ackedSeq: String(start.afterSeq), ackedId: positionId(start.afterSeq), lastSeenAt: String(now) };
    const args = [topic, name, JSON.stringify(fresh), String(now), String(this.maxPending)];
    for (const message of retained) args.push(String(message.seq), member(message));
    const [raw, pending] = (await this.script(SCRIPTS.attach, [this.hash(topic), this.held(topic), this.topicsKey], args)) as [string, number];
    return toState(topic, name, raw, pending);
  }

  async get(topic: string, name: string): Promise<ConsumerState | undefined> {
    const raw = await this.guard(this.client().hget(this.hash(topic), name));
    if (raw === null) return undefined;
    return toState(topic, name, raw, await this.pendingAfter(topic, (JSON.parse(raw) as StoredConsumer).ackedSeq));
  }

  async list(topic: string): Promise<ConsumerState[]> {
    const all = await this.guard(this.client().hgetall(this.hash(topic)));
    const states: ConsumerState[] = [];
    for (const name of Object.keys(all).sort()) {
      const raw = all[name]!;
      states.push(toState(topic, name, raw, await this.pendingAfter(topic, (JSON.parse(raw) as StoredConsumer).ackedSeq)));
    }
    return states;
  }

  async readPending(topic: string, afterSeq: number, limit: number): Promise<Message[]> {
    const rows = await this.guard(this.client().zrangebyscore(this.held(topic), `(${afterSeq}`, '+inf', 'LIMIT', 0, limit));
    return rows.map(fromMember);
  }

  async ack(topic: string, name: string, id: string, now: number): Promise<AckOutcome> {
    const reply = (await this.script(SCRIPTS.ack, [this.hash(topic), this.held(topic)], [name, id, isSeqId(id) ? id : '', String(now)])) as [string, string?, number?];
    const kind = reply[0] as AckOutcome['kind'];
    if (kind === 'no-consumer') return { kind };
    return { kind, state: toState(topic, name, reply[1]!, reply[2]!) } as AckOutcome;
  }

  async touch(consumers: readonly { topic: string; name: string }[], now: number): Promise<void> {
    const byTopic = new Map<string, string[]>();
    for (const { topic, name } of consumers) byTopic.set(topic, [...(byTopic.get(topic) ?? []), name]);
    for (const [topic, names] of byTopic) await this.script(SCRIPTS.touch, [this.hash(topic)], [String(now), ...names]);
  }

  async expire(before: number): Promise<number> {
    const topics = await this.guard(this.client().smembers(this.topicsKey));
    let expired = 0;
    for (const topic of topics) {
      expired += Number(await this.script(SCRIPTS.expire, [this.hash(topic), this.held(topic), this.topicsKey], [topic, String(before)]));
    }
    await this.refresh();
    return expired;
  }

  private async refresh(): Promise<void> {
    const topics = await this.guard(this.client().smembers(this.topicsKey));
    this.heldTopics.clear();
    for (const topic of topics) this.heldTopics.add(topic);
    // A consumer being created here is in the set only once its script ran.
    for (const topic of this.attaching.keys()) this.heldTopics.add(topic);
    // Holding goes by SHA: a Redis whose script cache is empty (restarted) would answer
    // NOSCRIPT and the source would follow, after the commands sent meanwhile. Loaded ahead,
    // a hold is one command, in order with the publisher's answer.
    if (topics.length > 0) await this.guard(this.client().script('LOAD', HOLD_LUA));
  }

  private pendingAfter(topic: string, ackedSeq: string): Promise<number> {
    return this.guard(this.client().zcount(this.held(topic), `(${ackedSeq}`, '+inf'));
  }

  private script(script: ConsumerScript, keys: string[], args: string[]): Promise<unknown> {
    return this.guard(script.run(this.client(), keys, args));
  }

  private get topicsKey(): string {
    return `${this.prefix}consumer-topics`;
  }

  private hash(topic: string): string {
    return `${this.prefix}consumers:${topic}`;
  }

  private held(topic: string): string {
    return `${this.prefix}held:${topic}`;
  }
}

function member(m: Message): string {
  const row: HeldMember = [String(m.seq), m.id, [...m.topics], m.data, m.type ?? null, m.private ?? null, m.retry ?? null, m.time];
  return JSON.stringify(row);
}

function fromMember(raw: string): Message {
  const [seq, id, topics, data, type, priv, retry, time] = JSON.parse(raw) as HeldMember;
  return { seq: Number(seq), id, topics, data, type: type ?? undefined, private: priv ?? undefined, retry: retry ?? undefined, time };
}

function toState(topic: string, name: string, raw: string, pending: number): ConsumerState {
  const c = JSON.parse(raw) as StoredConsumer;
  return {
    topic,
    name,
    owner: c.owner ?? null,
    ackedSeq: Number(c.ackedSeq),
    ackedId: c.ackedId,
    pending: Number(pending),
    lastSeenAt: Number(c.lastSeenAt),
    lost: c.lost ? { firstId: c.lost.firstId, lastId: c.lost.lastId, count: c.lost.count } : null,
  };
}
