/**
 * An acknowledged consumer across `kill -9` of its hub process (SQLite file; Redis with an
 * append-only file): after the restart it resumes after its last acknowledgement, with every
 * unacknowledged message, although the topic's retention (2 messages) dropped most of them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { isMessage, openStream, post, publish, type TestStream } from '../helpers/sse-client.js';

async function consumerStream(hub: HubProcess, expected: number): Promise<TestStream> {
  const stream = await openStream(`${hub.url}/messages/subscribe/jobs?consumer=worker`);
  assert.equal(stream.status, 200);
  await stream.waitForCount(1 + expected);
  return stream;
}

async function ack(hub: HubProcess, id: string): Promise<void> {
  const res = await post(`${hub.url}/messages/jobs/consumers/worker/ack`, JSON.stringify({ id }), { 'content-type': 'application/json' });
  assert.equal(res.status, 200, res.text);
}

async function kill(hub: HubProcess): Promise<void> {
  hub.child.kill('SIGKILL');
  assert.equal(await hub.exited, 'SIGKILL');
}

const dataOf = (stream: TestStream): string[] => stream.events.filter(isMessage).map((e) => e.data);

describe('acknowledged consumers survive kill -9 of the hub', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const setups: [string, () => Promise<string[]>][] = [
    ['sqlite', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sse-relay-consumer-kill-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      return ['--data-dir', dir];
    }],
    ['redis', async () => {
      const redis: TestRedis = await startRedis({ persistence: 'aof' });
      cleanups.push(() => redis.stop());
      return ['--store', redis.url, '--redis-key-prefix', 'consumer-kill:'];
    }],
  ];

  for (const [kind, setup] of setups) {
    it(`resumes after the last acknowledgement with every unacknowledged message (${kind})`, async () => {
      const args = [...(await setup()), '--retention-count', '2'];
      let hub = await spawnHub(args);
      cleanups.push(async () => void hub.child.kill('SIGKILL'));
      const first = await consumerStream(hub, 0);
      const ids: string[] = [];
      for (let i = 1; i <= 6; i++) ids.push(await publish(hub.url, 'jobs', `job ${i}`));
      await first.waitForCount(7);
      await ack(hub, ids[1]!);
      await kill(hub);

      hub = await spawnHub(args);
      const second = await consumerStream(hub, 4);
      assert.equal(second.events[0]!.id, ids[1], 'the greeting names the acknowledged position');
      assert.deepEqual(dataOf(second), ['job 3', 'job 4', 'job 5', 'job 6']);
      await ack(hub, ids[3]!);
      // Killed with the stream open, right after the acknowledgement was answered.
      await kill(hub);

      hub = await spawnHub(args);
      const listed = (await (await fetch(`${hub.url}/messages/jobs/consumers`)).json()) as { consumers: { name: string; ackedId: string; pending: number }[] };
      assert.deepEqual(listed.consumers.map((c) => [c.name, c.ackedId, c.pending]), [['worker', ids[3], 2]]);
      const third = await consumerStream(hub, 2);
      assert.deepEqual(dataOf(third), ['job 5', 'job 6']);
      third.close();
      await kill(hub);
    });
  }
});
