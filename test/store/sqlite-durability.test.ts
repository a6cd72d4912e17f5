import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Message } from '../../src/hub/message.js';
import {
  SQLITE_FILE_NAME,
  SQLITE_MAX_BATCH,
  SQLITE_SCHEMA_VERSION,
  SqliteStore,
  type SqliteStoreOptions,
} from '../../src/store/sqlite-store.js';
import { draft, eventually } from '../contract/store-contract.js';

/** What a file looks like on disk, to prove that a refused open wrote nothing. */
async function snapshot(file: string): Promise<{ bytes: Buffer; mtimeMs: number; siblings: string[] }> {
  const [bytes, info, siblings] = await Promise.all([readFile(file), stat(file), readdir(path.dirname(file))]);
  return { bytes, mtimeMs: info.mtimeMs, siblings: siblings.sort() };
}

describe('SqliteStore on disk', () => {
  let root: string;
  let count = 0;
  const opened: SqliteStore[] = [];
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sse-relay-durability-'));
  });
  after(async () => {
    for (const store of opened) await store.close();
    await rm(root, { recursive: true, force: true });
  });

  const freshDir = (): string => path.join(root, `case-${++count}`);
  const makeStore = (dataDir: string, options: Partial<SqliteStoreOptions> = {}): SqliteStore => {
    const store = new SqliteStore({ dataDir, fsync: 'normal', maxMessagesPerTopic: 1000, maxAgeMs: 0, pruneIntervalMs: 20, ...options });
    opened.push(store);
    return store;
  };

  it('creates a missing data directory, parents included', async () => {
    const dataDir = path.join(freshDir(), 'nested', 'deeper');
    const store = makeStore(dataDir);
    await store.open();
    assert.equal(store.file, path.join(dataDir, SQLITE_FILE_NAME));
    assert.ok((await stat(store.file)).isFile());
    await store.close();
  });

  it('keeps history across a reopen and numbers new messages above the old ones', async () => {
    const dataDir = freshDir();
    const first = makeStore(dataDir);
    await first.open();
    const m1 = await first.append(draft('a', 'one', { id: 'custom', type: 'greeting', private: true, retry: 500 }));
    const m2 = await first.append(draft(['b', 'a'], 'two\nlines'));
    await first.close();

    const second = makeStore(dataDir, { fsync: 'full' });
    await second.open();
    assert.deepEqual(await second.read({ afterSeq: 0, limit: 10 }), [m1, m2]);
    assert.deepEqual(await second.resolveCursor('custom', ['a']), { afterSeq: m1.seq, gap: false });
    assert.deepEqual(await second.resolveCursor(String(m2.seq)), { afterSeq: m2.seq, gap: false });
    assert.deepEqual(await second.topicStats('a'), { retained: 2, firstId: 'custom', lastId: String(m2.seq) });
    const m3 = await second.append(draft('a', 'three'));
    assert.ok(m3.seq > m2.seq, `${m3.seq} > ${m2.seq}`);
    await second.close();
  });

  it('never reuses a seq, even after pruning everything and reopening', async () => {
    const dataDir = freshDir();
    const first = makeStore(dataDir, { maxAgeMs: 100 });
    await first.open();
    const old = [];
    for (let i = 0; i < 3; i++) old.push(await first.append(draft('a', `old${i}`)));
    await eventually(async () => (await first.read({ afterSeq: 0, limit: 10 })).length === 0, 'everything to expire');
    await first.close();

    const second = makeStore(dataDir);
    await second.open();
    assert.deepEqual(await second.read({ afterSeq: 0, limit: 10 }), []);
    // The pruning is remembered: a client holding the first id lost the other two.
    assert.equal((await second.resolveCursor(String(old[0]!.seq), ['a'])).gap, true);
    assert.deepEqual(await second.resolveCursor(String(old[2]!.seq), ['a']), { afterSeq: old[2]!.seq, gap: false });
    const next = await second.append(draft('a', 'new'));
    assert.ok(next.seq > old[2]!.seq, `${next.seq} > ${old[2]!.seq}`);
    await second.close();
  });

  it('applies a lowered count limit to the history it finds at open', async () => {
    const dataDir = freshDir();
    const first = makeStore(dataDir);
    await first.open();
    const messages: Message[] = [];
    for (let i = 0; i < 10; i++) messages.push(await first.append(draft('a', `m${i}`)));
    await first.close();

    const second = makeStore(dataDir, { maxMessagesPerTopic: 3 });
    await second.open();
    await eventually(async () => (await second.topicStats('a')).retained === 3, 'the background pruning to reach 3');
    const kept = await second.read({ afterSeq: 0, topics: ['a'], limit: 100 });
    assert.deepEqual(kept.map((m) => m.data), ['m7', 'm8', 'm9']);
    assert.equal((await second.resolveCursor(String(messages[5]!.seq), ['a'])).gap, true);
    await second.close();
  });

  it('commits the appends of one event-loop turn in one transaction', async () => {
    const store = makeStore(freshDir());
    await store.open();
    const seen: number[] = [];
    store.setAppendListener((m) => seen.push(m.seq));

    let commits = store.commitCount;
    const oneTurn = await Promise.all(Array.from({ length: 10 }, (_, i) => store.append(draft('t', `m${i}`))));
    assert.equal(store.commitCount - commits, 1, 'one transaction for the whole turn');
    assert.deepEqual(seen, oneTurn.map((m) => m.seq));

    commits = store.commitCount;
    await store.append(draft('t', 'first turn'));
    await store.append(draft('t', 'second turn'));
    assert.equal(store.commitCount - commits, 2, 'appends of separate turns commit separately');

    commits = store.commitCount;
    const burst = 2 * SQLITE_MAX_BATCH + 500;
    const appended = await Promise.all(Array.from({ length: burst }, (_, i) => store.append(draft('t', `b${i}`))));
    assert.equal(store.commitCount - commits, 3, `a burst is cut into batches of at most ${SQLITE_MAX_BATCH}`);
    assert.deepEqual(seen.slice(-burst), appended.map((m) => m.seq), 'dispatched in seq order across batches');
    await store.close();
  });

  it('commits appends still queued when it is closed', async () => {
    const dataDir = freshDir();
    const first = makeStore(dataDir);
    await first.open();
    const pending = first.append(draft('t', 'queued at close'));
    await first.close();
    const message = await pending;

    const second = makeStore(dataDir);
    await second.open();
    assert.deepEqual(await second.read({ afterSeq: 0, limit: 10 }), [message]);
    await second.close();
  });

  it('rejects every append of a failed batch and stores none of them', async () => {
    const store = makeStore(freshDir());
    await store.open();
    const seen: Message[] = [];
    store.setAppendListener((m) => seen.push(m));
    // SQLite cannot bind an object: the third insert fails inside the transaction.
    const results = await Promise.allSettled([
      store.append(draft('t', 'good 1')),
      store.append(draft('t', 'good 2')),
      store.append(draft('t', {} as unknown as string)),
    ]);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.equal((result.reason as { code?: unknown }).code, 'HUB_ERR_STORE_UNAVAILABLE');
      assert.ok((result.reason as Error).cause instanceof Error, 'the SQLite error is the cause');
    }
    assert.deepEqual(seen, [], 'nothing dispatched');
    assert.deepEqual(await store.read({ afterSeq: 0, limit: 10 }), [], 'nothing stored');
    assert.deepEqual(await store.topicStats('t'), { retained: 0, firstId: null, lastId: null });
    const next = await store.append(draft('t', 'after the failure'));
    assert.deepEqual(await store.read({ afterSeq: 0, limit: 10 }), [next]);
    await store.close();
  });

  it('refuses a database with a newer schema version and leaves it untouched', async () => {
    const dataDir = freshDir();
    const store = makeStore(dataDir);
    await store.open();
    await store.append(draft('t', 'from the future'));
    await store.close();
    const newer = SQLITE_SCHEMA_VERSION + 1;
    const db = new Database(store.file);
    db.prepare(`UPDATE meta SET value = ? WHERE key = 'schema_version'`).run(newer);
    db.close(); // checkpoints the WAL into the file and removes it
    const before = await snapshot(store.file);

    const refused = makeStore(dataDir);
    await assert.rejects(refused.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, new RegExp(`${escape(store.file)}.*version ${newer}.*version ${SQLITE_SCHEMA_VERSION}`));
      return true;
    });
    assert.equal(refused.isReady(), false);
    assert.deepEqual(await snapshot(store.file), before, 'bytes, mtime and sibling files unchanged');
  });

  it('refuses a corrupt database file, naming it, and leaves it untouched', async () => {
    const dataDir = freshDir();
    await mkdir(dataDir);
    const file = path.join(dataDir, SQLITE_FILE_NAME);
    await writeFile(file, randomBytes(16 * 1024));
    const before = await snapshot(file);
    await assert.rejects(makeStore(dataDir).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, new RegExp(`${escape(file)}: the file is not an SQLite database`));
      return true;
    });
    assert.deepEqual(await snapshot(file), before);
  });

  it('refuses an SQLite database that is not an sse-relay one, and leaves it untouched', async () => {
    const dataDir = freshDir();
    await mkdir(dataDir);
    const file = path.join(dataDir, SQLITE_FILE_NAME);
    const db = new Database(file);
    db.exec('CREATE TABLE users (name TEXT)');
    db.close();
    const before = await snapshot(file);
    await assert.rejects(makeStore(dataDir).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, new RegExp(`${escape(file)}: .*not an sse-relay one`));
      return true;
    });
    assert.deepEqual(await snapshot(file), before);
  });

  it('refuses a data directory that is a regular file', async () => {
    const notADir = path.join(root, `file-${++count}`);
    await writeFile(notADir, 'not a directory');
    await assert.rejects(makeStore(notADir).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, new RegExp(`the data directory ${escape(notADir)} exists and is not a directory`));
      return true;
    });
    assert.equal(await readFile(notADir, 'utf8'), 'not a directory');
  });

  it('refuses a data directory it cannot create', async () => {
    // The tests run as root, for whom chmod does not make a directory unwritable; a path below
    // a regular file cannot be created by anyone.
    const file = path.join(root, `file-${++count}`);
    await writeFile(file, '');
    const dataDir = path.join(file, 'sub');
    await assert.rejects(makeStore(dataDir).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, new RegExp(`${escape(dataDir)}.*not a directory`));
      return true;
    });
  });

  it('refuses a database path that is a directory', async () => {
    const dataDir = freshDir();
    await mkdir(path.join(dataDir, SQLITE_FILE_NAME), { recursive: true });
    await assert.rejects(makeStore(dataDir).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_STORE_OPEN');
      assert.match(error.message, /not a regular file/);
      return true;
    });
  });

  it('is unavailable before open and after close', async () => {
    const store = makeStore(freshDir());
    assert.equal(store.isReady(), false);
    await assert.rejects(store.append(draft('t', 'too early')), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    await store.open();
    await store.close();
    await assert.rejects(store.read({ afterSeq: 0, limit: 1 }), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
    await assert.rejects(store.open(), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
