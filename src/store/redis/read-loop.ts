import type { Message } from '../../hub/message.js';
import type { AppendListener } from '../store.js';
import { decodeEntry, type StreamEntry } from './codec.js';
import { describeError, type RedisClient, type RedisStoreLog } from './connection.js';
import type { RedisKeys, RedisScripts } from './scripts.js';

/** Entries one XREAD returns at most. */
const READ_COUNT = 1000;
/**
 * How long the read loop's XREAD blocks. Bounded so that a dead server is noticed (no reply
 * within BLOCK + command timeout destroys the socket) and the loop sees `stop()`.
 */
export const BLOCK_MS = 1000;
/**
 * A node that has not reported its read position for this long is taken for dead: the sweep
 * no longer waits for it. A node partitioned from Redis longer than this may miss messages
 * that were pruned meanwhile (it logs a warning when it is back).
 */
export const READER_TTL_MS = 30_000;

/** What the read loop is plugged into. */
export interface ReadLoopOptions {
  /** The connection the loop blocks on; no other command may wait behind its XREAD. */
  readonly reader: RedisClient;
  /**
   * The connection every write of this node's entry in the readers hash goes over (join, leave,
   * and the store's heartbeat): one connection runs them in the order they were sent, so the
   * last one sent is what the hash holds. It is never blocked, so a join does not wait behind
   * the reader's XREAD.
   */
  readonly commands: RedisClient;
  readonly keys: RedisKeys;
  readonly scripts: RedisScripts;
  readonly nodeId: string;
  /** Where Redis is, for log lines. */
  readonly where: () => string;
  readonly log: RedisStoreLog;
  /** Receives each message once, in seq order. */
  readonly listener: () => AppendListener;
  /** Told when Redis holds another data set than the one this node worked on. */
  readonly dataSetLost: () => void;
  /** Called after each dispatched slice, with `lastDispatched` advanced. */
  readonly dispatched: () => void;
}

/**
 * This node's position in the data set and the one loop advancing it: a blocking XREAD on its
 * own connection passes every committed message, this node's and the others', to the
 * listener once, in stream (= seq) order. After a lost connection it registers again and
 * reads on after the last seq it dispatched, so nothing is skipped or dispatched twice.
 *
 * Registration (the readers hash, which retention's sweep waits for) is changed by joins,
 * leaves (pause) and heartbeats, all sent on `commands`: the hash ends as the last one sent
 * says. A join's reply is applied only when no pause or follow came after it was sent
 * (`epoch`), so a loop paused during a rejoin stays paused and registered nowhere.
 */
export class ReadLoop {
  /** The highest seq dispatched in the current data set; -1 until the loop joined. */
  lastDispatched = -1;
  /**
   * The highest seq this node has seen in any data set. A data set it starts begins above it,
   * so an id a client kept from before never names a message of the new one.
   */
  highestSeen = 0;
  /**
   * False from a failed read until the next successful join. On a cluster the client stays
   * connected while the one master holding the data set is down: this is what says so.
   */
  healthy = true;
  /** Sharded: the last multi-shard ticket at the position of the last join (see JOIN). */
  joinedTicket = 0;
  /** Bumped when the data set changes: a read issued before must not move `lastDispatched`. */
  private dataSetGeneration = 0;
  /** `base` of the data set, to notice a Redis that came back empty. */
  private base: string | undefined;
  private stopping = false;
  /**
   * Node-local interest (sharded store): no local subscription needs this shard, so the loop
   * does not read it. Set by {@link pause}, cleared by {@link follow}.
   */
  paused = false;
  /** A {@link follow} is registering: appends accepted meanwhile wait for dispatch. */
  joining = false;
  /** Registered as a reader in the current data set, reading on from `lastDispatched`. */
  private joined = false;
  /** Bumped by every pause and follow: a join sent before one of them is superseded. */
  private epoch = 0;
  /**
   * The readers hash may hold this node (a join was sent since the last leave). A paused loop
   * owes a leave while this is true; {@link settleRegistration} sends it once it can.
   */
  private registered = false;
  private done: Promise<void> | undefined;
  /** Wakes the loop when its connection is ready again, or it stops. */
  private wake: (() => void) | undefined;

  constructor(private readonly options: ReadLoopOptions) {
    const wake = (): void => {
      if (!this.paused) this.wake?.();
    };
    options.reader.on('ready', wake);
    options.commands.on('ready', wake);
  }

  /** Runs the loop until `stop()`. */
  start(): void {
    this.done ??= this.run();
  }

  /** Ends the loop and disconnects its connection, which ends a pending XREAD. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.options.reader.disconnect();
    this.wake?.();
    await this.done;
  }

  /**
   * (Re)registers the read loop; sets `lastDispatched` the first time. Resolves false, changing
   * nothing, when a pause or follow came while it was on its way (they decide the position).
   */
  async join(): Promise<boolean> {
    const { scripts, commands, nodeId } = this.options;
    const epoch = this.epoch;
    const position = this.lastDispatched >= 0 ? String(this.lastDispatched) : '';
    this.registered = true;
    const reply = await scripts.join(commands, nodeId, position, READER_TTL_MS);
    if (epoch !== this.epoch) return false;
    this.healthy = true;
    this.joinedTicket = reply.ticket;
    const lost = this.noteBase(reply.base);
    if (this.lastDispatched < 0) {
      this.lastDispatched = Number(reply.position);
      this.highestSeen = Math.max(this.highestSeen, this.lastDispatched);
      return true;
    }
    if (!lost && !reply.wasRegistered && this.base !== undefined) {
      this.options.log('warn', `This node was away from Redis for more than ${READER_TTL_MS / 1000} s: messages pruned meanwhile may not have reached its subscribers`);
    }
    this.options.log('info', `Resuming dispatch from Redis after seq ${this.lastDispatched}`);
    return true;
  }

  /**
   * Remembers which data set this node works on (its `base`); true when Redis now holds
   * another one (or none): it lost its data, in a restart without persistence or a flush.
   */
  noteBase(base: string): boolean {
    const known = this.base;
    this.base = base === '' ? undefined : base;
    if (known === undefined || base === known) return false;
    this.options.log('warn', `Redis at ${this.options.where()} lost its data (restarted without persistence, or flushed): earlier history is gone and resuming clients are told of a gap`);
    // The new data set was started by whichever node published first, from its clock and what
    // it had seen: its seqs may lie below this node's watermark, and reading on from there
    // would skip them. Read the new data set from its start instead.
    const start = base === '' ? 0 : Number(base);
    if (start < this.lastDispatched) {
      this.lastDispatched = start;
      this.dataSetGeneration++;
    }
    this.options.dataSetLost();
    return true;
  }

  /**
   * Stops reading (nobody on this node needs the shard) and leaves the readers hash, so that
   * sweeps do not wait for this node. A read in flight stays in flight: its reply is dropped
   * while paused, and read by a {@link follow} that comes before it (from where that follow
   * starts), which spares a quick re-follow the wait for a new read behind the old one.
   */
  pause(): void {
    this.paused = true;
    this.epoch++;
    // `healthy` speaks of reads, and none happen while paused: a failed read must not leave the
    // shard refusing publishes until a subscriber needs it again (nothing would rejoin it). A
    // master that is really down shows in the publish's own reply (503 within the timeout).
    this.healthy = true;
    this.joined = false;
    this.joining = false;
    this.lastDispatched = -1;
    this.settleRegistration();
  }

  /**
   * Sends the leave a paused loop owes, when its connection can take it now (else the store's
   * next tick calls this again). Sent after every join before it, on the same connection.
   */
  settleRegistration(): void {
    const { commands, keys, nodeId } = this.options;
    if (!this.paused || !this.registered || commands.status !== 'ready') return;
    this.registered = false;
    void Promise.all([commands.hdel(keys.readers, nodeId), commands.del(keys.readerPrefix + nodeId)]).catch(() => {
      if (this.paused) this.registered = true;
    });
  }

  /**
   * The position to report in a heartbeat, checked when the heartbeat is sent: undefined while
   * paused (a heartbeat would register the node again) or before the first join.
   */
  heartbeatPosition(): number | undefined {
    return this.paused || this.lastDispatched < 0 ? undefined : this.lastDispatched;
  }

  /**
   * Reads again, from the shard's current position (what was published while paused was for
   * nobody here). Resolves with that position once registered; rejects when Redis refuses.
   * The join goes over `commands`, so it never waits for an XREAD in flight. One at a time,
   * and not overlapped by a pause (the sharded store leaves a shard only once its follow
   * resolved); should one come, the later call decides and this one resolves with what it set.
   */
  async follow(): Promise<number> {
    const epoch = ++this.epoch;
    this.lastDispatched = -1;
    this.joining = true;
    this.registered = true;
    let reply: Awaited<ReturnType<RedisScripts['join']>>;
    try {
      reply = await this.options.scripts.join(this.options.commands, this.options.nodeId, '', READER_TTL_MS);
    } finally {
      if (epoch === this.epoch) this.joining = false;
    }
    // A pause (or another follow) came meanwhile: it decides.
    if (epoch !== this.epoch) return this.lastDispatched;
    this.healthy = true;
    this.joinedTicket = reply.ticket;
    this.noteBase(reply.base);
    this.lastDispatched = Number(reply.position);
    this.highestSeen = Math.max(this.highestSeen, this.lastDispatched);
    this.joined = true;
    this.paused = false;
    this.wake?.();
    return this.lastDispatched;
  }

  /** A seq this node learnt from an append reply. */
  noteSeen(seq: number): void {
    if (seq > this.highestSeen) this.highestSeen = seq;
  }

  /** Everything committed, in seq order, exactly once. */
  private async run(): Promise<void> {
    const { reader, commands, keys } = this.options;
    this.joined = this.lastDispatched >= 0;
    while (!this.stopping) {
      // A join needs `commands`, a read `reader`.
      const down = reader.status !== 'ready' || (!this.joined && commands.status !== 'ready');
      if (down || this.paused) {
        if (reader.status !== 'ready') this.joined = false;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if ((reader.status === 'ready' && (this.joined || commands.status === 'ready') && !this.paused) || this.stopping) resolve();
        });
        this.wake = undefined;
        continue;
      }
      try {
        if (!this.joined) {
          // Superseded by a pause or follow while on its way: look again.
          if (await this.join()) this.joined = true;
          continue;
        }
        const generation = this.dataSetGeneration;
        const reply = await reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', keys.log, `${this.lastDispatched}-0`);
        // Nobody here needs what it read; a follow since then reads on from its own position.
        if (this.paused) continue;
        if (reply && this.base === undefined) {
          // The first messages of a data set this node has not seen begin: learn which one it
          // is before dispatching, or a flush before the next prune tick would go unnoticed.
          // What was read is dispatched even when this fails (Redis went away meanwhile).
          await reader.hget(keys.meta, 'base').then(
            (base) => this.noteBase(base ?? ''),
            () => {},
          );
        }
        // Read from a position of the lost data set: the next read starts where the new one does.
        if (reply && generation === this.dataSetGeneration && !this.paused) this.dispatch(reply[0]![1] as StreamEntry[]);
      } catch (error) {
        if (this.stopping) return;
        // The connection may already be back: register again before reading on.
        this.joined = false;
        // A read discarded by pause() says nothing the paused shard's publishes need.
        if (!this.paused) this.healthy = false;
        // Connection errors end up in the wait above. A server answering with an error (e.g.
        // WRONGTYPE: someone else's key under our prefix) must not spin: wait one block.
        if (reader.status === 'ready' && commands.status === 'ready') {
          this.options.log('error', `Reading from Redis failed: ${describeError(error)}`);
          await new Promise((resolve) => setTimeout(resolve, BLOCK_MS));
        }
      }
    }
  }

  private dispatch(entries: readonly StreamEntry[]): void {
    const listener = this.options.listener();
    for (const entry of entries) {
      const message: Message = decodeEntry(entry);
      // Stream ids increase, and XREAD starts after lastDispatched: this is only defensive.
      if (message.seq <= this.lastDispatched) continue;
      this.lastDispatched = message.seq;
      if (message.seq > this.highestSeen) this.highestSeen = message.seq;
      try {
        listener(message);
      } catch (error) {
        // As in the SQLite store: a throwing dispatcher is a bug that must not stall the loop.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    this.options.dispatched();
  }
}
