import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { RelayError } from '../hub/errors.js';
import type { Message, MessageDraft } from '../hub/message.js';
import { RingBuffer } from './ring-buffer.js';
import type { AppendListener, Cursor, ReadQuery, RetentionOptions, Store, TopicStats } from './store.js';

/** Options of the SQLite store. */
export interface SqliteStoreOptions extends RetentionOptions {
  /** Directory holding `sse-relay.db` (and its `-wal`/`-shm` files); created when missing. */
  readonly dataDir: string;
  /**
   * When an acknowledged message is safe. `'normal'` (`PRAGMA synchronous=NORMAL`): it survives a
   * crash of the process, but the last commits may be lost on power loss; `'full'`
   * (`synchronous=FULL`): the WAL is fsynced at every commit, so it also survives power loss.
   */
  readonly fsync: 'normal' | 'full';
  /** How often retention runs in the background, in milliseconds (default 1000). */
  readonly pruneIntervalMs?: number;
}

/** The database file inside `dataDir`. */
export const SQLITE_FILE_NAME = 'sse-relay.db';

/**
 * Drafts committed in one transaction at most; the rest go in the next event-loop turn, so a
 * burst does not hold the loop for one long transaction.
 */
export const SQLITE_MAX_BATCH = 1000;
/**
 * Messages (or topic rows) retention deletes per transaction, so pruning never stalls the event
 * loop for long. Measured on the 2-core test machine with 200-byte messages: a slice of 2000
 * takes about 6 ms, a commit of 1000 drafts about 10 ms (WAL checkpoints add up to ~10 ms).
 */
const PRUNE_BATCH = 2000;
const DECIMAL_SEQ = /^[1-9][0-9]{0,15}$/;

type Db = Database.Database;

/**
 * Schema migrations, in order: `MIGRATIONS[v]` takes a database from version `v` to `v + 1`.
 * Append new ones; never edit one that has shipped.
 */
const MIGRATIONS: readonly ((db: Db) => void)[] = [
  (db) => {
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
      -- AUTOINCREMENT: a seq is never reused, even after every row was pruned.
      -- data is the last column: age pruning reads time without walking a large payload's
      -- overflow pages.
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time INTEGER NOT NULL,
        id TEXT,                -- the publisher's id; NULL means String(seq)
        -- Every topic, as a JSON array in publishing order (the first is canonical). Kept here,
        -- not derived from message_topics, because pruning removes a message from one topic
        -- while another still replays it with all its topics.
        topics TEXT NOT NULL,
        type TEXT,
        private INTEGER,        -- NULL (unset), 0 or 1
        retry INTEGER,
        data TEXT NOT NULL
      );
      -- Not unique: a publisher may reuse an id; it resolves to the latest message.
      CREATE INDEX messages_by_id ON messages (id) WHERE id IS NOT NULL;
      -- The topics that still retain a message: what reads by topic and retention work on.
      CREATE TABLE message_topics (
        topic TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (topic, seq)
      ) WITHOUT ROWID;
      CREATE INDEX message_topics_by_seq ON message_topics (seq);
      -- One row per topic with retained messages: its count and the highest seq pruned from it.
      CREATE TABLE topic_state (
        topic TEXT PRIMARY KEY,
        pruned_through INTEGER NOT NULL,
        retained INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
    // Seqs start from the creation time in microseconds, as in MemoryStore: a cursor from an
    // earlier database (deleted, or another store) is then below seq_base and known as foreign.
    const base = Date.now() * 1000;
    db.prepare(`INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)`).run(base);
    const setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    setMeta.run('seq_base', base);
    // The highest seq pruned from any topic: the gap answer for topics without state.
    setMeta.run('pruned_through', 0);
  },
];

/** The schema version this code writes; a database with a higher one is refused. */
export const SQLITE_SCHEMA_VERSION = MIGRATIONS.length;

interface PendingAppend {
  readonly draft: MessageDraft;
  readonly time: number;
  readonly resolve: (message: Message) => void;
  readonly reject: (error: unknown) => void;
}

interface MessageRow {
  seq: number;
  id: string | null;
  data: string;
  type: string | null;
  private: number | null;
  retry: number | null;
  time: number;
  topics: string;
}

const MESSAGE_COLUMNS = 'm.seq, m.id, m.topics, m.data, m.type, m.private, m.retry, m.time';

/** Every statement the store runs, prepared once at open. */
function prepareStatements(db: Db) {
  return {
    insertMessage: db.prepare<[string | null, string, string, string | null, number | null, number | null, number]>(
      'INSERT INTO messages (id, topics, data, type, private, retry, time) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    insertTopic: db.prepare<[string, number]>('INSERT INTO message_topics (topic, seq) VALUES (?, ?)'),
    // A topic that gets its first message starts from the global watermark, the answer it had
    // while it had no state: it may have had messages before, pruned together with that state.
    countAppended: db.prepare<{ topic: string; count: number }>(`
      INSERT INTO topic_state (topic, pruned_through, retained)
        VALUES (@topic, (SELECT value FROM meta WHERE key = 'pruned_through'), @count)
      ON CONFLICT (topic) DO UPDATE SET retained = retained + @count`),
    readAll: db.prepare<[number, number], MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.seq > ? ORDER BY m.seq LIMIT ?`,
    ),
    // One topic: a range scan of the primary key that stops at the limit, no sort.
    readTopic: db.prepare<[string, number, number], MessageRow>(`
      SELECT ${MESSAGE_COLUMNS} FROM message_topics mt JOIN messages m ON m.seq = mt.seq
      WHERE mt.topic = ? AND mt.seq > ? ORDER BY mt.seq LIMIT ?`),
    // Several topics, passed as one JSON array so the statement is prepared once for any count.
    readTopics: db.prepare<[string, number, number], MessageRow>(`
      SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.seq IN (
        SELECT DISTINCT seq FROM message_topics
        WHERE topic IN (SELECT value FROM json_each(?)) AND seq > ? ORDER BY seq LIMIT ?
      ) ORDER BY m.seq`),
    seqOfId: db.prepare<[string], number>('SELECT seq FROM messages WHERE id = ? ORDER BY seq DESC LIMIT 1').pluck(),
    lastSeq: db.prepare<[], number>(`SELECT seq FROM sqlite_sequence WHERE name = 'messages'`).pluck(),
    meta: db.prepare<[string], number>('SELECT value FROM meta WHERE key = ?').pluck(),
    raiseGlobalPruned: db.prepare<[number]>(`UPDATE meta SET value = max(value, ?) WHERE key = 'pruned_through'`),
    topicPruned: db.prepare<[string], number>('SELECT pruned_through FROM topic_state WHERE topic = ?').pluck(),
    topicRetained: db.prepare<[string], number>('SELECT retained FROM topic_state WHERE topic = ?').pluck(),
    topicsOverLimit: db.prepare<[number], string>('SELECT topic FROM topic_state WHERE retained > ?').pluck(),
    topicStats: db.prepare<[string], { retained: number; firstSeq: number; firstId: string | null; lastSeq: number; lastId: string | null }>(`
      SELECT s.retained, f.seq AS firstSeq, f.id AS firstId, l.seq AS lastSeq, l.id AS lastId
      FROM topic_state s
      JOIN messages f ON f.seq = (SELECT min(seq) FROM message_topics WHERE topic = s.topic)
      JOIN messages l ON l.seq = (SELECT max(seq) FROM message_topics WHERE topic = s.topic)
      WHERE s.topic = ?`),
    // Retention by count: the n-th oldest seq of a topic is the cut-off (everything up to it goes).
    nthOldestOfTopic: db.prepare<[string, number], number>(
      'SELECT seq FROM message_topics WHERE topic = ? ORDER BY seq LIMIT 1 OFFSET ?',
    ).pluck(),
    // Run before deleting the topic's rows: a message leaves when no other topic still holds it.
    deleteOrphansOfTopic: db.prepare<{ topic: string; cutoff: number }>(`
      DELETE FROM messages WHERE seq IN (SELECT seq FROM message_topics WHERE topic = @topic AND seq <= @cutoff)
        AND NOT EXISTS (SELECT 1 FROM message_topics o WHERE o.seq = messages.seq AND o.topic <> @topic)`),
    deleteTopicUpTo: db.prepare<[string, number]>('DELETE FROM message_topics WHERE topic = ? AND seq <= ?'),
    markPruned: db.prepare<[number, number, string]>(
      'UPDATE topic_state SET retained = retained - ?, pruned_through = max(pruned_through, ?) WHERE topic = ?',
    ),
    dropEmptyTopic: db.prepare<[string]>('DELETE FROM topic_state WHERE topic = ? AND retained <= 0'),
    // Retention by age: messages are in seq order and (nearly) in time order, so expiry eats the head.
    head: db.prepare<[], { seq: number; time: number }>('SELECT seq, time FROM messages ORDER BY seq'),
    topicsUpTo: db.prepare<[number], { topic: string; n: number; last: number }>(
      // INDEXED BY: without it the planner scans the whole table to avoid sorting for GROUP BY.
      'SELECT topic, count(*) AS n, max(seq) AS last FROM message_topics INDEXED BY message_topics_by_seq WHERE seq <= ? GROUP BY topic',
    ),
    deleteTopicsUpTo: db.prepare<[number]>('DELETE FROM message_topics WHERE seq <= ?'),
    deleteMessagesUpTo: db.prepare<[number]>('DELETE FROM messages WHERE seq <= ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * Durable history in one SQLite database (WAL mode) under `dataDir`. Appends queued within one
 * event-loop turn are committed in one transaction (group commit), so durability costs one
 * WAL write per turn, not per message. One hub process per database: the append listener only
 * sees this process's appends.
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  /** Path of the database file. */
  readonly file: string;
  private readonly options: Readonly<SqliteStoreOptions>;
  private listener: AppendListener = () => {};
  private db: Db | undefined;
  private statements!: Statements;
  private commitBatch!: (batch: readonly PendingAppend[]) => Message[];
  private pruneOnce!: () => boolean;
  private opening: Promise<void> | undefined;
  private seqBase = 0;
  private closed = false;
  private commits = 0;
  private readonly queue = new RingBuffer<PendingAppend>(1024);
  private flushImmediate: NodeJS.Immediate | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruneImmediate: NodeJS.Immediate | undefined;
  /** Topics known to hold more than `maxMessagesPerTopic`, pruned by the background timer. */
  private readonly overLimit = new Set<string>();

  constructor(options: SqliteStoreOptions) {
    this.options = Object.freeze({ ...options });
    this.file = path.join(options.dataDir, SQLITE_FILE_NAME);
  }

  /** Transactions that committed appends so far: one per group commit (for tests and metrics). */
  get commitCount(): number {
    return this.commits;
  }

  open(): Promise<void> {
    if (this.closed) return Promise.reject(this.unavailable());
    // Concurrent calls share one attempt; a failed attempt may be retried.
    this.opening ??= this.openOnce().catch((error: unknown) => {
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  private async openOnce(): Promise<void> {
    await this.checkLocation();
    let db: Db;
    try {
      db = new Database(this.file);
    } catch (error) {
      throw this.openError(describeOpenError(error), error);
    }
    try {
      // Everything up to the version check only reads: a database we must not touch stays as it was.
      const version = readSchemaVersion(db);
      if (version > SQLITE_SCHEMA_VERSION) {
        throw this.openError(
          `the database has schema version ${version}, newer than version ${SQLITE_SCHEMA_VERSION} this sse-relay knows; upgrade sse-relay`,
        );
      }
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw this.openError(`cannot switch the database to WAL mode (it is in ${String(mode)} mode)`);
      db.pragma(`synchronous = ${this.options.fsync === 'full' ? 'FULL' : 'NORMAL'}`);
      migrate(db);
      this.statements = prepareStatements(db);
      this.seqBase = this.statements.meta.get('seq_base') ?? 0;
    } catch (error) {
      db.close();
      throw error instanceof RelayError ? error : this.openError(describeOpenError(error), error);
    }
    if (this.closed) {
      // close() ran while the file was being opened.
      db.close();
      throw this.unavailable();
    }
    this.db = db;
    this.commitBatch = db.transaction((batch: readonly PendingAppend[]) => this.insertBatch(batch));
    this.pruneOnce = db.transaction(() => this.pruneSlice());
    this.startRetention();
  }

  setAppendListener(listener: AppendListener): void {
    this.listener = listener;
  }

  isReady(): boolean {
    return this.db !== undefined && !this.closed;
  }

  append(draft: MessageDraft): Promise<Message> {
    if (!this.isReady()) return Promise.reject(this.unavailable());
    return new Promise<Message>((resolve, reject) => {
      this.queue.push({ draft, time: Date.now(), resolve, reject });
      this.flushImmediate ??= setImmediate(this.flush);
    });
  }

  async resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor> {
    const s = this.ready();
    return this.guard(() => {
      let seq = s.seqOfId.get(lastEventId);
      if (seq === undefined && DECIMAL_SEQ.test(lastEventId)) {
        const numeric = Number(lastEventId);
        // Below seq_base: a cursor from an earlier database or another store, never issued here.
        const last = s.lastSeq.get() ?? this.seqBase;
        if (Number.isSafeInteger(numeric) && numeric > this.seqBase && numeric <= last) seq = numeric;
      }
      if (seq === undefined) return { afterSeq: 0, gap: true };
      const global = s.meta.get('pruned_through') ?? 0;
      const gap = topics === undefined
        ? global > seq
        : topics.some((topic) => (s.topicPruned.get(topic) ?? global) > seq);
      return { afterSeq: seq, gap };
    });
  }

  async read(query: ReadQuery): Promise<Message[]> {
    const s = this.ready();
    if (query.limit <= 0) return [];
    return this.guard(() => {
      let rows: MessageRow[];
      if (query.topics === undefined) rows = s.readAll.all(query.afterSeq, query.limit);
      else if (query.topics.length === 0) rows = [];
      else if (query.topics.length === 1) rows = s.readTopic.all(query.topics[0]!, query.afterSeq, query.limit);
      else rows = s.readTopics.all(JSON.stringify([...new Set(query.topics)]), query.afterSeq, query.limit);
      return rows.map(toMessage);
    });
  }

  async topicStats(topic: string): Promise<TopicStats> {
    const s = this.ready();
    return this.guard(() => {
      const row = s.topicStats.get(topic);
      if (!row) return { retained: 0, firstId: null, lastId: null };
      return { retained: row.retained, firstId: row.firstId ?? String(row.firstSeq), lastId: row.lastId ?? String(row.lastSeq) };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.pruneImmediate) clearImmediate(this.pruneImmediate);
    if (this.flushImmediate) clearImmediate(this.flushImmediate);
    this.flushImmediate = undefined;
    // What was acknowledged-to-be is committed before the file closes.
    while (this.queue.length > 0) this.flushBatch();
    this.db?.close();
    this.db = undefined;
  }

  private readonly flush = (): void => {
    this.flushImmediate = undefined;
    this.flushBatch();
    if (this.queue.length > 0 && !this.closed) this.flushImmediate = setImmediate(this.flush);
  };

  /** Commits up to SQLITE_MAX_BATCH queued drafts in one transaction, then dispatches and resolves. */
  private flushBatch(): void {
    const batch = new Array<PendingAppend>(Math.min(this.queue.length, SQLITE_MAX_BATCH));
    for (let i = 0; i < batch.length; i++) batch[i] = this.queue.shift()!;
    let messages: Message[];
    try {
      messages = this.commitBatch(batch);
      this.commits++;
    } catch (error) {
      const failure = storeError(error);
      for (const pending of batch) pending.reject(failure);
      return;
    }
    for (const message of messages) {
      try {
        this.listener(message);
      } catch (error) {
        // The message is committed and its append must resolve; a throwing dispatcher is a bug
        // that must not stall the rest of the batch, so it surfaces as an uncaught exception.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(messages[i]!);
  }

  /** Runs inside the batch transaction. */
  private insertBatch(batch: readonly PendingAppend[]): Message[] {
    const s = this.statements;
    const messages = new Array<Message>(batch.length);
    const appended = new Map<string, number>();
    for (let i = 0; i < batch.length; i++) {
      const { draft, time } = batch[i]!;
      // (topic, seq) is the primary key: a topic listed twice is stored, and returned, once.
      const topics = [...new Set(draft.topics)];
      const privateFlag = draft.private === undefined ? null : draft.private ? 1 : 0;
      const seq = Number(
        s.insertMessage.run(draft.id ?? null, JSON.stringify(topics), draft.data, draft.type ?? null, privateFlag, draft.retry ?? null, time)
          .lastInsertRowid,
      );
      for (const topic of topics) {
        s.insertTopic.run(topic, seq);
        appended.set(topic, (appended.get(topic) ?? 0) + 1);
      }
      messages[i] = {
        seq,
        id: draft.id ?? String(seq),
        topics,
        data: draft.data,
        type: draft.type,
        private: draft.private,
        retry: draft.retry,
        time,
      };
    }
    for (const [topic, count] of appended) s.countAppended.run({ topic, count });
    // Count retention right away for the topics just written, so a topic rarely exceeds its limit.
    if (this.options.maxMessagesPerTopic > 0) {
      for (const topic of appended.keys()) this.pruneTopicByCount(topic, PRUNE_BATCH);
    }
    return messages;
  }

  private startRetention(): void {
    if (this.options.maxAgeMs <= 0 && this.options.maxMessagesPerTopic <= 0) return;
    if (this.options.maxMessagesPerTopic > 0) {
      // The limit may have been lowered since the last run.
      for (const topic of this.statements.topicsOverLimit.all(this.options.maxMessagesPerTopic)) this.overLimit.add(topic);
    }
    this.pruneTimer = setInterval(this.pruneTick, this.options.pruneIntervalMs ?? 1000);
    this.pruneTimer.unref();
  }

  /** One bounded slice of retention per turn; continues on the next turn while work remains. */
  private readonly pruneTick = (): void => {
    this.pruneImmediate = undefined;
    if (!this.isReady()) return;
    let more: boolean;
    try {
      more = this.pruneOnce();
    } catch {
      // Retried on the next interval; a store that cannot write also fails appends, and that is
      // where the error is reported.
      return;
    }
    if (more) {
      this.pruneImmediate = setImmediate(this.pruneTick);
      this.pruneImmediate.unref();
    }
  };

  /** Runs inside a transaction; returns true when more is due. */
  private pruneSlice(): boolean {
    let budget = PRUNE_BATCH;
    if (this.options.maxAgeMs > 0) {
      budget -= this.pruneByAge(budget);
      if (budget <= 0) return true;
    }
    for (const topic of this.overLimit) {
      budget -= this.pruneTopicByCount(topic, budget);
      if (budget <= 0) return true;
    }
    return this.overLimit.size > 0;
  }

  /** Deletes up to `budget` of a topic's oldest rows beyond its limit; returns how many. */
  private pruneTopicByCount(topic: string, budget: number): number {
    const s = this.statements;
    const excess = (s.topicRetained.get(topic) ?? 0) - this.options.maxMessagesPerTopic;
    if (excess <= 0) {
      this.overLimit.delete(topic);
      return 0;
    }
    const count = Math.min(excess, budget);
    const cutoff = s.nthOldestOfTopic.get(topic, count - 1)!;
    s.deleteOrphansOfTopic.run({ topic, cutoff });
    s.deleteTopicUpTo.run(topic, cutoff);
    s.markPruned.run(count, cutoff, topic);
    s.raiseGlobalPruned.run(cutoff);
    if (excess > count) this.overLimit.add(topic);
    else this.overLimit.delete(topic);
    return count;
  }

  /** Deletes up to `budget` expired messages from the head of the log; returns how many. */
  private pruneByAge(budget: number): number {
    const s = this.statements;
    const expiredBefore = Date.now() - this.options.maxAgeMs;
    let through = 0;
    let count = 0;
    for (const row of s.head.iterate()) {
      if (row.time >= expiredBefore || count === budget) break;
      through = row.seq;
      count++;
    }
    if (count === 0) return 0;
    let highest = 0;
    for (const { topic, n, last } of s.topicsUpTo.all(through)) {
      s.markPruned.run(n, last, topic);
      s.dropEmptyTopic.run(topic);
      if (last > highest) highest = last;
    }
    s.deleteTopicsUpTo.run(through);
    s.deleteMessagesUpTo.run(through);
    s.raiseGlobalPruned.run(highest);
    return count;
  }

  /** Checks the data directory and file before SQLite sees them, to name the problem exactly. */
  private async checkLocation(): Promise<void> {
    const dir = this.options.dataDir;
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      const code = errorCode(error);
      const problem = code === 'EEXIST' ? `the data directory ${dir} exists and is not a directory`
        : code === 'ENOTDIR' ? `a parent of the data directory ${dir} is not a directory`
        : code === 'EACCES' || code === 'EPERM' ? `no permission to create the data directory ${dir}`
        : `cannot create the data directory ${dir} (${describeOpenError(error)})`;
      throw this.openError(problem, error);
    }
    const dirStat = await stat(dir).catch((error: unknown) => {
      throw this.openError(`cannot read the data directory ${dir} (${describeOpenError(error)})`, error);
    });
    if (!dirStat.isDirectory()) throw this.openError(`the data directory ${dir} is not a directory`);
    await access(dir, fsConstants.W_OK | fsConstants.X_OK).catch((error: unknown) => {
      throw this.openError(`the data directory ${dir} is not writable`, error);
    });
    const fileStat = await stat(this.file).catch((error: unknown) => {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw this.openError(describeOpenError(error), error);
    });
    if (fileStat && !fileStat.isFile()) throw this.openError('it exists and is not a regular file');
  }

  private openError(problem: string, cause?: unknown): RelayError {
    return new RelayError('HUB_ERR_STORE_OPEN', `Cannot open the message store at ${this.file}: ${problem}`, { cause });
  }

  private unavailable(): RelayError {
    return new RelayError('HUB_ERR_STORE_UNAVAILABLE', this.closed ? 'The store is closed' : 'The store is not open');
  }

  private ready(): Statements {
    if (!this.isReady()) throw this.unavailable();
    return this.statements;
  }

  private guard<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw storeError(error);
    }
  }
}

/**
 * The schema version of an open database: 0 for an empty one. Only reads. Throws for an SQLite
 * database that is not ours, so that opening never adds tables to someone else's file.
 */
function readSchemaVersion(db: Db): number {
  const tables = db.prepare<[], string>(`SELECT name FROM sqlite_schema WHERE type = 'table'`).pluck().all();
  if (!tables.includes('meta')) {
    if (tables.length === 0) return 0;
    throw new Error('the file is an SQLite database but not an sse-relay one (no meta table)');
  }
  const version = db.prepare<[], unknown>(`SELECT value FROM meta WHERE key = 'schema_version'`).pluck().get();
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new Error('the meta table has no valid schema_version');
  }
  return version;
}

/** Applies the missing migrations in one transaction; a database already current is not written. */
function migrate(db: Db): void {
  db.transaction(() => {
    // Read again under the write lock: another process may have migrated meanwhile.
    const version = readSchemaVersion(db);
    if (version >= SQLITE_SCHEMA_VERSION) return;
    for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) MIGRATIONS[v]!(db);
    db.prepare(`INSERT INTO meta (key, value) VALUES ('schema_version', ?)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(SQLITE_SCHEMA_VERSION);
  }).immediate();
}

function toMessage(row: MessageRow): Message {
  return {
    seq: row.seq,
    id: row.id ?? String(row.seq),
    topics: JSON.parse(row.topics) as string[],
    data: row.data,
    type: row.type ?? undefined,
    private: row.private === null ? undefined : row.private === 1,
    retry: row.retry ?? undefined,
    time: row.time,
  };
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

function describeOpenError(error: unknown): string {
  switch (errorCode(error)) {
    case 'SQLITE_NOTADB':
      return 'the file is not an SQLite database (corrupt, or another format)';
    case 'SQLITE_CORRUPT':
      return 'the database file is corrupt';
    case 'SQLITE_CANTOPEN':
      return 'SQLite cannot open the file';
    case 'SQLITE_READONLY':
      return 'the database is read-only';
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'the database is locked by another process';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/** Maps an SQLite failure after open to the hub's error codes. */
function storeError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  if (errorCode(error) === 'SQLITE_FULL') {
    return new RelayError('HUB_ERR_STORE_FULL', undefined, { cause: error });
  }
  return new RelayError('HUB_ERR_STORE_UNAVAILABLE', undefined, { cause: error });
}
