/**
 * Every message frame carries its publish time (a leading `: published <ISO 8601>` comment):
 * the SDK exposes it as `publishedAt`, `sse-relay subscribe` prints it instead of the time it
 * received the message, and a plain EventSource sees the same events as before.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { publish, subscribe, type RelayEvent } from '../../src/client/index.js';
import { CLI_PATH } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';

/** Publishes `message` and returns its id and the window its publish time must fall in. */
async function timedPublish(url: string, id: string, message: string): Promise<{ id: string; from: number; to: number }> {
  const from = Date.now();
  const { id: eventId } = await publish({ url, id, message });
  return { id: eventId, from, to: Date.now() };
}

/** Waits until the wall clock is past `ms` plus a margin, so a receive time cannot be mistaken for it. */
async function clockPast(ms: number): Promise<void> {
  while (Date.now() <= ms + 1100) await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Runs `sse-relay subscribe` until `lines` lines reached stdout, then stops it with SIGINT. */
function subscribeLines(args: string[], lines: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'subscribe', ...args], { env: { ...process.env, SSE_RELAY_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out; stdout: ${stdout}; stderr: ${stderr}`));
    }, 15_000);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.split('\n').length > lines) child.kill('SIGINT');
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(stdout.split('\n').slice(0, lines));
    });
  });
}

describe('publish time on every message', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  test('the frame starts with the publish time, and a plain EventSource sees only the event', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/frame`);
    const sent = await timedPublish(hub.url, 'frame', 'hello');
    await stream.waitFor((events) => events.some((e) => e.data === 'hello'));
    const frame = /: published (\S+)\nid: (\S+)\ndata: hello\n\n/.exec(stream.raw());
    assert.ok(frame, stream.raw());
    assert.equal(frame[2], sent.id);
    const time = Date.parse(frame[1]!);
    assert.ok(time >= sent.from && time <= sent.to, `${frame[1]} within the publish call`);

    const source = new EventSource(`${hub.url}/messages/subscribe/frame?lastEventId=earliest`);
    const received: MessageEvent[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        source.onerror = () => reject(new Error('EventSource failed'));
        source.onmessage = (event) => {
          received.push(event);
          if (event.data === 'hello') resolve();
        };
      });
    } finally {
      source.close();
    }
    assert.deepEqual(
      received.map((e) => [e.lastEventId, e.data]),
      [[received[0]!.lastEventId, 'Subscribed to id frame'], [sent.id, 'hello']],
    );
  });

  test('the SDK gives replayed history its publish time, not the time it was replayed', async () => {
    const first = await timedPublish(hub.url, 'history', 'old news');
    await clockPast(first.to);
    const subscription = subscribe({ url: hub.url, id: 'history', lastEventId: 'earliest' });
    const events: RelayEvent[] = [];
    const replayedAt = Date.now();
    let live: { id: string; from: number; to: number } | undefined;
    for await (const event of subscription) {
      events.push(event);
      if (event.data === 'old news') live = await timedPublish(hub.url, 'history', 'fresh');
      if (event.data === 'fresh') break;
    }
    const [old, fresh] = events;
    assert.equal(old?.id, first.id);
    const oldTime = old.publishedAt?.getTime() ?? NaN;
    assert.ok(oldTime >= first.from && oldTime <= first.to, `publishedAt ${old.publishedAt?.toISOString()} is the publish time`);
    assert.ok(oldTime < replayedAt - 1000);
    assert.equal(fresh?.id, live!.id);
    const freshTime = fresh.publishedAt?.getTime() ?? NaN;
    assert.ok(freshTime >= live!.from && freshTime <= live!.to, `live publishedAt ${fresh.publishedAt?.toISOString()}`);
  });

  test('sse-relay subscribe prints the publish time of replayed messages, in text and JSON', async () => {
    const sent = await timedPublish(hub.url, 'cli-history', 'from before');
    await clockPast(sent.to);

    const [json] = await subscribeLines(['cli-history', '--last-event-id', 'earliest', '--json', '--url', hub.url], 1);
    const line = JSON.parse(json!) as { time: string; id: string; data: string };
    assert.equal(line.id, sent.id);
    const time = Date.parse(line.time);
    assert.ok(time >= sent.from && time <= sent.to, `time ${line.time} is the publish time, not the receive time`);

    const [text] = await subscribeLines(['cli-history', '--last-event-id', 'earliest', '--url', hub.url], 1);
    // The child has this process's environment, so the same locale and time zone.
    assert.equal(text, `${new Date(time).toLocaleString()} from before`);
  });
});
