import type Database from 'better-sqlite3';
import type { Message } from '../hub/message.js';
import { isSeqId, positionId, type AckOutcome, type ConsumerLog, type ConsumerStart, type ConsumerState } from './consumer-log.js';
import { messageOfRow, type MessageRow } from './sqlite-message-row.js';

type Db = Database.Database;

/**
 * The schema of consumers (migration 2 of the SQLite store). Held messages are copies: the
 * store's retention deletes from `messages` without asking who holds what, and a copy per held
 * topic is what keeps retention's hot path unaware of consumers.
 */
export function createConsumerTables(db: Db): void {
  db.exec(`
    CREATE TABLE consumers (
      topic TEXT NOT NULL,
      name TEXT NOT NULL,
      owner TEXT,
      acked_seq INTEGER NOT NULL,
      acked_id TEXT NOT NULL,
      pending INTEGER NOT NULL,     -- held rows of the topic after acked_seq
      last_seen INTEGER NOT NULL,
      lost_first TEXT,
      lost_last TEXT,
      lost_count INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (topic, name)
    ) WITHOUT ROWID;
    -- Messages of a topic after the lowest ack of its consumers; columns as in messages.
    CREATE TABLE consumer_held (
      topic TEXT NOT NULL,
      seq INTEGER NOT NULL,
      id TEXT,
      topics TEXT NOT NULL,
      type TEXT,
      private INTEGER,
      retry INTEGER,
      time INTEGER NOT NULL,
      data TEXT NOT NULL,
      PRIMARY KEY (topic, seq)
    );
  `);
}

interface ConsumerRow {
  topic: string;
  name: string;
  owner: string | null;
  acked_seq: number;
  acked_id: string;
  pending: number;
  last_seen: number;
  lost_first: string | null;
  lost_last: string | null;
  lost_count: number;
}

const HELD_COLUMNS = 'seq, id, topics, type, private, retry, time, data';

function prepare(db: Db) {
  return {
    heldTopics: db.prepare<[], string>('SELECT DISTINCT topic FROM consumers').pluck(),
    get: db.prepare<[string, string], ConsumerRow>('SELECT * FROM consumers WHERE topic = ? AND name = ?'),
    list: db.prepare<[string], ConsumerRow>('SELECT * FROM consumers WHERE topic = ? ORDER BY name'),
    insert: db.prepare<[string, string, string | null, number, string, number]>(
      'INSERT INTO consumers (topic, name, owner, acked_seq, acked_id, pending, last_seen) VALUES (?, ?, ?, ?, ?, 0, ?)',
    ),
    copyRetained: db.prepare<{ topic: string; after: number }>(`
      INSERT INTO consumer_held (topic, ${HELD_COLUMNS})
        SELECT @topic, m.seq, m.id, m.topics, m.type, m.private, m.retry, m.time, m.data
        FROM message_topics mt JOIN messages m ON m.seq = mt.seq WHERE mt.topic = @topic AND mt.seq > @after
      ON CONFLICT DO NOTHING`),
    countPending: db.prepare<[string, number], number>('SELECT count(*) FROM consumer_held WHERE topic = ? AND seq > ?').pluck(),
    setPending: db.prepare<[number, string, string]>('UPDATE consumers SET pending = ? WHERE topic = ? AND name = ?'),
    holdOne: db.prepare<[string, number]>(`INSERT INTO consumer_held (topic, ${HELD_COLUMNS}) SELECT ?, ${HELD_COLUMNS} FROM messages WHERE seq = ?`),
    bumpPending: db.prepare<[string]>('UPDATE consumers SET pending = pending + 1 WHERE topic = ?'),
    overLimit: db.prepare<[string, number], ConsumerRow>('SELECT * FROM consumers WHERE topic = ? AND pending > ?'),
    nthPending: db.prepare<[string, number, number], { seq: number; id: string | null }>(
      'SELECT seq, id FROM consumer_held WHERE topic = ? AND seq > ? ORDER BY seq LIMIT 1 OFFSET ?',
    ),
    release: db.prepare<[number, string, number, string, string, number, string, string]>(
      'UPDATE consumers SET acked_seq = ?, acked_id = ?, pending = ?, lost_first = ?, lost_last = ?, lost_count = ? WHERE topic = ? AND name = ?',
    ),
    // Without consumers the lowest ack is NULL: everything of the topic goes.
    releaseAcknowledged: db.prepare<{ topic: string }>(`
      DELETE FROM consumer_held WHERE topic = @topic
        AND seq <= coalesce((SELECT min(acked_seq) FROM consumers WHERE topic = @topic), 9007199254740991)`),
    readPending: db.prepare<[string, number, number], MessageRow>(
      `SELECT ${HELD_COLUMNS} FROM consumer_held WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    // A reused custom id names its latest message; a hub id is stored as NULL.
    findPending: db.prepare<{ topic: string; after: number; id: string; seq: number }, { seq: number; id: string | null }>(`
      SELECT seq, id FROM consumer_held WHERE topic = @topic AND seq > @after AND (id = @id OR (id IS NULL AND seq = @seq))
      ORDER BY seq DESC LIMIT 1`),
    ackTo: db.prepare<[number, string, number, string, string]>(`
      UPDATE consumers SET acked_seq = ?, acked_id = ?, lost_first = NULL, lost_last = NULL, lost_count = 0, last_seen = ?
      WHERE topic = ? AND name = ?`),
    touch: db.prepare<[number, string, string]>('UPDATE consumers SET last_seen = ? WHERE topic = ? AND name = ?'),
    expire: db.prepare<[number], string>('DELETE FROM consumers WHERE last_seen < ? RETURNING topic').pluck(),
  };
}

/**
 * The SQLite store's consumers, in the store's database: holding runs inside the append's
 * transaction, every other change in a transaction of its own, so a `kill -9` leaves either
 * the state before or after it.
 */
export class SqliteConsumerLog implements ConsumerLog {
  private statements: ReturnType<typeof prepare> | undefined;
  private db: Db | undefined;
  /** Topics with at least one consumer; only their appends pay for holding. */
  private readonly heldTopics = new Set<string>();

  constructor(
    private readonly maxPending: number,
    /** Runs work against the open database, mapping SQLite failures to the hub's codes. */
    private readonly guard: <T>(work: () => T) => T,
  ) {}

  /** Called by the store once its database is open and migrated. */
  bind(db: Db): void {
    this.db = db;
    this.statements = prepare(db);
    for (const topic of this.statements.heldTopics.all()) this.heldTopics.add(topic);
  }

  /** True when the topic has consumers: the store then calls {@link hold} in its transaction. */
  holds(topic: string): boolean {
    return this.heldTopics.size > 0 && this.heldTopics.has(topic);
  }

  /** Runs inside the append transaction, after the message row was inserted. */
  hold(topic: string, seq: number): void {
    const s = this.statements!;
    s.holdOne.run(topic, seq);
    s.bumpPending.run(topic);
    this.releaseBeyondLimit(topic);
  }

  async attach(topic: string, name: string, start: ConsumerStart, now: number): Promise<ConsumerState> {
    const held = this.heldTopics.has(topic);
    // Marked inside the transaction (no append can come between), unmarked if it rolled back.
    return this.transaction(() => {
      const s = this.statements!;
      const existing = s.get.get(topic, name);
      if (existing) {
        s.touch.run(now, topic, name);
        return toState({ ...existing, last_seen: now });
      }
      s.insert.run(topic, name, start.owner, start.afterSeq, positionId(start.afterSeq), now);
      s.copyRetained.run({ topic, after: start.afterSeq });
      s.setPending.run(s.countPending.get(topic, start.afterSeq) ?? 0, topic, name);
      this.releaseBeyondLimit(topic);
      this.heldTopics.add(topic);
      return toState(s.get.get(topic, name)!);
    }).catch((error: unknown) => {
      if (!held) this.heldTopics.delete(topic);
      throw error;
    });
  }

  async get(topic: string, name: string): Promise<ConsumerState | undefined> {
    return this.guard(() => {
      const row = this.ready().get.get(topic, name);
      return row ? toState(row) : undefined;
    });
  }

  async list(topic: string): Promise<ConsumerState[]> {
    return this.guard(() => this.ready().list.all(topic).map(toState));
  }

  async readPending(topic: string, afterSeq: number, limit: number): Promise<Message[]> {
    return this.guard(() => this.ready().readPending.all(topic, afterSeq, limit).map(messageOfRow));
  }

  ack(topic: string, name: string, id: string, now: number): Promise<AckOutcome> {
    return this.transaction((): AckOutcome => {
      const s = this.statements!;
      const row = s.get.get(topic, name);
      if (!row) return { kind: 'no-consumer' };
      const target = s.findPending.get({ topic, after: row.acked_seq, id, seq: isSeqId(id) ? Number(id) : -1 });
      if (!target) {
        const behind = isSeqId(id) && Number(id) <= row.acked_seq;
        return { kind: behind ? 'behind' : 'unknown', state: toState(row) };
      }
      s.ackTo.run(target.seq, target.id ?? String(target.seq), now, topic, name);
      s.setPending.run(s.countPending.get(topic, target.seq) ?? 0, topic, name);
      s.releaseAcknowledged.run({ topic });
      return { kind: 'acked', state: toState(s.get.get(topic, name)!) };
    });
  }

  touch(consumers: readonly { topic: string; name: string }[], now: number): Promise<void> {
    return this.transaction(() => {
      for (const { topic, name } of consumers) this.statements!.touch.run(now, topic, name);
    });
  }

  expire(before: number): Promise<number> {
    return this.transaction(() => {
      const s = this.statements!;
      const topics = s.expire.all(before);
      for (const topic of new Set(topics)) {
        s.releaseAcknowledged.run({ topic });
        if (s.list.all(topic).length === 0) this.heldTopics.delete(topic);
      }
      return topics.length;
    });
  }

  /** Past `maxPending`, moves each consumer's ack over its oldest pending messages, recorded as lost. */
  private releaseBeyondLimit(topic: string): void {
    const s = this.statements!;
    const over = s.overLimit.all(topic, this.maxPending);
    for (const row of over) {
      const excess = row.pending - this.maxPending;
      const oldest = s.nthPending.get(topic, row.acked_seq, 0)!;
      const newest = s.nthPending.get(topic, row.acked_seq, excess - 1)!;
      const newestId = newest.id ?? String(newest.seq);
      s.release.run(newest.seq, newestId, this.maxPending, row.lost_first ?? oldest.id ?? String(oldest.seq), newestId, row.lost_count + excess, topic, row.name);
    }
    if (over.length > 0) s.releaseAcknowledged.run({ topic });
  }

  private ready(): ReturnType<typeof prepare> {
    // The store's guard has checked it is open; statements exist once it opened.
    return this.statements!;
  }

  private async transaction<T>(work: () => T): Promise<T> {
    return this.guard(() => this.db!.transaction(work).immediate());
  }
}

function toState(row: ConsumerRow): ConsumerState {
  return {
    topic: row.topic,
    name: row.name,
    owner: row.owner,
    ackedSeq: row.acked_seq,
    ackedId: row.acked_id,
    pending: row.pending,
    lastSeenAt: row.last_seen,
    lost: row.lost_count > 0 ? { firstId: row.lost_first!, lastId: row.lost_last!, count: row.lost_count } : null,
  };
}
