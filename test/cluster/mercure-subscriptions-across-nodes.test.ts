import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { accessToken, MERCURE_SECRET, mercureUrl } from '../auth/tokens.js';
import type { HubProcess } from '../helpers/hub-process.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { eventually, openStream, type ReceivedEvent, type TestStream } from '../helpers/sse-client.js';
import { startCluster, type Cluster } from './cluster.js';

const unique = (): string => randomBytes(6).toString('hex');
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });
const DETAIL = 'https://mercure.rocks/authorization-detail';
const SUBSCRIPTIONS = '/.well-known/mercure/subscriptions';
/** A hub 0.x subscriber's URI template for every subscription event (one variable per segment of the event topic). */
const EVENTS_TEMPLATE = `${SUBSCRIPTIONS}{/match_type}{/match}{/subscriber}`;
/** The registry's default node TTL (redis-subscription-registry.ts). */
const NODE_TTL_MS = 10_000;

interface Doc {
  id: string;
  match: string;
  subscriber: string;
  active: boolean;
  payload?: unknown;
}

const mercureEvents = (events: ReceivedEvent[]): Doc[] => events.filter((e) => e.event === 'mercure').map((e) => JSON.parse(e.data) as Doc);

describe('active subscriptions with several hub processes on one Redis', () => {
  let redis: TestRedis;
  let cluster: Cluster;
  let a: HubProcess;
  let b: HubProcess;
  let c: HubProcess;
  let watcherToken: string;
  let subscriberToken: string;
  const streams: TestStream[] = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster(redis.url, 3, ['--subscriptions', '--publisher-jwt-key', MERCURE_SECRET, '--public-url', 'https://example.com']);
    [a, b, c] = cluster.nodes as [HubProcess, HubProcess, HubProcess];
    // A relative URL pattern (resolved against --public-url) covers the events and the API alike.
    watcherToken = await accessToken({ subscribe: [{ match: `${SUBSCRIPTIONS}{/*}?`, match_type: 'urlpattern' }] });
    subscriberToken = await accessToken({ details: [{ type: DETAIL, actions: ['subscribe'], topics: [{ match: '*' }], payload: { seat: 7 } }] });
  });
  after(async () => {
    for (const stream of streams) stream.close();
    await cluster?.stop();
    await redis?.stop();
  });

  async function list(node: HubProcess, path = SUBSCRIPTIONS): Promise<{ status: number; json: any; cursor: string }> {
    const res = await fetch(`${node.url}${path}`, { headers: bearer(watcherToken) });
    const cursor = /last-event-id="([^"]+)"/.exec(res.headers.get('link') ?? '')?.[1] ?? '';
    const text = await res.text();
    return { status: res.status, json: res.status === 200 ? JSON.parse(text) : text, cursor };
  }

  async function subscribeOn(node: HubProcess, topic: string): Promise<TestStream> {
    const stream = await openStream(mercureUrl(node.url, [['match', topic]]), bearer(subscriberToken));
    streams.push(stream);
    assert.equal(stream.status, 200);
    return stream;
  }

  /** Node A's watcher of every subscription event, from the cursor of A's list (list, then follow). */
  async function watchOnA(): Promise<TestStream> {
    const { cursor } = await list(a);
    const stream = await openStream(mercureUrl(a.url, [['topic', EVENTS_TEMPLATE], ['last_event_id', cursor]]), bearer(watcherToken));
    streams.push(stream);
    assert.equal(stream.status, 200);
    return stream;
  }

  const listedOn = async (node: HubProcess, match: string): Promise<Doc[]> => ((await list(node)).json.subscriptions as Doc[]).filter((d) => d.match === match);

  it("lists node B's subscriber on node A (all three API shapes), and A's watcher receives its creation and end events", async () => {
    const watcher = await watchOnA();
    const topic = `https://example.com/books/${unique()}`;
    const onB = await subscribeOn(b, topic);

    await watcher.waitFor((events) => mercureEvents(events).some((d) => d.match === topic && d.active));
    const created = mercureEvents(watcher.events).find((d) => d.match === topic)!;
    assert.deepEqual(created.payload, { seat: 7 });
    assert.ok(created.id.startsWith(`${SUBSCRIPTIONS}/exact/${encodeURIComponent(topic)}/urn%3Auuid%3A`));

    // Listed by every node, not only the one that holds the connection.
    for (const node of [a, b, c]) assert.deepEqual(await listedOn(node, topic), [created]);
    const byMatcher = await list(a, `${SUBSCRIPTIONS}/exact/${encodeURIComponent(topic)}`);
    assert.equal(byMatcher.status, 200);
    assert.deepEqual(byMatcher.json.subscriptions, [created]);
    const single = await list(a, created.id);
    assert.equal(single.status, 200);
    assert.deepEqual(single.json, created);

    onB.close();
    await watcher.waitFor((events) => mercureEvents(events).some((d) => d.id === created.id && !d.active));
    assert.deepEqual(mercureEvents(watcher.events).filter((d) => d.id === created.id), [created, { ...created, active: false }]);
    assert.deepEqual(await listedOn(a, topic), []);
    assert.equal((await list(a, created.id)).status, 404);
  });

  it('drops the subscriptions of a node killed with SIGKILL from every list within the node TTL, and a survivor announces them ended', async (t) => {
    const watcher = await watchOnA();
    const topic = `https://example.com/crash/${unique()}`;
    await subscribeOn(b, topic);
    await subscribeOn(b, topic);
    const onA = await subscribeOn(a, topic);
    await eventually(async () => (await listedOn(a, topic)).length === 3, 10_000, 'three subscriptions listed on A');
    const onBIds = (await listedOn(a, topic)).map((d) => d.id);
    const ofA = mercureEvents(watcher.events).filter((d) => d.match === topic && d.active);
    assert.equal(ofA.length, 3);

    const killedAt = Date.now();
    b.child.kill('SIGKILL');
    assert.equal(await b.exited, 'SIGKILL');
    // Only A's own subscriber is left, on A and on C, once B's heartbeat ran out.
    await eventually(async () => (await listedOn(a, topic)).length === 1 && (await listedOn(c, topic)).length === 1, NODE_TTL_MS + 10_000, "B's subscriptions to leave the lists");
    const goneAfterMs = Date.now() - killedAt;
    t.diagnostic(`B's subscriptions left the lists ${goneAfterMs} ms after the SIGKILL`);
    const left = (await listedOn(a, topic))[0]!;
    const ofB = onBIds.filter((id) => id !== left.id);
    assert.equal(ofB.length, 2);
    // Nothing said B was gone before its heartbeat could run out: the bound, not a speed.
    assert.ok(goneAfterMs <= NODE_TTL_MS + 5_000, `B's subscriptions were listed for ${goneAfterMs} ms after the crash`);

    // One survivor took B over and announced its subscriptions ended, exactly once each.
    await watcher.waitFor((events) => ofB.every((id) => mercureEvents(events).some((d) => d.id === id && !d.active)), 10_000);
    await new Promise((r) => setTimeout(r, 2 * (NODE_TTL_MS / 5)));
    for (const id of ofB) assert.equal(mercureEvents(watcher.events).filter((d) => d.id === id && !d.active).length, 1, id);
    assert.equal(mercureEvents(watcher.events).some((d) => d.id === left.id && !d.active), false, "A's own subscriber is still active");
  });

  it('hands the subscriptions of a node stopped with SIGTERM to the survivors, which announce them ended', async () => {
    const watcher = await watchOnA();
    const topic = `https://example.com/stop/${unique()}`;
    await subscribeOn(c, topic);
    await watcher.waitFor((events) => mercureEvents(events).some((d) => d.match === topic && d.active));
    const created = mercureEvents(watcher.events).find((d) => d.match === topic)!;

    c.child.kill('SIGTERM');
    assert.equal(await c.exited, 0);
    // A clean stop leaves the live set at once: no TTL to wait for.
    assert.deepEqual(await listedOn(a, topic), []);
    await watcher.waitFor((events) => mercureEvents(events).some((d) => d.id === created.id && !d.active), 10_000);
  });

  it('answers 503 (not a 500) while Redis is away', async () => {
    await redis.kill();
    const statuses = new Set<number>();
    await eventually(async () => statuses.add((await list(a)).status).has(503), 10_000, 'the list to fail with 503');
    assert.ok(!statuses.has(500), `statuses seen: ${[...statuses].join(', ')}`);
    const res = await list(a, `${SUBSCRIPTIONS}/exact/${encodeURIComponent('https://example.com/x')}/urn%3Auuid%3Ay`);
    assert.equal(res.status, 503);
  });
});
