/**
 * A subscription is registered before its stream opens (so nothing committed meanwhile is
 * missed), and it can end in that window: the hub shuts down, or more messages arrive than the
 * hub holds for one subscriber. The client must then get a clear answer (503 with a code), not
 * a stream that never says anything, and the hub must keep nothing of it.
 *
 * The window is the cursor resolution. A real memory store whose `resolveCursor` waits for the
 * test to let it go holds the window open for as long as the test needs.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { serveOptions } from '../../src/config/load.js';
import type { RelayServer } from '../../src/http/server.js';
import { startRelay } from '../../src/relay.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { Cursor } from '../../src/store/store.js';
import { eventually } from '../helpers/sse-client.js';

/** A memory store whose cursor resolution waits until `release()`. */
class GatedMemoryStore extends MemoryStore {
  /** Cursor resolutions started so far. */
  waiting = 0;
  private unblock!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.unblock = resolve));

  constructor() {
    super({ maxMessages: 100_000, maxMessagesPerTopic: 0, maxAgeMs: 0 });
  }

  release(): void {
    this.unblock();
  }

  override async resolveCursor(lastEventId: string, topics?: readonly string[]): Promise<Cursor> {
    this.waiting++;
    await this.gate;
    return super.resolveCursor(lastEventId, topics);
  }
}

/**
 * GETs an event stream and resolves with the status and body once the response ends; rejects
 * when it has not ended within 10 s (a stream left open and silent is the bug this file guards).
 */
function subscribe(base: string, path: string, lastEventId: string): Promise<{ status: number; body: string; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers: { Accept: 'text/event-stream', 'Last-Event-ID': lastEventId } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body, contentType: res.headers['content-type'] });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error('the response neither ended nor answered within 10 s'));
    }, 10_000);
    req.on('error', reject);
    req.end();
  });
}

async function startGatedHub(): Promise<{ server: RelayServer; store: GatedMemoryStore }> {
  const store = new GatedMemoryStore();
  const server = await startRelay(serveOptions({ host: '127.0.0.1', port: 0, logLevel: 'silent', store: 'memory' }), { store });
  return { server, store };
}

describe('a subscription that ends before its stream opens', () => {
  it('answers 503 HUB_ERR_SHUTTING_DOWN when the hub shuts down while the cursor resolves', async () => {
    const { server, store } = await startGatedHub();
    try {
      const pending = subscribe(server.url, '/messages/subscribe/opening', 'earliest-unknown-id');
      await eventually(() => store.waiting === 1, 5000, 'the cursor resolution to start');
      assert.equal(server.hub.subscriptionCount, 1, 'registered while its cursor resolves');
      server.hub.beginShutdown();
      store.release();
      const answer = await pending;
      assert.equal(answer.status, 503);
      assert.match(answer.contentType ?? '', /application\/json/);
      assert.equal(JSON.parse(answer.body).error.code, 'HUB_ERR_SHUTTING_DOWN');
      assert.equal(server.hub.subscriptionCount, 0);
    } finally {
      store.release();
      await server.close();
    }
  });

  it('answers 503 HUB_ERR_SUBSCRIBER_BEHIND when more messages arrive than the hub holds for it, and keeps serving others', async () => {
    const { server, store } = await startGatedHub();
    try {
      const pending = subscribe(server.url, '/messages/subscribe/flood', 'an-unknown-id');
      await eventually(() => store.waiting === 1, 5000, 'the cursor resolution to start');
      // The hub holds up to 10,000 live messages for a subscription whose history is not replayed yet.
      for (let i = 0; i <= 10_000; i++) await server.hub.publish({ topics: ['flood'], data: `m${i}` });
      store.release();
      const answer = await pending;
      assert.equal(answer.status, 503);
      const error = JSON.parse(answer.body).error;
      assert.equal(error.code, 'HUB_ERR_SUBSCRIBER_BEHIND');
      assert.match(error.message, /Last-Event-ID/);
      assert.equal(server.hub.subscriptionCount, 0);

      // The hub itself is fine: a new subscriber resumes from the start and gets everything.
      const again = await new Promise<string>((resolve, reject) => {
        const req = request(`${server.url}/messages/subscribe/flood?lastEventId=earliest`, { headers: { Accept: 'text/event-stream' } }, (res) => {
          assert.equal(res.statusCode, 200);
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => {
            body += c;
            if (body.includes('data: m10000\n')) {
              req.destroy();
              resolve(body);
            }
          });
        });
        // Destroying the request once everything arrived may surface as an error: ignored then.
        req.on('error', reject);
        req.end();
      });
      assert.ok(again.includes('data: m0\n'));
    } finally {
      store.release();
      await server.close();
    }
  });
});
