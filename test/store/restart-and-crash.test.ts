import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { isGreeting, openStream, publish, type ReceivedEvent } from '../helpers/sse-client.js';

const messageEvents = (events: ReceivedEvent[]): { id: string; data: string }[] =>
  events.filter((e) => e.id !== undefined && !isGreeting(e)).map((e) => ({ id: e.id!, data: e.data }));

describe('the SQLite store across restarts and crashes (hub as a child process)', () => {
  let dataDir: string;
  const running: HubProcess[] = [];
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-crash-'));
  });
  after(async () => {
    for (const hub of running) hub.child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = async (dir: string): Promise<HubProcess> => {
    const hub = await spawnHub(['--data-dir', dir, '--retention-count', '100000']);
    running.push(hub);
    return hub;
  };

  it('stops gracefully on SIGTERM: streams end, exit code 0', async () => {
    const dir = join(dataDir, 'graceful');
    const hub = await start(dir);
    const stream = await openStream(`${hub.url}/messages/subscribe/bye`);
    await stream.waitForCount(1);
    hub.child.kill('SIGTERM');
    await stream.ended;
    assert.equal(await hub.exited, 0);
  });

  it('keeps history and increasing ids across a restart, and clients resume', async () => {
    const dir = join(dataDir, 'restart');
    const first = await start(dir);
    const before1 = await publish(first.url, 'kept', 'one');
    const before2 = await publish(first.url, 'kept', 'two');
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    const second = await start(dir);
    const after1 = await publish(second.url, 'kept', 'three');
    assert.ok(Number(after1) > Number(before2), `${after1} > ${before2}`);
    const resumed = await openStream(`${second.url}/messages/subscribe/kept`, { 'Last-Event-ID': before1 });
    try {
      await resumed.waitForCount(3);
      assert.equal(resumed.headers['replay-gap'], undefined);
      assert.deepEqual(messageEvents(resumed.events), [
        { id: before2, data: 'two' },
        { id: after1, data: 'three' },
      ]);
    } finally {
      resumed.close();
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('after kill -9 during a publishing load, every acknowledged message is there once, in order', async () => {
    const dir = join(dataDir, 'crash');
    const hub = await start(dir);
    const acknowledged: { id: string; data: string }[] = [];
    let failures = 0;
    const publishers = Array.from({ length: 8 }, async (_, p) => {
      for (let i = 0; ; i++) {
        try {
          const data = `p${p}-${i}`;
          acknowledged.push({ id: await publish(hub.url, 'crash', data), data });
        } catch {
          failures++;
          return; // the hub is gone
        }
      }
    });
    while (acknowledged.length < 3000) await new Promise((r) => setTimeout(r, 5));
    hub.child.kill('SIGKILL');
    await Promise.all(publishers);
    assert.equal(await hub.exited, 'SIGKILL');

    const restarted = await start(dir);
    const stream = await openStream(`${restarted.url}/messages/subscribe/crash?lastEventId=earliest`);
    try {
      const acked = [...acknowledged].sort((a, b) => Number(a.id) - Number(b.id));
      const lastAcked = Number(acked.at(-1)!.id);
      // Replay is in id order: once the newest acknowledged id arrived, all older ones have too.
      await stream.waitFor((events) => events.some((e) => e.id !== undefined && Number(e.id) >= lastAcked), 30_000);
      const stored = messageEvents(stream.events);
      const ids = stored.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, 'no duplicates');
      assert.deepEqual(ids, [...ids].sort((a, b) => Number(a) - Number(b)), 'in id order');
      const byId = new Map(stored.map((m) => [m.id, m.data]));
      const missing = acked.filter((m) => byId.get(m.id) !== m.data);
      assert.deepEqual(missing, [], `acknowledged messages missing after the crash (${failures} publishes failed)`);
    } finally {
      stream.close();
      restarted.child.kill('SIGTERM');
      await restarted.exited;
    }
  });
});
