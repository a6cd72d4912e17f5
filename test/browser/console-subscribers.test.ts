/**
 * The console's "who is subscribed" view, in Chromium: it lists the subscriptions that receive
 * a topic through Mercure's active subscriptions API and keeps the list current from the
 * subscription events (hub with keys), re-reads it on an open hub (which delivers private
 * events to nobody), and says so when the hub runs without `--subscriptions`.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { accessToken, legacyToken, MERCURE_SECRET, mercureUrl } from '../auth/tokens.js';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';
import { openConsolePage, screenshot } from './console-page.js';

/** The rows of the view: matcher and its type, as the page shows them. */
function shown(page: Page): Promise<{ match: string; meta: string }[]> {
  return page.$$eval('#who-list li', (items) => items.map((li) => ({ match: li.querySelector('.match')!.textContent!, meta: li.textContent! })));
}

async function showWho(page: Page, topic: string): Promise<void> {
  await page.getByLabel('Topic', { exact: true }).fill(topic);
  await page.getByRole('button', { name: 'Show', exact: true }).click();
}

const rowCount = (page: Page, count: number): Promise<unknown> =>
  page.waitForFunction((count) => document.querySelectorAll('#who-list li').length === count, count, { timeout: 10_000 });

describe('the console shows who is subscribed to a topic (Chromium)', () => {
  let browser: Browser | undefined;
  const hubs: TestHub[] = [];
  const launch = async (): Promise<Browser> =>
    (browser ??= await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 }));
  after(async () => {
    await browser?.close();
    for (const hub of hubs) await hub.close();
  });

  it('lists the subscriptions that receive the topic and follows them as they come and go (hub with keys)', async () => {
    const hub = await startHub({ publisherJwtKey: MERCURE_SECRET, subscriptions: true, store: 'memory' });
    hubs.push(hub);
    const { page, errors } = await openConsolePage(await launch(), { width: 1280, height: 800 });
    const topic = 'https://example.com/who/1';
    await page.goto(hub.url);

    // A token that may not read the subscriptions: the view says what is missing.
    await page.getByLabel('Bearer token').fill(await accessToken({ subscribe: [{ match: 'https://example.com/other' }] }));
    await showWho(page, topic);
    await page.locator('#who-status', { hasText: 'The hub refused the list (403' }).waitFor({ timeout: 10_000 });

    await page.getByLabel('Bearer token').fill(await accessToken({ publish: [{ match: '*' }], subscribe: [{ match: '*' }] }));
    const early = await openStream(mercureUrl(hub.url, [['match', topic]]), { Authorization: `Bearer ${await legacyToken({ subscribe: ['*'], payload: { user: 'alice' } })}` });
    await showWho(page, topic);
    await page.locator('#who-status', { hasText: `1 subscription receives ${topic}` }).waitFor({ timeout: 10_000 });
    const [listed] = await shown(page);
    assert.equal(listed!.match, topic);
    assert.match(listed!.meta, /\(exact\)urn:uuid:[0-9a-f-]{36}/);
    assert.match(listed!.meta, /payload \{"user":"alice"\}/);

    // Another topic's subscriber is not listed; a URL pattern that matches the topic is (the page's own card).
    const bearer = { Authorization: `Bearer ${await accessToken({ subscribe: [{ match: '*' }] })}` };
    const elsewhere = await openStream(mercureUrl(hub.url, [['match', 'https://example.com/who/2']]), bearer);
    await page.locator('#subscribe-api').selectOption({ label: 'Mercure: URL patterns' });
    await page.locator('#subscribe-topics').fill('https://example.com/who/:n');
    await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
    await rowCount(page, 2);
    assert.deepEqual((await shown(page)).map((row) => row.match).sort(), [topic, 'https://example.com/who/:n']);
    await page.locator('#who-status', { hasText: 'kept current' }).waitFor();
    await screenshot(page, 'console-who-1280x800');

    early.close();
    await rowCount(page, 1);
    assert.deepEqual((await shown(page)).map((row) => row.match), ['https://example.com/who/:n']);
    await page.getByRole('button', { name: 'Remove subscription Mercure (URL pattern): https://example.com/who/:n' }).click();
    await rowCount(page, 0);
    await page.locator('#who-status', { hasText: `0 subscriptions receive ${topic}` }).waitFor();
    elsewhere.close();
    assert.deepEqual(errors.filter((error) => !error.includes('status of 403')), [], 'no error but the refusal asked for above');
  });

  it('re-reads the list on an open hub, whose private subscription events reach nobody', async () => {
    const hub = await startHub({ subscriptions: true, store: 'memory' });
    hubs.push(hub);
    const { page } = await openConsolePage(await launch(), { width: 1280, height: 800 });
    await page.goto(hub.url);
    const topic = 'https://example.com/open/1';
    await showWho(page, topic);
    await page.locator('#who-status', { hasText: `0 subscriptions receive ${topic}` }).waitFor({ timeout: 10_000 });
    assert.match((await page.locator('#who-status').textContent()) ?? '', /no keys.*re-read every 3 s/);
    const stream = await openStream(mercureUrl(hub.url, [['match', topic]]));
    await rowCount(page, 1);
    stream.close();
    await rowCount(page, 0);
  });

  it('says the hub does not track subscriptions when it runs without --subscriptions', async () => {
    const hub = await startHub({ store: 'memory' });
    hubs.push(hub);
    const { page, failedRequests } = await openConsolePage(await launch(), { width: 390, height: 844 });
    await page.goto(hub.url);
    await showWho(page, 'demo');
    await page.locator('#who-status', { hasText: 'does not track subscriptions: start it with --subscriptions' }).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#who-list li').count(), 0);
    assert.deepEqual(failedRequests, [], 'it asked the metadata, not a route that is not there');
  });
});
