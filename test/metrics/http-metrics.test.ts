import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/hub/errors.js';
import { accessToken, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { RawClient } from '../helpers/raw-http-client.js';
import { eventually, openStream, post } from '../helpers/sse-client.js';

const unique = (): string => randomBytes(6).toString('hex');
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** One sample of the Prometheus text exposition. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[name!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function scrape(hub: TestHub): Promise<Sample[]> {
  const res = await fetch(`${hub.url}/metrics`);
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}, not ${found.length}`);
  return found[0]?.value;
}

const refused = (samples: readonly Sample[], code: string): number | undefined => valueOf(samples, 'sse_relay_requests_refused_total', { code });
const durationCount = (samples: readonly Sample[], route: string, method: string, status: string): number =>
  valueOf(samples, 'sse_relay_http_request_duration_seconds_count', { route, method, status }) ?? 0;

describe('metrics: HTTP requests, refusals by error code, build info, gauges from start', () => {
  let hub: TestHub;
  let limited: TestHub;
  let publisher: Record<string, string>;
  before(async () => {
    publisher = bearer(await accessToken({ publish: [{ match: '*' }] }));
    hub = await startHub({ store: 'memory', publisherJwtKey: MERCURE_SECRET, anonymous: true, maxBodySize: 1024 });
    limited = await startHub({ store: 'memory', maxConnectionsPerIp: 1 });
  });
  after(async () => {
    await hub.close();
    await limited.close();
  });

  it('has the build info, every error code and both subscription APIs from the first scrape', async () => {
    const fresh = await startHub({ store: 'memory' });
    try {
      const samples = await scrape(fresh);
      assert.deepEqual(
        samples.filter((s) => s.name === 'sse_relay_build_info'),
        [{ name: 'sse_relay_build_info', labels: { version: PACKAGE_VERSION, node_version: process.versions.node }, value: 1 }],
      );
      assert.equal(valueOf(samples, 'sse_relay_subscriptions', { api: 'messages' }), 0);
      assert.equal(valueOf(samples, 'sse_relay_subscriptions', { api: 'mercure' }), 0);
      for (const code of Object.keys(ERROR_CODES)) assert.equal(refused(samples, code), 0, code);
    } finally {
      await fresh.close();
    }
  });

  it('times requests by route pattern, method and status, never by raw URL', async () => {
    const before = await scrape(hub);
    const ids = [unique(), unique(), unique()];
    for (const id of ids) assert.equal((await post(`${hub.url}/messages/${id}`, 'hello', { 'content-type': 'text/plain', ...publisher })).status, 200);
    const stranger = `nope-${unique()}`;
    assert.equal((await fetch(`${hub.url}/${stranger}`)).status, 404);
    const afterwards = await scrape(hub);

    assert.equal(durationCount(afterwards, '/messages/:id', 'POST', '200') - durationCount(before, '/messages/:id', 'POST', '200'), 3);
    assert.equal(durationCount(afterwards, 'unmatched', 'GET', '404') - durationCount(before, 'unmatched', 'GET', '404'), 1);
    const sum = valueOf(afterwards, 'sse_relay_http_request_duration_seconds_sum', { route: '/messages/:id', method: 'POST', status: '200' })!;
    assert.ok(sum > 0 && Number.isFinite(sum));
    const routes = new Set(afterwards.filter((s) => s.name.startsWith('sse_relay_http_request_duration_seconds')).map((s) => s.labels.route));
    for (const route of routes) {
      assert.ok(!ids.some((id) => route!.includes(id)) && !route!.includes(stranger), `a route pattern, not a URL: ${route}`);
    }
    const methods = new Set(afterwards.filter((s) => s.name === 'sse_relay_http_request_duration_seconds_count').map((s) => s.labels.method));
    for (const method of methods) assert.match(method!, /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|QUERY|other)$/);
  });

  it('does not time event streams: their lifetime is not a request duration', async () => {
    const topic = unique();
    const stream = await openStream(`${hub.url}/messages/subscribe/${topic}`);
    await stream.waitForCount(1);
    const open = await scrape(hub);
    assert.equal(valueOf(open, 'sse_relay_subscriptions', { api: 'messages' }), 1);
    assert.equal(valueOf(open, 'sse_relay_subscriptions', { api: 'mercure' }), 0);
    stream.close();
    await eventually(() => hub.hub.subscriptionCount === 0, 5000, 'the stream to end');
    const closed = await scrape(hub);
    assert.equal(closed.filter((s) => s.labels.route === '/messages/subscribe/:id').length, 0);
    assert.equal(valueOf(closed, 'sse_relay_subscriptions', { api: 'messages' }), 0);
  });

  it('does not time an event stream the hub ends either (its token expired)', async () => {
    // The hub ends the response here (res.end), so it finishes: a client that hangs up never
    // does, and the test above cannot tell whether a finished stream is timed.
    const fresh = await startHub({ store: 'memory', publisherJwtKey: MERCURE_SECRET, jwtIssuer: CONFORMANCE_ISSUER, jwtAudience: CONFORMANCE_AUDIENCE });
    try {
      const token = await accessToken({ subscribe: [{ match: '*' }] }, { exp: Math.floor(Date.now() / 1000) + 1 });
      const stream = await openStream(mercureUrl(fresh.url, [['topic', unique()]]), bearer(token));
      assert.equal(stream.status, 200);
      await stream.ended;
      assert.match(stream.raw(), /closed: access token expired/);
      await eventually(() => fresh.hub.subscriptionCount === 0, 5000, 'the stream to end');
      const samples = await scrape(fresh);
      const timedStreams = samples.filter((s) => s.name.startsWith('sse_relay_http_request_duration_seconds') && s.labels.method === 'GET');
      assert.deepEqual(timedStreams.map((s) => `${s.labels.route} ${s.labels.status}`), []);
    } finally {
      await fresh.close();
    }
  });

  it('counts refused requests by their error code, on both APIs', async () => {
    const noGrant = await accessToken({ publish: [{ match: 'https://example.com/other' }] });
    const before = await scrape(hub);
    // 401: a Mercure publish without a token.
    assert.equal((await mercurePublish(hub.url, [['topic', 'https://example.com/a'], ['data', 'x']])).status, 401);
    // 403, twice: a token without the grant.
    for (let i = 0; i < 2; i++) assert.equal((await mercurePublish(hub.url, [['topic', 'https://example.com/a'], ['data', 'x']], bearer(noGrant))).status, 403);
    // 413: over --max-body-size.
    assert.equal((await post(`${hub.url}/messages/big`, 'x'.repeat(4096), { 'content-type': 'text/plain', ...publisher })).status, 413);
    // 400: an id with a control character; 405: a method the route does not take.
    assert.equal((await post(`${hub.url}/messages/a%01b`, 'x', { 'content-type': 'text/plain', ...publisher })).status, 400);
    assert.equal((await fetch(`${hub.url}/messages/abc`, { method: 'PUT', body: 'x' })).status, 405);
    const afterwards = await scrape(hub);
    const delta = (code: string): number => refused(afterwards, code)! - refused(before, code)!;
    assert.equal(delta('HUB_ERR_UNAUTHORIZED'), 1);
    assert.equal(delta('HUB_ERR_FORBIDDEN'), 2);
    assert.equal(delta('HUB_ERR_BODY_TOO_LARGE'), 1);
    assert.equal(delta('HUB_ERR_TOPIC_INVALID'), 1);
    assert.equal(delta('HUB_ERR_METHOD_NOT_ALLOWED'), 1);
    assert.equal(delta('HUB_ERR_NOT_FOUND'), 0);
    assert.equal(durationCount(afterwards, '/.well-known/mercure', 'POST', '403') - durationCount(before, '/.well-known/mercure', 'POST', '403'), 2);
  });

  it('counts the refusals Node answers before a request exists: headers too large (431), a request too slow (408), malformed HTTP (400)', async () => {
    const fresh = await startHub({ store: 'memory', headersTimeout: 300, requestTimeout: 600 });
    try {
      const port = Number(new URL(fresh.url).port);
      const answerTo = async (bytes: string): Promise<number | undefined> => {
        const client = await RawClient.open(port);
        client.write(bytes);
        const answer = await client.next();
        client.close();
        return answer?.status;
      };
      const before = await scrape(fresh);
      assert.equal(await answerTo(`GET /healthz HTTP/1.1\r\nHost: hub\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431);
      assert.equal(await answerTo('GET /healthz HTTP/1.1\r\nHost: hub\r\n'), 408);
      assert.equal(await answerTo('GET /healthz HTTP/1.1\r\nHost hub\r\n\r\n'), 400);
      const afterwards = await scrape(fresh);
      const delta = (code: string): number => refused(afterwards, code)! - refused(before, code)!;
      assert.equal(delta('HUB_ERR_HEADERS_TOO_LARGE'), 1);
      assert.equal(delta('HUB_ERR_REQUEST_TIMEOUT'), 1);
      assert.equal(delta('HUB_ERR_BAD_REQUEST'), 1);
    } finally {
      await fresh.close();
    }
  });

  it('counts 429s past the connection limit', async () => {
    // Every answer this test sees is counted, whichever of its connections the cap refused (a
    // scrape's socket may still count while the next connection opens).
    let seen429 = 0;
    const statusOf = async (path: string): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${limited.url}${path}`, { headers: { Connection: 'close' } });
      if (res.status === 429) seen429++;
      return { status: res.status, text: await res.text() };
    };
    const scrapeLimited = async (): Promise<Sample[]> => {
      let text = '';
      await eventually(async () => {
        const res = await statusOf('/metrics');
        text = res.text;
        return res.status === 200;
      }, 5000, 'a scrape to be admitted');
      return parseExposition(text);
    };
    const before = await scrapeLimited();
    seen429 = 0;
    const streams = [];
    for (let i = 0; i < 2; i++) streams.push(await openStream(`${limited.url}/messages/subscribe/${unique()}`, { Connection: 'close' }));
    for (const stream of streams) if (stream.status === 429) seen429++;
    assert.ok(streams.some((stream) => stream.status === 429), 'one connection over the cap of 1');
    for (const stream of streams) stream.close();
    await eventually(() => limited.hub.subscriptionCount === 0, 5000, 'the streams to end');
    const afterwards = await scrapeLimited();
    assert.equal(refused(afterwards, 'HUB_ERR_TOO_MANY_CONNECTIONS')! - refused(before, 'HUB_ERR_TOO_MANY_CONNECTIONS')!, seen429);
  });
});
