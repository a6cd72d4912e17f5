/**
 * `subscribe({ shareAcrossTabs: true })` in real Chromium: tabs are pages of one browser
 * context, on a page (another origin than the hub, so CORS applies) that imports the SDK bundle
 * `dist/web/sse-relay-client.js`. The hub's subscriber count (`GET /messages/:id`) says how many
 * connections the tabs hold.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, publish } from '../helpers/sse-client.js';

const BUNDLE = fileURLToPath(new URL('../../web/sse-relay-client.js', import.meta.url));

/** What a tab's page records; `window.startSubscription(url, id)` subscribes. */
const PAGE_SCRIPT = `
import { subscribe } from '/sse-relay-client.js';
window.tab = { events: [], opens: [], errors: [] };
window.startSubscription = (url, id) => {
  window.subscription = subscribe({
    url, id, shareAcrossTabs: true,
    onOpen: (info) => window.tab.opens.push({ ...info, at: Date.now() }),
    onMessage: (event) => window.tab.events.push(event),
    onError: (error) => window.tab.errors.push(error.code + ': ' + error.message),
  });
};
`;

const page = (before = ''): string => `<!doctype html><title>tab</title>${before}<script type="module">${PAGE_SCRIPT}</script>`;

interface Received {
  id?: string;
  event: string;
  data: string;
}

async function openTab(context: BrowserContext, url: string, hubUrl: string, topic: string): Promise<Page> {
  const tab = await context.newPage();
  tab.on('console', (message) => {
    if (message.type() === 'error') console.log(`# browser: ${message.text()}`);
  });
  await tab.goto(url);
  await tab.waitForFunction(() => typeof (window as unknown as { startSubscription?: unknown }).startSubscription === 'function');
  await tab.evaluate(([hub, id]) => (window as unknown as { startSubscription(u: string, i: string): void }).startSubscription(hub!, id!), [hubUrl, topic]);
  return tab;
}

// The fields a tab compares; `publishedAt` is checked apart (its value is the hub's clock).
const received = (tab: Page): Promise<Received[]> =>
  tab.evaluate(() => (window as unknown as { tab: { events: Received[] } }).tab.events.map(({ id, event, data }) => ({ id, event, data })));
/** How many of a tab's events carry their publish time as a Date (relayed tabs included). */
const timed = (tab: Page): Promise<number> =>
  tab.evaluate(() => (window as unknown as { tab: { events: { publishedAt?: unknown }[] } }).tab.events.filter((e) => e.publishedAt instanceof Date).length);
const opens = (tab: Page): Promise<{ reconnect: boolean; at: number }[]> => tab.evaluate(() => (window as unknown as { tab: { opens: { reconnect: boolean; at: number }[] } }).tab.opens);
const errors = (tab: Page): Promise<string[]> => tab.evaluate(() => (window as unknown as { tab: { errors: string[] } }).tab.errors);

describe('one hub connection shared by all tabs (shareAcrossTabs)', () => {
  let hub: TestHub;
  let pages: Server;
  let pageOrigin: string;
  let browser: Browser;

  before(async () => {
    const bundle = await readFile(BUNDLE);
    pages = createServer((request, response) => {
      if (request.url === '/sse-relay-client.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      else if (request.url === '/tabs.html') response.writeHead(200, { 'content-type': 'text/html' }).end(page());
      // BroadcastChannel gone before the SDK loads: each tab must fall back to its own connection.
      else if (request.url === '/no-broadcast-channel.html') response.writeHead(200, { 'content-type': 'text/html' }).end(page('<script>delete window.BroadcastChannel;</script>'));
      else response.writeHead(request.url === '/favicon.ico' ? 204 : 404).end();
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
    hub = await startHub({ corsOrigins: [pageOrigin] });
    browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 });
  });

  after(async () => {
    await browser?.close();
    await hub?.close();
    await new Promise((resolve) => pages?.close(resolve));
  });

  async function subscribers(topic: string): Promise<number> {
    const response = await fetch(`${hub.url}/messages/${topic}`);
    return ((await response.json()) as { subscribers: number }).subscribers;
  }

  async function waitForEvents(tabs: Page[], count: number, what: string): Promise<void> {
    await eventually(async () => {
      for (const tab of tabs) if ((await received(tab)).length < count) return false;
      return true;
    }, 20_000, what);
  }

  it('three tabs hold one connection, all receive everything, and a closed leader is replaced without a loss or a repeat', async () => {
    const topic = 'shared-tabs';
    const context = await browser.newContext();
    // The first tab asks for the lock first, so it leads.
    const tabs: Page[] = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(context, `${pageOrigin}/tabs.html`, hub.url, topic));
    await eventually(async () => (await Promise.all(tabs.map(opens))).every((o) => o.length === 1), 10_000, 'every tab to see the stream open');
    assert.equal(await subscribers(topic), 1, 'the hub sees one subscriber for three tabs');

    const published: Received[] = [];
    for (let i = 0; i < 10; i++) {
      const event = i % 2 === 0 ? 'message' : 'tick';
      const data = `first ${i}\nsecond line`;
      published.push({ id: await publish(hub.url, topic, data, event === 'message' ? undefined : event), event, data });
    }
    await waitForEvents(tabs, published.length, 'the first batch in every tab');
    for (const tab of tabs) assert.deepEqual(await received(tab), published);
    for (const tab of tabs) assert.equal(await timed(tab), published.length, 'followers get the publish time too');
    assert.equal(await subscribers(topic), 1);

    // Publish continuously; close the leader's tab part-way through.
    const [leader, ...followers] = tabs as [Page, Page, Page];
    let closed = false;
    let closedAt = 0;
    for (let i = 0; i < 120; i++) {
      if (i === 30) {
        closedAt = Date.now();
        await leader.close();
        closed = true;
      }
      const data = `continuous ${i}`;
      published.push({ id: await publish(hub.url, topic, data), event: 'message', data });
      if (!closed) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitForEvents(followers, published.length, 'every message in the remaining tabs');
    for (const tab of followers) {
      assert.deepEqual(await received(tab), published, 'every message once, in order');
      assert.deepEqual(await errors(tab), []);
      const seen = await opens(tab);
      assert.equal(seen.length, 2, 'the stream reopened once, from the new leader');
      assert.equal(seen[1]!.reconnect, true);
      console.log(`# the new leader's stream was open ${seen[1]!.at - closedAt} ms after the leader's tab began to close`);
    }
    await eventually(async () => (await subscribers(topic)) === 1, 10_000, 'one subscriber again');
    await context.close();
    await eventually(async () => (await subscribers(topic)) === 0, 10_000, 'no subscriber once every tab closed');
  });

  it('close() in a follower only detaches it, in the leader hands over; a tab that joins late gets what follows', async () => {
    const topic = 'shared-tabs-close';
    const context = await browser.newContext();
    const [leader, follower, leaving] = [
      await openTab(context, `${pageOrigin}/tabs.html`, hub.url, topic),
      await openTab(context, `${pageOrigin}/tabs.html`, hub.url, topic),
      await openTab(context, `${pageOrigin}/tabs.html`, hub.url, topic),
    ];
    const close = (tab: Page): Promise<void> => tab.evaluate(() => (window as unknown as { subscription: { close(): void } }).subscription.close());
    await eventually(async () => (await Promise.all([leader, follower, leaving].map(opens))).every((o) => o.length === 1), 10_000, 'every tab to see the stream open');
    const before = { id: await publish(hub.url, topic, 'before'), event: 'message', data: 'before' };
    await waitForEvents([leader, follower, leaving], 1, 'the first message everywhere');

    await close(leaving);
    const afterDetach = { id: await publish(hub.url, topic, 'after a follower left'), event: 'message', data: 'after a follower left' };
    await waitForEvents([leader, follower], 2, 'the second message in the tabs still subscribed');
    assert.equal(await subscribers(topic), 1, 'a follower leaving does not touch the connection');

    await close(leader);
    const afterHandover = { id: await publish(hub.url, topic, 'after the leader left'), event: 'message', data: 'after the leader left' };
    await waitForEvents([follower], 3, 'the third message in the new leader');
    assert.deepEqual(await received(follower), [before, afterDetach, afterHandover]);
    assert.deepEqual(await received(leader), [before, afterDetach], 'a closed subscription receives nothing more');
    assert.deepEqual(await received(leaving), [before]);
    await eventually(async () => (await subscribers(topic)) === 1, 10_000, 'one subscriber: the new leader');

    const late = await openTab(context, `${pageOrigin}/tabs.html`, hub.url, topic);
    await eventually(async () => (await opens(late)).length === 1, 10_000, 'the late tab to see the shared stream open');
    const afterJoin = { id: await publish(hub.url, topic, 'after a tab joined'), event: 'message', data: 'after a tab joined' };
    await waitForEvents([follower], 4, 'the fourth message');
    await waitForEvents([late], 1, 'the late tab to receive');
    assert.deepEqual(await received(late), [afterJoin], 'a late tab starts from the shared stream\'s position');
    assert.equal(await subscribers(topic), 1);
    await context.close();
  });

  it('without BroadcastChannel each tab opens its own connection and still receives everything', async () => {
    const topic = 'tabs-without-broadcast-channel';
    const context = await browser.newContext();
    const tabs: Page[] = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(context, `${pageOrigin}/no-broadcast-channel.html`, hub.url, topic));
    assert.equal(await tabs[0]!.evaluate(() => typeof BroadcastChannel), 'undefined');
    await eventually(async () => (await Promise.all(tabs.map(opens))).every((o) => o.length === 1), 10_000, 'every tab to open its stream');
    assert.equal(await subscribers(topic), 3, 'one connection per tab');

    const published: Received[] = [];
    for (let i = 0; i < 5; i++) published.push({ id: await publish(hub.url, topic, `fallback ${i}`), event: 'message', data: `fallback ${i}` });
    await waitForEvents(tabs, published.length, 'every message in every tab');
    for (const tab of tabs) assert.deepEqual(await received(tab), published);
    await context.close();
  });
});
