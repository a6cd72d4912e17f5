/**
 * The hub process (SQLite store) stopped during a mixed load: publishers on several topics and
 * subscribers on both APIs. `test/store/restart-and-crash.test.ts` covers kill -9 under a
 * publishing load and SIGTERM of an idle hub; here subscribers are connected and resume.
 *
 * - SIGTERM: the hub exits 0 within its shutdown timeout; every stream ends with the final
 *   comment; every publish in flight is answered 200 or refused, none hangs.
 * - kill -9: after a restart, each subscriber resumes from the last id it received and gets
 *   every acknowledged message after it, once, in order, with no gap signal.
 * In both cases an acknowledged message is never lost. A publish whose answer was lost with the
 * process may or may not have been committed; it is then delivered like any other.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { isGreeting, openStream, post, type TestStream } from '../helpers/sse-client.js';

const TOPICS = ['k0', 'k1', 'k2'];

interface Load {
  readonly acknowledged: Map<string, { id: string; data: string }[]>;
  readonly attempted: Set<string>;
  readonly failures: string[];
  stop(): Promise<void>;
  total(): number;
}

/** Eight publishers round-robin over the topics until stopped or the hub is gone. */
function publishLoad(url: string): Load {
  const acknowledged = new Map(TOPICS.map((t) => [t, [] as { id: string; data: string }[]]));
  const attempted = new Set<string>();
  const failures: string[] = [];
  let running = true;
  const workers = Array.from({ length: 8 }, async (_, p) => {
    for (let i = 0; running; i++) {
      const topic = TOPICS[(p + i) % TOPICS.length]!;
      const data = `p${p}-${i}`;
      attempted.add(data);
      try {
        const res = await post(`${url}/messages/${topic}`, data, { 'content-type': 'text/plain' });
        if (res.status === 200) acknowledged.get(topic)!.push({ id: res.json.id, data });
        else {
          failures.push(`${res.status} ${res.json?.error?.code}`);
          if (res.status === 503) return;
        }
      } catch (error) {
        failures.push(String((error as Error).cause ?? error));
        return; // the hub is gone
      }
    }
  });
  return {
    acknowledged,
    attempted,
    failures,
    total: () => [...acknowledged.values()].reduce((n, list) => n + list.length, 0),
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

// The greeting carries the stream's start position as its id: a cursor, not a message.
const messageEvents = (s: TestStream): { id: string; data: string }[] => s.events.filter((e) => e.id !== undefined && !isGreeting(e)).map((e) => ({ id: e.id!, data: e.data }));

describe('hub process stopped during a mixed load (SQLite)', () => {
  let dataRoot: string;
  const running: HubProcess[] = [];
  before(async () => {
    dataRoot = await mkdtemp(join(tmpdir(), 'sse-relay-kill-'));
  });
  after(async () => {
    for (const hub of running) hub.child.kill('SIGKILL');
    await Promise.all(running.map((h) => h.exited));
    await rm(dataRoot, { recursive: true, force: true });
  });
  const start = async (dir: string): Promise<HubProcess> => {
    const hub = await spawnHub(['--data-dir', dir, '--retention-count', '100000', '--shutdown-timeout', '5s']);
    running.push(hub);
    return hub;
  };
  const subscribeAll = async (url: string, headers: (topic: string, i: number) => Record<string, string> = () => ({})): Promise<{ topic: string; stream: TestStream }[]> => {
    const streams: { topic: string; stream: TestStream }[] = [];
    for (const [i, topic] of TOPICS.entries()) {
      streams.push({ topic, stream: await openStream(`${url}/messages/subscribe/${topic}`, headers(topic, 2 * i)) });
      streams.push({ topic, stream: await openStream(`${url}/.well-known/mercure?match=${topic}`, headers(topic, 2 * i + 1)) });
    }
    return streams;
  };

  it('SIGTERM: exits 0 in time, ends every stream with a final comment, answers every publish in flight', async () => {
    const dir = join(dataRoot, 'term');
    const hub = await start(dir);
    const streams = await subscribeAll(hub.url);
    const load = publishLoad(hub.url);
    while (load.total() < 1500) await new Promise((r) => setTimeout(r, 5));
    const signalled = performance.now();
    hub.child.kill('SIGTERM');
    assert.equal(await hub.exited, 0);
    assert.ok(performance.now() - signalled < 5000, 'within --shutdown-timeout');
    await load.stop();
    for (const { stream } of streams) {
      await stream.ended;
      assert.ok(stream.comments.includes('closed: hub shutting down'), `final comment, got ${JSON.stringify(stream.comments.slice(-2))}`);
    }
    const unexpected = load.failures.filter((f) => !/^503 HUB_ERR_SHUTTING_DOWN$|ECONNREFUSED|ECONNRESET|other side closed|socket hang up|SocketError/.test(f));
    assert.deepEqual(unexpected, [], 'publishes in flight are answered or cut, nothing else');

    const restarted = await start(dir);
    try {
      for (const topic of TOPICS) {
        const acked = load.acknowledged.get(topic)!;
        const replay = await openStream(`${restarted.url}/messages/subscribe/${topic}?lastEventId=earliest`);
        await replay.waitFor((events) => events.some((e) => e.id === acked.at(-1)!.id), 15_000);
        const stored = new Map(messageEvents(replay).map((m) => [m.id, m.data]));
        replay.close();
        assert.deepEqual(acked.filter((m) => stored.get(m.id) !== m.data), [], `acknowledged messages of ${topic} all stored`);
      }
    } finally {
      restarted.child.kill('SIGTERM');
      await restarted.exited;
    }
  });

  it('kill -9: subscribers resume from their last id after the restart and miss nothing acknowledged', async () => {
    const dir = join(dataRoot, 'kill');
    const hub = await start(dir);
    const before = await subscribeAll(hub.url);
    const load = publishLoad(hub.url);
    while (load.total() < 3000) await new Promise((r) => setTimeout(r, 5));
    hub.child.kill('SIGKILL');
    assert.equal(await hub.exited, 'SIGKILL');
    await load.stop();
    for (const { stream } of before) await stream.ended;

    const restarted = await start(dir);
    try {
      // Each subscriber resumes from the last id it saw (what EventSource does), on the same API.
      const cursors = before.map(({ stream }) => messageEvents(stream).at(-1)?.id ?? 'earliest');
      const resumed = await subscribeAll(restarted.url, (_topic, i) => ({ 'Last-Event-ID': cursors[i]! }));
      for (const [i, { topic, stream }] of resumed.entries()) {
        const acked = load.acknowledged.get(topic)!;
        const lastAcked = acked.at(-1)!.id;
        // It may have seen the newest acknowledged message before the crash already.
        if (!messageEvents(before[i]!.stream).some((m) => m.id === lastAcked)) await stream.waitFor((events) => events.some((e) => e.id === lastAcked), 15_000);
        assert.equal(stream.headers['replay-gap'], undefined, 'no gap');
        const seen = [...messageEvents(before[i]!.stream), ...messageEvents(stream)];
        const ids = seen.map((m) => m.id);
        assert.equal(new Set(ids).size, ids.length, `no duplicates across the crash (${topic}, stream ${i})`);
        assert.deepEqual(ids, [...ids].sort((a, b) => Number(a) - Number(b)), 'in id order');
        const byId = new Map(seen.map((m) => [m.id, m.data]));
        assert.deepEqual(acked.filter((m) => byId.get(m.id) !== m.data), [], `every acknowledged message of ${topic} received`);
        const ackedIds = new Set(acked.map((m) => m.id));
        const extra = seen.filter((m) => !ackedIds.has(m.id));
        assert.ok(extra.every((m) => load.attempted.has(m.data)), 'extras are publishes whose answer died with the process');
        stream.close();
      }
    } finally {
      restarted.child.kill('SIGTERM');
      await restarted.exited;
    }
  });
});
