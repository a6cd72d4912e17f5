import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { Message, MessageDraft } from '../../src/hub/message.js';
import type { RetentionOptions, Store } from '../../src/store/store.js';

/**
 * Builds a fresh, not yet opened store with the given retention, and a `cleanup` that closes
 * it (closing twice must be harmless) and removes whatever it left behind. Age retention must
 * run often (every few tens of milliseconds) so the age test finishes quickly.
 */
export type StoreFactory = (retention: RetentionOptions) => Promise<{ store: Store; cleanup(): Promise<void> }>;

const DEFAULT_RETENTION: RetentionOptions = { maxMessagesPerTopic: 1000, maxAgeMs: 0 };

/**
 * Polls `check` until it holds, failing after `timeoutMs`: for background work (retention)
 * whose timing the test does not control.
 */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A draft with the given topics and data. */
export function draft(topics: string | readonly string[], data: string, extra: Partial<MessageDraft> = {}): MessageDraft {
  return { topics: typeof topics === 'string' ? [topics] : topics, data, ...extra };
}

const seqs = (messages: readonly Message[]): number[] => messages.map((m) => m.seq);

/** The fields a message is made of, with absent optional fields as undefined. */
function fields(m: Message): Record<string, unknown> {
  return { seq: m.seq, id: m.id, topics: [...m.topics], data: m.data, type: m.type, private: m.private, retry: m.retry, time: m.time };
}

/**
 * The guarantees of {@link Store} (see `src/store/store.ts`), as tests every implementation
 * must pass. Each test opens its own store from `makeStore`.
 */
export function runStoreContract(name: string, makeStore: StoreFactory): void {
  async function openStore(t: TestContext, retention: RetentionOptions = DEFAULT_RETENTION): Promise<Store> {
    const { store, cleanup } = await makeStore(retention);
    t.after(cleanup);
    await store.open();
    return store;
  }

  describe(`Store contract: ${name}`, () => {
    it('assigns positive, strictly increasing seqs, and String(seq) as the default id', async (t) => {
      const store = await openStore(t);
      const before = Date.now();
      const a = await store.append(draft('t', 'one'));
      const b = await store.append(draft('t', 'two'));
      const c = await store.append(draft('u', 'three'));
      const after = Date.now();
      assert.ok(Number.isSafeInteger(a.seq) && a.seq > 0, `seq ${a.seq} is a positive safe integer`);
      assert.ok(b.seq > a.seq && c.seq > b.seq, 'seqs increase');
      assert.equal(a.id, String(a.seq));
      assert.deepEqual(a.topics, ['t']);
      assert.equal(a.data, 'one');
      assert.ok(a.time >= before && a.time <= after, 'time is when the store accepted the message');
      assert.equal(store.isReady(), true);
    });

    it('calls the listener once per message, in seq order, before append resolves', async (t) => {
      const store = await openStore(t);
      const seen: number[] = [];
      store.setAppendListener((m) => seen.push(m.seq));
      const appended = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.append(draft(i % 2 ? 'a' : 'b', `m${i}`)).then((m) => {
            assert.ok(seen.includes(m.seq), `the listener saw ${m.seq} before its append resolved`);
            return m;
          }),
        ),
      );
      const last = await store.append(draft('a', 'last'));
      assert.equal(seen.at(-1), last.seq, 'a sequential append is dispatched before it resolves');
      const expected = [...seqs(appended), last.seq].sort((x, y) => x - y);
      assert.deepEqual(seen, expected, 'each message once, in seq order');
    });

    it('reads by topic, by several topics and all, after a cursor, with a limit', async (t) => {
      const store = await openStore(t);
      const m1 = await store.append(draft('a', '1'));
      const m2 = await store.append(draft('b', '2'));
      const m3 = await store.append(draft('c', '3'));
      const m4 = await store.append(draft(['a', 'b'], '4'));
      const m5 = await store.append(draft('a', '5'));
      const read = async (afterSeq: number, topics: string[] | undefined, limit = 100) =>
        seqs(await store.read({ afterSeq, topics, limit }));

      assert.deepEqual(await read(0, ['a']), seqs([m1, m4, m5]));
      assert.deepEqual(await read(0, ['a', 'b']), seqs([m1, m2, m4, m5]));
      assert.deepEqual(await read(0, ['b', 'a', 'b']), seqs([m1, m2, m4, m5]), 'repeated topics change nothing');
      assert.deepEqual(await read(0, undefined), seqs([m1, m2, m3, m4, m5]));
      assert.deepEqual(await read(m2.seq, ['a']), seqs([m4, m5]));
      assert.deepEqual(await read(m3.seq, undefined), seqs([m4, m5]));
      assert.deepEqual(await read(m5.seq, undefined), []);
      assert.deepEqual(await read(0, undefined, 2), seqs([m1, m2]));
      assert.deepEqual(await read(m1.seq, ['a', 'b'], 2), seqs([m2, m4]));
      assert.deepEqual(await read(0, ['c', 'a'], 2), seqs([m1, m3]), 'the limit keeps the oldest across topics');
      assert.deepEqual(await read(0, ['nobody']), []);
      assert.deepEqual(await read(0, []), []);
    });

    it('returns a message published to several topics once, with its topics in order', async (t) => {
      const store = await openStore(t);
      const m = await store.append(draft(['x', 'y', 'z'], 'multi'));
      assert.deepEqual(m.topics, ['x', 'y', 'z']);
      const byTopics = await store.read({ afterSeq: 0, topics: ['z', 'x'], limit: 10 });
      assert.equal(byTopics.length, 1);
      assert.deepEqual(byTopics[0]!.topics, ['x', 'y', 'z'], 'the first topic stays canonical');
      const all = await store.read({ afterSeq: 0, limit: 10 });
      assert.deepEqual(seqs(all), [m.seq]);
    });

    it('stores a topic listed twice in one draft once', async (t) => {
      const store = await openStore(t);
      const m = await store.append(draft(['d', 'd'], 'twice'));
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, topics: ['d'], limit: 10 })), [m.seq]);
      assert.equal((await store.topicStats('d')).retained, 1);
    });

    it('round-trips every message field', async (t) => {
      const store = await openStore(t);
      const plain = await store.append(draft('f', 'plain'));
      const full = await store.append(draft(['f', 'g'], 'full', { type: 'update', private: true, retry: 3000, id: 'custom-1' }));
      const falsy = await store.append(draft('f', '', { private: false, retry: 0 }));
      assert.equal(plain.type, undefined);
      assert.equal(plain.private, undefined);
      assert.equal(plain.retry, undefined);
      assert.equal(full.id, 'custom-1');
      const read = await store.read({ afterSeq: 0, topics: ['f'], limit: 10 });
      assert.deepEqual(read.map(fields), [plain, full, falsy].map(fields));
    });

    it('round-trips unicode and multi-line data exactly', async (t) => {
      const store = await openStore(t);
      const data = [
        ' leading space, trailing space ',
        'CRLF\r\nCR\rLF\nblank\n\nline',
        'é (precomposed) vs e\u0301 (combining), 日本語, 😀👩‍👩‍👧, \u2028\u2029, tab\t, NUL\u0000end',
        `${'long '.repeat(20_000)}\n`,
      ];
      const delivered: Message[] = [];
      store.setAppendListener((m) => delivered.push(m));
      const appended = await Promise.all(data.map((d) => store.append(draft('unicode', d))));
      const read = await store.read({ afterSeq: 0, topics: ['unicode'], limit: 10 });
      assert.deepEqual(appended.map((m) => m.data), data);
      assert.deepEqual(delivered.map((m) => m.data), data);
      assert.deepEqual(read.map((m) => m.data), data);
    });

    it('resolves a custom id to the latest message with that id', async (t) => {
      const store = await openStore(t);
      const first = await store.append(draft('t', 'first', { id: 'evt' }));
      const other = await store.append(draft('t', 'other', { id: 'other' }));
      const latest = await store.append(draft('t', 'latest', { id: 'evt' }));
      assert.ok(first.seq < latest.seq);
      assert.deepEqual(await store.resolveCursor('evt', ['t']), { afterSeq: latest.seq, gap: false });
      assert.deepEqual(await store.resolveCursor('other', ['t']), { afterSeq: other.seq, gap: false });
      assert.deepEqual(await store.resolveCursor('other'), { afterSeq: other.seq, gap: false });
    });

    it('resolves the numeric ids it issued and reports others as unknown', async (t) => {
      const store = await openStore(t);
      const m1 = await store.append(draft('t', '1'));
      const m2 = await store.append(draft('u', '2'));
      assert.deepEqual(await store.resolveCursor(String(m1.seq), ['t']), { afterSeq: m1.seq, gap: false });
      assert.deepEqual(await store.resolveCursor(String(m1.seq), ['t', 'u']), { afterSeq: m1.seq, gap: false });
      assert.deepEqual(await store.resolveCursor(String(m2.seq)), { afterSeq: m2.seq, gap: false });
      const unknown = { afterSeq: 0, gap: true };
      for (const id of [String(m2.seq + 1), String(m2.seq + 1_000_000), 'nope', '', '0', '-1', '1.5', '1e3', ` ${m1.seq}`, `0${m1.seq}`]) {
        assert.deepEqual(await store.resolveCursor(id, ['t']), unknown, `id ${JSON.stringify(id)}`);
      }
    });

    it('reads an id of its own form only as a seq, even when a message carries it as a custom id', async (t) => {
      // The hub refuses such custom ids (HUB_ERR_EVENT_ID_RESERVED); a store written by an older
      // version may still hold one, and it must not shadow the seq of the same text.
      const store = await openStore(t);
      const m1 = await store.append(draft('t', '1'));
      const m2 = await store.append(draft('t', '2'));
      await store.append(draft('u', 'shadow', { id: String(m1.seq) }));
      assert.deepEqual(await store.resolveCursor(String(m1.seq), ['t']), { afterSeq: m1.seq, gap: false });
      const read = await store.read({ afterSeq: m1.seq, topics: ['t'], limit: 10 });
      assert.deepEqual(read.map((m) => m.seq), [m2.seq]);
    });

    it('reports a numeric id below its first seq as unknown (another store, or an earlier run)', async (t) => {
      const store = await openStore(t);
      const m = await store.append(draft('t', 'first'));
      if (m.seq <= 2) return t.skip('the store numbers from 1: every small id may be its own');
      assert.deepEqual(await store.resolveCursor('1', ['t']), { afterSeq: 0, gap: true });
      assert.deepEqual(await store.resolveCursor('1'), { afterSeq: 0, gap: true });
    });

    it('prunes by count per topic and reports a gap only for cursors before the pruned range', async (t) => {
      const store = await openStore(t, { maxMessagesPerTopic: 3, maxAgeMs: 0 });
      const b1 = await store.append(draft('b', 'b1'));
      const a: Message[] = [];
      for (let i = 1; i <= 5; i++) a.push(await store.append(draft('a', `a${i}`)));
      const [a1, a2, a3, , a5] = a as [Message, Message, Message, Message, Message];
      await eventually(
        async () => (await store.read({ afterSeq: 0, topics: ['a'], limit: 10 })).length === 3,
        'topic a to be pruned to 3 messages',
      );
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, topics: ['a'], limit: 10 })), seqs(a.slice(2)));
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, topics: ['b'], limit: 10 })), [b1.seq], 'other topics keep theirs');
      assert.equal((await store.resolveCursor(String(a1.seq), ['a'])).gap, true, 'a2 was pruned after cursor a1');
      assert.equal((await store.resolveCursor(String(a1.seq))).gap, true, 'all topics: a2 was pruned after a1');
      // A client that saw a2 missed nothing: pruning a2 itself is no gap.
      assert.deepEqual(await store.resolveCursor(String(a2.seq), ['a']), { afterSeq: a2.seq, gap: false });
      assert.deepEqual(await store.resolveCursor(String(a3.seq), ['a']), { afterSeq: a3.seq, gap: false });
      assert.deepEqual(await store.resolveCursor(String(b1.seq), ['b']), { afterSeq: b1.seq, gap: false });
      assert.deepEqual(await store.topicStats('a'), { retained: 3, firstId: a3.id, lastId: a5.id });
    });

    it('keeps a message pruned from one topic while another topic retains it', async (t) => {
      const store = await openStore(t, { maxMessagesPerTopic: 2, maxAgeMs: 0 });
      const b1 = await store.append(draft('b', 'b1'));
      const shared = await store.append(draft(['a', 'b'], 'shared'));
      const a2 = await store.append(draft('a', 'a2'));
      const a3 = await store.append(draft('a', 'a3'));
      await eventually(
        async () => (await store.read({ afterSeq: 0, topics: ['a'], limit: 10 })).length === 2,
        'topic a to be pruned to 2 messages',
      );
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, topics: ['a'], limit: 10 })), [a2.seq, a3.seq]);
      const viaB = await store.read({ afterSeq: 0, topics: ['b'], limit: 10 });
      assert.deepEqual(seqs(viaB), [b1.seq, shared.seq]);
      assert.deepEqual(viaB[1]!.topics, ['a', 'b'], 'a message keeps the topics it was published to');
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, limit: 10 })), [b1.seq, shared.seq, a2.seq, a3.seq]);
      assert.equal((await store.resolveCursor(String(b1.seq), ['b'])).gap, false, 'b lost nothing');
      assert.equal((await store.resolveCursor(String(b1.seq), ['a'])).gap, true, 'a lost the shared message');
    });

    it('prunes by age and keeps reporting the gap when the topic is used again', async (t) => {
      const store = await openStore(t, { maxMessagesPerTopic: 0, maxAgeMs: 150 });
      const old1 = await store.append(draft('a', 'old1'));
      const old2 = await store.append(draft('a', 'old2'));
      await eventually(async () => (await store.topicStats('a')).retained === 0, 'old messages to expire');
      assert.deepEqual(await store.read({ afterSeq: 0, topics: ['a'], limit: 10 }), []);
      assert.deepEqual(await store.read({ afterSeq: 0, limit: 10 }), []);
      assert.deepEqual(await store.topicStats('a'), { retained: 0, firstId: null, lastId: null });
      assert.equal((await store.resolveCursor(String(old1.seq), ['a'])).gap, true);
      assert.equal((await store.resolveCursor(String(old1.seq))).gap, true);

      // Well within maxAgeMs of this append, the topic holds a message again; old2 is still lost
      // for a client whose cursor is old1.
      const fresh = await store.append(draft('a', 'fresh'));
      assert.equal((await store.resolveCursor(String(old1.seq), ['a'])).gap, true, 'a re-used topic remembers its pruning');
      const afterOld2 = await store.resolveCursor(String(old2.seq), ['a']);
      assert.equal(afterOld2.gap, false, 'nothing after old2 was lost');
      assert.deepEqual(await store.resolveCursor(String(fresh.seq), ['a']), { afterSeq: fresh.seq, gap: false });
    });

    it('reports topic stats', async (t) => {
      const store = await openStore(t);
      assert.deepEqual(await store.topicStats('s'), { retained: 0, firstId: null, lastId: null });
      await store.append(draft('s', '1', { id: 'first-custom' }));
      await store.append(draft(['other', 's'], '2'));
      const last = await store.append(draft('s', '3'));
      await store.append(draft('other', 'not s'));
      assert.deepEqual(await store.topicStats('s'), { retained: 3, firstId: 'first-custom', lastId: String(last.seq) });
    });

    it('resolves many appends issued in one turn with distinct seqs, dispatched in order', async (t) => {
      const store = await openStore(t);
      const seen: number[] = [];
      store.setAppendListener((m) => seen.push(m.seq));
      const count = 2500;
      const pending: Promise<Message>[] = [];
      for (let i = 0; i < count; i++) pending.push(store.append(draft(`topic-${i % 5}`, `m${i}`)));
      const appended = await Promise.all(pending);
      assert.equal(new Set(seqs(appended)).size, count, 'distinct seqs');
      assert.deepEqual(appended.map((m) => m.data), Array.from({ length: count }, (_, i) => `m${i}`));
      const sorted = seqs(appended).sort((x, y) => x - y);
      assert.deepEqual(seen, sorted, 'dispatched once each, in seq order');
      assert.deepEqual(seqs(await store.read({ afterSeq: 0, limit: count + 1 })), sorted);
    });

    it('rejects appends after close', async (t) => {
      const store = await openStore(t);
      await store.append(draft('t', 'before'));
      await store.close();
      assert.equal(store.isReady(), false);
      await assert.rejects(store.append(draft('t', 'after')), { code: 'HUB_ERR_STORE_UNAVAILABLE' });
      await store.close();
    });

    describe('consumers (ConsumerLog)', () => {
      const pendingIds = async (store: Store, topic: string, afterSeq: number): Promise<string[]> =>
        (await store.consumers.readPending(topic, afterSeq, 1000)).map((m) => m.id);

      it('holds a consumer\'s messages past retention, in order, until it acknowledges them', async (t) => {
        const store = await openStore(t, { maxMessagesPerTopic: 2, maxAgeMs: 0 });
        const start = store.dispatchedThrough();
        const created = await store.consumers.attach('t', 'c', { owner: 'alice', afterSeq: start }, 1000);
        assert.equal(created.ackedSeq, start);
        assert.equal(created.pending, 0);
        assert.equal(created.owner, 'alice');
        const sent: Message[] = [];
        for (let i = 0; i < 5; i++) sent.push(await store.append(draft('t', `m${i}`)));
        await store.append(draft('other', 'not held'));
        await eventually(async () => (await store.consumers.get('t', 'c'))?.pending === 5, 'five pending');
        assert.deepEqual(await pendingIds(store, 't', start), sent.map((m) => m.id), 'all five held in order although retention keeps two');
        assert.equal((await store.read({ afterSeq: 0, topics: ['t'], limit: 10 })).length, 2, 'retention itself still applies');

        const acked = await store.consumers.ack('t', 'c', sent[2]!.id, 2000);
        assert.equal(acked.kind, 'acked');
        assert.ok(acked.kind === 'acked' && acked.state.ackedSeq === sent[2]!.seq && acked.state.pending === 2 && acked.state.lastSeenAt === 2000);
        assert.deepEqual(await pendingIds(store, 't', sent[2]!.seq), [sent[3]!.id, sent[4]!.id]);
        assert.equal((await store.consumers.ack('t', 'c', sent[1]!.id, 3000)).kind, 'behind', 'an older id is idempotent');
        assert.equal((await store.consumers.ack('t', 'c', 'never-issued', 3000)).kind, 'unknown');
        assert.equal((await store.consumers.ack('t', 'c', String(sent[4]!.seq + 1000), 3000)).kind, 'unknown', 'an id from the future');
        assert.equal((await store.consumers.ack('t', 'nobody', sent[3]!.id, 3000)).kind, 'no-consumer');
        const again = await store.consumers.attach('t', 'c', { owner: 'bob', afterSeq: 0 }, 4000);
        assert.equal(again.owner, 'alice', 'attaching an existing consumer keeps it as it was');
        assert.equal(again.ackedSeq, sent[2]!.seq);
        assert.equal(again.lastSeenAt, 4000);
      });

      it('starts a new consumer with the retained messages after its start, and acknowledges custom ids', async (t) => {
        const store = await openStore(t);
        const first = await store.append(draft('t', 'before'));
        const second = await store.append(draft('t', 'custom', { id: 'urn:x:1' }));
        const third = await store.append(draft('t', 'third'));
        const state = await store.consumers.attach('t', 'late', { owner: null, afterSeq: first.seq }, 1000);
        assert.equal(state.pending, 2);
        assert.deepEqual(await pendingIds(store, 't', first.seq), ['urn:x:1', third.id]);
        const acked = await store.consumers.ack('t', 'late', 'urn:x:1', 2000);
        assert.ok(acked.kind === 'acked' && acked.state.ackedSeq === second.seq && acked.state.ackedId === 'urn:x:1' && acked.state.pending === 1);
        assert.deepEqual((await store.consumers.list('t')).map((c) => [c.name, c.pending]), [['late', 1]]);
      });

      it('releases the oldest past maxPending and records them as lost until the next acknowledgement', async (t) => {
        const store = await openStore(t, { maxMessagesPerTopic: 1000, maxAgeMs: 0, consumerMaxPending: 3 });
        await store.consumers.attach('t', 'slow', { owner: null, afterSeq: store.dispatchedThrough() }, 1000);
        const sent: Message[] = [];
        for (let i = 0; i < 5; i++) sent.push(await store.append(draft('t', `m${i}`)));
        await eventually(async () => (await store.consumers.get('t', 'slow'))?.lost?.count === 2, 'two lost');
        const state = (await store.consumers.get('t', 'slow'))!;
        assert.deepEqual(state.lost, { firstId: sent[0]!.id, lastId: sent[1]!.id, count: 2 });
        assert.equal(state.pending, 3);
        assert.equal(state.ackedSeq, sent[1]!.seq);
        assert.deepEqual(await pendingIds(store, 't', state.ackedSeq), sent.slice(2).map((m) => m.id));
        const acked = await store.consumers.ack('t', 'slow', sent[4]!.id, 2000);
        assert.ok(acked.kind === 'acked' && acked.state.lost === null && acked.state.pending === 0);
      });

      it('expires consumers last seen before a time, and keeps the others', async (t) => {
        const store = await openStore(t);
        await store.consumers.attach('t', 'idle', { owner: null, afterSeq: store.dispatchedThrough() }, 1000);
        await store.consumers.attach('t', 'busy', { owner: null, afterSeq: store.dispatchedThrough() }, 1000);
        await store.consumers.touch([{ topic: 't', name: 'busy' }], 5000);
        const held = await store.append(draft('t', 'held'));
        await eventually(async () => (await store.consumers.get('t', 'busy'))?.pending === 1, 'one pending');
        assert.equal(await store.consumers.expire(2000), 1);
        assert.equal(await store.consumers.get('t', 'idle'), undefined);
        assert.deepEqual((await store.consumers.list('t')).map((c) => c.name), ['busy']);
        assert.deepEqual(await pendingIds(store, 't', 0), [held.id]);
        assert.equal(await store.consumers.expire(6000), 1);
        assert.deepEqual(await store.consumers.list('t'), []);
        assert.deepEqual(await pendingIds(store, 't', 0), [], 'what the last consumer held is released with it');
      });

      it('holds past age retention too', async (t) => {
        const store = await openStore(t, { maxMessagesPerTopic: 0, maxAgeMs: 50 });
        await store.consumers.attach('t', 'c', { owner: null, afterSeq: store.dispatchedThrough() }, 1000);
        const old = await store.append(draft('t', 'old'));
        await eventually(async () => (await store.read({ afterSeq: 0, topics: ['t'], limit: 10 })).length === 0, 'age retention to prune it');
        assert.deepEqual(await pendingIds(store, 't', 0), [old.id]);
      });
    });
  });
}
