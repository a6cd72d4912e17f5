/**
 * A history read that fails after the response has started (Redis dies or stalls mid-replay)
 * must end the stream with a final comment saying why, so the client reconnects and resumes
 * with its Last-Event-ID, instead of leaving it open with heartbeats and no messages.
 */
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startHub } from '../helpers/hub.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { eventually, lastEventIdOf, post } from '../helpers/sse-client.js';

const MESSAGES = 3000;
const BODY = 'x'.repeat(8000);

/** Opens a stream whose body is not read until `resume()`: replay stalls on backpressure. */
function openPausedStream(url: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; text: () => string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      res.pause();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
      });
      resolve({ res, text: () => text, ended });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Publishes MESSAGES messages (`<n> xxx…`) and returns their numbers in commit order. */
async function publishMany(hubUrl: string, id: string): Promise<number[]> {
  let next = 0;
  const committed: { seq: number; n: number }[] = [];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < MESSAGES) {
        const n = next++;
        const res = await post(`${hubUrl}/messages/${id}`, JSON.stringify({ message: `${n} ${BODY}` }), { 'content-type': 'application/json' });
        assert.equal(res.status, 200, res.text);
        committed.push({ seq: Number((JSON.parse(res.text) as { id: string }).id), n });
      }
    }),
  );
  return committed.sort((a, b) => a.seq - b.seq).map((c) => c.n);
}

async function redisPid(redis: TestRedis): Promise<number> {
  const admin = new Redis(redis.url, { protocol: 2 });
  try {
    return Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
  } finally {
    admin.disconnect();
  }
}

describe('a store failure during replay ends the stream', () => {
  for (const failure of ['killed', 'stalled'] as const) {
    const title =
      failure === 'killed'
        ? 'Redis killed mid-replay: the stream ends with a comment saying why'
        : 'Redis stalled mid-replay: the stream ends with a comment saying why, and resuming from its last id yields the rest once';
    it(title, async (t) => {
      const redis = await startRedis();
      t.after(() => redis.stop());
      const hub = await startHub({ store: redis.url as `redis://${string}`, heartbeatInterval: 200, retentionCount: 10_000 });
      t.after(() => hub.close());
      const id = `replay-${failure}`;
      const history = await publishMany(hub.url, id);

      const stream = await openPausedStream(`${hub.url}/messages/subscribe/${id}`, { 'Last-Event-ID': 'earliest' });
      // Let replay fill the socket and wait on backpressure, then take the store away.
      await new Promise((resolve) => setTimeout(resolve, 300));
      let pid = 0;
      if (failure === 'killed') await redis.kill();
      else {
        pid = await redisPid(redis);
        process.kill(pid, 'SIGSTOP');
      }
      t.after(() => {
        if (pid > 0) process.kill(pid, 'SIGCONT');
      });
      stream.res.resume();
      const outcome = await Promise.race([stream.ended.then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 15_000, 'still open'))]);
      assert.equal(outcome, 'ended', `the stream must end rather than stay open and silent (received ${[...stream.text().matchAll(/^data: \d+ /gm)].length} of ${MESSAGES}, tail ${JSON.stringify(stream.text().slice(-80))})`);

      const text = stream.text();
      assert.ok(text.endsWith(': closed: the store failed to read history; reconnect to resume\n\n'), `ends with the reason; tail: ${JSON.stringify(text.slice(-120))}`);
      const numbers = [...text.matchAll(/^data: (\d+) x+$/gm)].map((m) => Number(m[1]));
      assert.ok(numbers.length > 0 && numbers.length < MESSAGES, `a partial replay (${numbers.length} of ${MESSAGES})`);
      assert.deepEqual(numbers, history.slice(0, numbers.length), 'what arrived is the start of the history, in order');

      // Once the store is back, resuming from the last id received yields the rest, once.
      if (failure === 'killed') await redis.restart();
      else {
        process.kill(pid, 'SIGCONT');
        pid = 0;
      }
      const lastId = lastEventIdOf(text);
      assert.ok(lastId !== undefined);
      if (failure === 'stalled') {
        await eventually(async () => (await fetch(`${hub.url}/readyz`)).status === 200, 20_000, 'the hub to see Redis again');
        const resumed = await openPausedStream(`${hub.url}/messages/subscribe/${id}`, { 'Last-Event-ID': lastId });
        assert.equal(resumed.res.statusCode, 200);
        resumed.res.resume();
        const deadline = Date.now() + 20_000;
        while (!resumed.text().includes(`data: ${history.at(-1)} `) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        resumed.res.destroy();
        const rest = [...resumed.text().matchAll(/^data: (\d+) x+$/gm)].map((m) => Number(m[1]));
        assert.deepEqual(rest, history.slice(numbers.length), 'the rest of the history, once');
      }
    });
  }
});
