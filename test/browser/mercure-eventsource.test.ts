/**
 * A real browser against the hub, the way Mercure's own conformance suite (`conformance-tests/`
 * in dunglas/mercure) exercises a hub: a page opens an `EventSource` on `/.well-known/mercure`
 * as an anonymous subscriber, waits for `open`, and an update published with a token signed
 * with HS256 key `!ChangeThisMercureHubJWTSecretKey!` and a custom id must reach it (or must not:
 * non-matching selectors, private updates). Here the page lives on another origin than the hub,
 * so CORS is exercised as a browser applies it, preflights included.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CONFORMANCE_ACCESS_TOKEN, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, CONFORMANCE_LEGACY_TOKEN, MERCURE_SECRET, mercurePublish } from '../auth/tokens.js';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';

const random = (): string => randomBytes(20).toString('hex');

interface Case {
  name: string;
  updateTopics: string[];
  /** [query parameter, selector] */
  selectors: [string, string][];
  mustBeReceived: boolean;
  private?: boolean;
}

interface PageResult {
  received: boolean;
  lastEventId: string | undefined;
  status: number;
  contentType: string | null;
  body: string;
}

describe('a browser EventSource receives Mercure updates (conformance-style)', () => {
  let hub: TestHub;
  let pages: Server;
  let pageOrigin: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    const executablePath = chromiumExecutable();
    pages = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>sse-relay</title><p>conformance'));
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
    // Configured as Mercure's docs configure a development hub: one HS256 key, anonymous subscribers.
    hub = await startHub({
      publisherJwtKey: MERCURE_SECRET,
      anonymous: true,
      jwtIssuer: CONFORMANCE_ISSUER,
      jwtAudience: CONFORMANCE_AUDIENCE,
      corsOrigins: [pageOrigin],
    });
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 });
    page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') console.log(`# browser: ${message.text()}`);
    });
    await page.goto(pageOrigin);
  });

  after(async () => {
    await browser?.close();
    await hub?.close();
    await new Promise((resolve) => pages?.close(resolve));
  });

  /**
   * In the page: subscribe (plus a sentinel topic), wait for `open`, let `publish` run, then
   * publish the sentinel; the update was received or not by the time the sentinel arrives.
   */
  async function runInPage(c: Case, updateId: string, publishFrom: 'page' | 'node', token: string): Promise<PageResult> {
    const sentinel = `sentinel-${random()}`;
    const data = `data for\n\n        ${c.name}`;
    const ready = page.evaluate(
      ({ hubUrl, selectors, sentinel }) => {
        const url = new URL('/.well-known/mercure', hubUrl);
        for (const [name, value] of selectors) url.searchParams.append(name, value);
        url.searchParams.append('match', sentinel);
        const es = new EventSource(url);
        const w = window as unknown as Record<string, unknown>;
        w.__events = [] as { data: string; lastEventId: string; type: string }[];
        w.__es = es;
        es.onmessage = (e) => (w.__events as unknown[]).push({ data: e.data, lastEventId: e.lastEventId, type: e.type });
        return new Promise<void>((resolve, reject) => {
          es.onopen = () => resolve();
          setTimeout(() => reject(new Error('EventSource did not open within 10 s')), 10_000);
        });
      },
      { hubUrl: hub.url, selectors: c.selectors, sentinel },
    );
    await ready;

    const fields: [string, string][] = [...c.updateTopics.map((t): [string, string] => ['topic', t]), ['id', updateId], ['data', data]];
    if (c.private) fields.push(['private', 'on']);
    let answer: { status: number; contentType: string | null; body: string };
    if (publishFrom === 'node') {
      const res = await mercurePublish(hub.url, fields, { Authorization: `Bearer ${token}` });
      answer = { status: res.status, contentType: res.headers.get('content-type'), body: res.text };
    } else {
      // Cross-origin fetch with an Authorization header: the browser preflights it.
      answer = await page.evaluate(
        async ({ hubUrl, fields, token }) => {
          const res = await fetch(new URL('/.well-known/mercure', hubUrl), {
            method: 'POST',
            headers: { Authorization: `Bearer ${token}` },
            body: new URLSearchParams(fields),
          });
          return { status: res.status, contentType: res.headers.get('Content-Type'), body: await res.text() };
        },
        { hubUrl: hub.url, fields, token },
      );
    }
    const sent = await mercurePublish(hub.url, [['topic', sentinel], ['data', sentinel]], { Authorization: `Bearer ${CONFORMANCE_LEGACY_TOKEN}` });
    assert.equal(sent.status, 200, sent.text);

    const events = await page.evaluate(
      ({ sentinel }) =>
        new Promise<{ data: string; lastEventId: string; type: string }[]>((resolve, reject) => {
          const w = window as unknown as Record<string, unknown>;
          const deadline = Date.now() + 10_000;
          const poll = (): void => {
            const events = w.__events as { data: string; lastEventId: string; type: string }[];
            if (events.some((e) => e.data === sentinel)) {
              (w.__es as EventSource).close();
              resolve(events);
            } else if (Date.now() > deadline) {
              reject(new Error(`sentinel not received; events: ${JSON.stringify(events)}`));
            } else {
              setTimeout(poll, 10);
            }
          };
          poll();
        }),
      { sentinel },
    );
    const update = events.find((e) => e.data === data && e.type === 'message');
    return { received: update !== undefined, lastEventId: update?.lastEventId, ...answer };
  }

  const strings = Array.from({ length: 6 }, random);
  const cases: Case[] = [
    { name: 'raw string', mustBeReceived: true, updateTopics: [strings[0]!], selectors: [['topic', strings[0]!]] },
    { name: 'multiple topics', mustBeReceived: true, updateTopics: [random(), strings[1]!], selectors: [['topic', strings[1]!]] },
    { name: 'multiple topic selectors', mustBeReceived: true, updateTopics: [strings[2]!], selectors: [['topic', 'foo'], ['match', strings[2]!]] },
    { name: 'URI', mustBeReceived: true, updateTopics: [`https://example.net/foo/${strings[3]}`], selectors: [['match', `https://example.net/foo/${strings[3]}`]] },
    { name: 'URI template', mustBeReceived: true, updateTopics: [`https://example.net/foo/${strings[4]}`], selectors: [['topic', 'https://example.net/foo/{random}']] },
    { name: 'URL pattern', mustBeReceived: true, updateTopics: [`https://example.net/foo/${strings[5]}`], selectors: [['match_urlpattern', 'https://example.net/foo/:random']] },
    { name: 'nonmatching raw string', mustBeReceived: false, updateTopics: ['will-not-match}'], selectors: [['topic', 'another-name']] },
    { name: 'nonmatching URI', mustBeReceived: false, updateTopics: ['https://example.net/foo/will-not-match}'], selectors: [['match', 'https://example.net/foo/another-name']] },
    { name: 'nonmatching URI template', mustBeReceived: false, updateTopics: ['https://example.net/foo/will-not-match}'], selectors: [['topic', 'https://example.net/bar/{var}']] },
    { name: 'nonmatching URL pattern', mustBeReceived: false, updateTopics: ['https://example.net/foo/will-not-match'], selectors: [['match_urlpattern', 'https://example.net/bar/:var']] },
    { name: 'private raw string', mustBeReceived: false, private: true, updateTopics: [strings[0]!], selectors: [['topic', strings[0]!]] },
    { name: 'private URI template', mustBeReceived: false, private: true, updateTopics: [`https://example.net/foo/${strings[4]}`], selectors: [['topic', 'https://example.net/foo/{random}']] },
    { name: 'private URL pattern', mustBeReceived: false, private: true, updateTopics: [`https://example.net/foo/${strings[5]}`], selectors: [['match_urlpattern', 'https://example.net/foo/:random']] },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const updateId = `id-${JSON.stringify(c.updateTopics)}`;
      const result = await runInPage(c, updateId, 'node', CONFORMANCE_LEGACY_TOKEN);
      assert.equal(result.status, 200, result.body);
      assert.match(result.contentType ?? '', /^text\/plain(?:$|;.*)/);
      assert.equal(result.body, updateId);
      assert.equal(result.received, c.mustBeReceived);
      if (c.mustBeReceived) assert.equal(result.lastEventId, updateId);
    });
  }

  it('a page publishes cross-origin with an RFC 9068 token and receives its own update', async () => {
    const topic = `https://example.net/page/${random()}`;
    const updateId = `page-${random()}`;
    const result = await runInPage({ name: 'from the page', mustBeReceived: true, updateTopics: [topic], selectors: [['match', topic]] }, updateId, 'page', CONFORMANCE_ACCESS_TOKEN);
    assert.equal(result.status, 200, result.body);
    assert.match(result.contentType ?? '', /^text\/plain/);
    assert.equal(result.body, updateId);
    assert.equal(result.received, true);
    assert.equal(result.lastEventId, updateId);
  });
});
