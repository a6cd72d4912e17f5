import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Message } from '../../src/hub/message.js';
import { countRetentionSlack, SqliteStore } from '../../src/store/sqlite-store.js';
import { draft } from '../contract/store-contract.js';

const seqs = (messages: readonly Message[]): number[] => messages.map((m) => m.seq);

/** What is on disk for a topic, read with a connection of its own once the store is closed. */
function onDisk(file: string, topic: string): { rows: number[]; messages: number[]; prunedThrough: number | undefined } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      rows: db.prepare<[string], number>('SELECT seq FROM message_topics WHERE topic = ? ORDER BY seq').pluck().all(topic),
      messages: db.prepare<[], number>('SELECT seq FROM messages ORDER BY seq').pluck().all(),
      prunedThrough: db.prepare<[string], number>('SELECT pruned_through FROM topic_state WHERE topic = ?').pluck().get(topic),
    };
  } finally {
    db.close();
  }
}

describe('SqliteStore count retention with slack', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'sse-relay-retention-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('sizes the slack at 10% of the limit, between 1 and 256', () => {
    assert.equal(countRetentionSlack(0), 1);
    assert.equal(countRetentionSlack(3), 1);
    assert.equal(countRetentionSlack(20), 2);
    assert.equal(countRetentionSlack(1000), 100);
    assert.equal(countRetentionSlack(100_000), 256);
  });

  it('reads, counts and reports gaps as if exactly the limit were kept, and deletes a slack at once', async () => {
    const limit = 20;
    const slack = countRetentionSlack(limit);
    assert.equal(slack, 2, 'the checks below assume two messages of slack');
    const dataDir = path.join(root, 'slack');
    // A background run an hour away: whatever is deleted below is deleted by the appends.
    const options = { dataDir, fsync: 'normal', maxMessagesPerTopic: limit, maxAgeMs: 0, pruneIntervalMs: 3_600_000 } as const;
    const store = new SqliteStore(options);
    await store.open();
    // The oldest is also in topic b, which keeps it when topic a lets it go.
    const a: Message[] = [await store.append(draft(['a', 'b'], 'shared'))];
    while (a.length < limit + slack) a.push(await store.append(draft('a', `a${a.length}`)));
    const kept = a.slice(slack);
    const [shared, lost] = [a[0]!, a[slack - 1]!];

    const check = async (): Promise<void> => {
      const read = (topics: string[] | undefined, limitTo = 100, afterSeq = 0) => store.read({ afterSeq, topics, limit: limitTo });
      assert.deepEqual(seqs(await read(['a'])), seqs(kept));
      assert.deepEqual(seqs(await read(['a'], 2)), seqs(kept.slice(0, 2)), 'the limit counts retained messages only');
      assert.deepEqual(seqs(await read(['b'])), [shared.seq], 'topic b keeps the shared message');
      assert.deepEqual(seqs(await read(['a', 'b'])), [shared.seq, ...seqs(kept)]);
      assert.deepEqual(seqs(await read(undefined)), seqs([shared, ...kept]), 'all topics: what no topic retains is left out');
      assert.deepEqual(seqs(await read(undefined, 1, shared.seq)), [kept[0]!.seq], 'a limit of 1 skips what no topic retains');
      assert.deepEqual(await store.topicStats('a'), { retained: limit, firstId: kept[0]!.id, lastId: a.at(-1)!.id });
      assert.deepEqual(await store.topicStats('b'), { retained: 1, firstId: shared.id, lastId: shared.id });
      // A client that saw `lost` missed nothing; one that saw the message before it missed `lost`.
      assert.deepEqual(await store.resolveCursor(lost.id, ['a']), { afterSeq: lost.seq, gap: false });
      assert.deepEqual(await store.resolveCursor(lost.id), { afterSeq: lost.seq, gap: false });
      assert.equal((await store.resolveCursor(shared.id, ['a'])).gap, true);
      assert.equal((await store.resolveCursor(shared.id)).gap, true, 'all topics: topic a lost messages after the cursor');
      assert.equal((await store.resolveCursor(shared.id, ['b'])).gap, false);
    };

    await check();
    await store.close();
    // At limit + slack nothing was deleted yet.
    assert.deepEqual(onDisk(store.file, 'a').rows, seqs(a));

    const reopened = new SqliteStore(options);
    await reopened.open();
    const next = await reopened.append(draft('a', 'one more'));
    assert.deepEqual(seqs(await reopened.read({ afterSeq: 0, topics: ['a'], limit: 100 })), seqs([...kept.slice(1), next]));
    assert.equal((await reopened.resolveCursor(kept[0]!.id, ['a'])).gap, false);
    assert.equal((await reopened.resolveCursor(lost.id, ['a'])).gap, true, 'kept[0] was pruned after this cursor');
    assert.deepEqual(await reopened.topicStats('a'), { retained: limit, firstId: kept[1]!.id, lastId: next.id });
    await reopened.close();
    // One append past the slack deleted down to the limit in its own transaction.
    const disk = onDisk(reopened.file, 'a');
    assert.deepEqual(disk.rows, seqs([...kept.slice(1), next]));
    assert.equal(disk.prunedThrough, kept[0]!.seq);
    assert.ok(disk.messages.includes(shared.seq), 'the shared message stays for topic b');
    assert.ok(!disk.messages.includes(lost.seq), 'a message no topic retains is deleted');
  });
});
