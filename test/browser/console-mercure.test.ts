/**
 * The console's Mercure side, in Chromium, on a hub with keys: a token typed into the page,
 * subscriptions by exact topic, URL pattern (`match_urlpattern`) and URI template, and updates
 * published through Mercure with several topics and the private flag.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { accessToken, MERCURE_SECRET, mercureUrl } from '../auth/tokens.js';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { isMessage, openStream } from '../helpers/sse-client.js';
import { openConsolePage } from './console-page.js';

const API_LABELS = { messages: '/messages: ids', match: 'Mercure: exact topics', match_urlpattern: 'Mercure: URL patterns', topic: 'Mercure: URI templates' } as const;
const TITLES = { messages: '/messages/subscribe/', match: 'Mercure (exact): ', match_urlpattern: 'Mercure (URL pattern): ', topic: 'Mercure (URI template): ' } as const;

/** Opens a card as a user does; resolves once it is open. Returns the card's title. */
async function subscribeWith(page: Page, api: keyof typeof API_LABELS, selector: string): Promise<string> {
  await page.locator('#subscribe-api').selectOption({ label: API_LABELS[api] });
  await page.locator('#subscribe-topics').fill(selector);
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  const title = `${TITLES[api]}${selector}`;
  await page.locator(`#stream-list article[aria-label="Subscription ${title}"] .state`, { hasText: 'open' }).waitFor({ timeout: 10_000 });
  return title;
}

/** The texts of the messages a card shows. */
function messagesOf(page: Page, title: string): Promise<string[]> {
  return page.$$eval(`#stream-list article[aria-label="Subscription ${title}"] li[data-id]`, (items) => items.map((li) => li.querySelector('.data')!.textContent!));
}

async function waitForMessage(page: Page, title: string, text: string): Promise<void> {
  await page
    .locator(`#stream-list article[aria-label="Subscription ${title}"] li .data`, { hasText: text })
    .first()
    .waitFor({ timeout: 10_000 });
}

async function publishThroughMercure(page: Page, topics: string[], message: string, isPrivate: boolean): Promise<string> {
  await page.locator('#publish-api').selectOption({ label: 'Mercure: topic URLs' });
  await page.getByLabel('Topics (one per line').fill(topics.join('\n'));
  await page.getByLabel('Message (multi-line allowed)').fill(message);
  await page.getByLabel('Private').setChecked(isPrivate);
  const result = page.locator('#publish-result');
  const before = await result.textContent();
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  await page.waitForFunction((before) => document.getElementById('publish-result')!.textContent !== before, before, { timeout: 10_000 });
  return (await result.textContent()) ?? '';
}

describe('the web console speaks Mercure (Chromium, hub with keys)', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, store: 'memory' });
    browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 });
    ({ page } = await openConsolePage(browser, { width: 1280, height: 800 }));
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('subscribes by URL pattern, exact topic and URI template, and publishes one update to several topics', async () => {
    await page.goto(hub.url);
    await page.locator('#auth-note', { hasText: 'This hub has keys' }).waitFor();
    await page.getByLabel('Bearer token').fill(await accessToken({ publish: [{ match: '*' }], subscribe: [{ match: '*' }] }));

    const pattern = await subscribeWith(page, 'match_urlpattern', 'https://example.com/books/:id');
    const template = await subscribeWith(page, 'topic', 'https://example.com/books/{id}');
    const exact = await subscribeWith(page, 'match', 'https://example.com/authors/1');
    const plain = await subscribeWith(page, 'messages', 'console-plain');

    const answer = await publishThroughMercure(page, ['https://example.com/books/7', 'console-plain'], 'to a book and a plain id', false);
    assert.match(answer, /^Published with id \d+$/);
    await waitForMessage(page, pattern, 'to a book and a plain id');
    await waitForMessage(page, template, 'to a book and a plain id');
    await waitForMessage(page, plain, 'to a book and a plain id');
    await publishThroughMercure(page, ['https://example.com/authors/1'], 'to an author', false);
    await waitForMessage(page, exact, 'to an author');
    assert.deepEqual(await messagesOf(page, exact), ['to an author'], 'the exact topic did not receive the book');
    assert.deepEqual(await messagesOf(page, pattern), ['to a book and a plain id'], 'the pattern did not receive the author');
  });

  it('publishes a private update: granted subscribers get it, others do not', async () => {
    const topic = 'https://example.com/books/private';
    const pattern = 'Mercure (URL pattern): https://example.com/books/:id';
    // A subscriber of the same topic whose token grants only another topic: public updates only.
    const outsider = await openStream(mercureUrl(hub.url, [['match', topic]]), { Authorization: `Bearer ${await accessToken({ subscribe: [{ match: 'https://example.com/other' }] })}` });
    try {
      assert.match(await publishThroughMercure(page, [topic], 'a secret', true), /^Published with id/);
      await waitForMessage(page, pattern, 'a secret');
      assert.match(await publishThroughMercure(page, [topic], 'no secret', false), /^Published with id/);
      await outsider.waitFor((events) => events.some((event) => event.data === 'no secret'));
      assert.deepEqual(outsider.events.filter(isMessage).map((event) => event.data), ['no secret'], 'the private update reached only granted subscribers');
    } finally {
      outsider.close();
    }

    // Without a token the page says what is missing, and the hub's refusal is shown.
    await page.getByLabel('Bearer token').fill('');
    await page.locator('#publish-note', { hasText: 'needs a token' }).waitFor();
    assert.match(await publishThroughMercure(page, [topic], 'no token', true), /^Not published: 401/);
  });
});
