import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { runCli } from '../helpers/hub-process.js';
import type { ServeOptions } from '../../src/config/options.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { startRedis } from '../helpers/redis-server.js';
import { eventually, publish } from '../helpers/sse-client.js';
import { openConsolePage, screenshot } from './console-page.js';

/** What a card shows of each message: id, text, its replayed/live mark and its time label. */
interface Row {
  id: string;
  data: string;
  arrival: string;
  time: string;
}

/** The message rows (events with an id) of the card subscribed to `/messages/subscribe/{id}`. */
async function rows(page: Page, id: string): Promise<Row[]> {
  return page.$$eval(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"] li`, (items) =>
    items
      .filter((li) => (li as HTMLElement).dataset.id)
      .map((li) => ({
        id: (li as HTMLElement).dataset.id!,
        data: li.querySelector('.data')!.textContent!,
        arrival: li.querySelector('.arrival')!.textContent!,
        time: li.querySelector('time')!.textContent!,
      })),
  );
}

/** Waits until the card of `id` shows `count` message rows, each with its mark. */
function waitForRows(page: Page, id: string, count: number): Promise<unknown> {
  return page.waitForFunction(
    ({ id, count }) => {
      const items = Array.from(document.querySelectorAll(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"] li[data-arrival]`));
      return items.length >= count;
    },
    { id, count },
    { timeout: 20_000 },
  );
}

async function subscribeTo(page: Page, id: string, from: 'new messages only' | 'everything retained'): Promise<void> {
  await page.getByLabel('API', { exact: true }).first().selectOption({ label: '/messages: ids' });
  await page.getByLabel('Ids (one per line').fill(id);
  await page.getByLabel('Start from').selectOption({ label: from });
  await page.getByRole('button', { name: 'Subscribe', exact: true }).press('Enter');
  await page.locator(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"] .state`, { hasText: 'open' }).waitFor({ timeout: 10_000 });
}

describe('the web console in Chromium', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let dataDir: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-console-'));
    hub = await startHub({ dataDir });
    browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 });
    ({ page } = await openConsolePage(browser, { width: 1280, height: 800 }));
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('subscribes, shows messages published from the page and the CLI, and resumes across a hub restart, marking what it replayed', async () => {
    await page.goto(hub.url);
    assert.equal(await page.title(), 'sse-relay console');
    // Keyboard only: the form fields are labelled and reachable.
    await subscribeTo(page, 'console-demo', 'new messages only');
    const state = page.locator('#stream-list article .state');

    await page.locator('#publish-topic').fill('console-demo');
    await page.getByLabel('Message (multi-line allowed)').fill('from the page\nsecond line');
    await page.getByRole('button', { name: 'Publish', exact: true }).click();
    await page.locator('#publish-result', { hasText: 'Published with id' }).waitFor();

    const cli = await runCli(['publish', 'console-demo', 'from the CLI', '--url', hub.url]);
    assert.equal(cli.code, 0, cli.stderr);
    const cliId = cli.stdout.trim();

    await waitForRows(page, 'console-demo', 2);
    const before = await rows(page, 'console-demo');
    assert.deepEqual(before.map((r) => [r.data, r.arrival]), [['from the page\nsecond line', 'live'], ['from the CLI', 'live']]);
    assert.equal(before[1]!.id, cliId);

    // Stop the hub: the console shows it is reconnecting.
    const port = Number(new URL(hub.url).port);
    await hub.close();
    await state.filter({ hasText: /reconnecting|connecting/ }).waitFor({ timeout: 10_000 });

    // Start it again on the same port and data, publish before the console is back.
    hub = await startHub({ dataDir, port });
    await publish(hub.url, 'console-demo', 'posted while the console was away');
    await waitForRows(page, 'console-demo', 3);
    await state.filter({ hasText: 'open' }).waitFor();
    const live = await publish(hub.url, 'console-demo', 'after the console came back');
    await waitForRows(page, 'console-demo', 4);
    const afterRestart = await rows(page, 'console-demo');
    assert.deepEqual(
      afterRestart.map((r) => [r.data, r.arrival]),
      [
        ['from the page\nsecond line', 'live'],
        ['from the CLI', 'live'],
        // Published while the stream was down: history the reconnection replayed.
        ['posted while the console was away', 'replayed'],
        ['after the console came back', 'live'],
      ],
      'nothing lost, nothing twice, history marked apart',
    );
    assert.equal(afterRestart[3]!.id, live);
    // This hub's frames carry no publish time: the card says the time is when the page received it.
    for (const row of afterRestart) assert.match(row.time, /^(received|published) \d/);
    await page.waitForFunction(() => document.getElementById('stat-store')?.textContent === 'sqlite', undefined, { timeout: 10_000 });
    await screenshot(page, 'console');
  });

  it('marks retained history as replayed and later messages as live when subscribing from the start', async () => {
    const id = 'console-history';
    const first = await publish(hub.url, id, 'history 1');
    await publish(hub.url, id, 'history 2');
    // History of another id, published after: the hub's position moves past it, but it is not this card's.
    await publish(hub.url, 'console-elsewhere', 'noise');
    await subscribeTo(page, id, 'everything retained');
    await publish(hub.url, id, 'live 1');
    await waitForRows(page, id, 3);
    const shown = await rows(page, id);
    assert.deepEqual(shown.map((r) => [r.data, r.arrival]), [['history 1', 'replayed'], ['history 2', 'replayed'], ['live 1', 'live']]);
    assert.equal(shown[0]!.id, first);
    const replayedRows = await page.locator(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"] li[data-arrival=replayed]`).count();
    assert.equal(replayedRows, 2, 'replayed rows are told apart in the page (their own style hook)');
  });

  it('tells replayed from live on a sharded hub, whose ids are position vectors', async () => {
    const redis = await startRedis();
    const sharded = await startHub({ store: redis.url as ServeOptions['store'], redisShards: 3 });
    const { context, page: shardedPage } = await openConsolePage(browser, { width: 1280, height: 800 });
    try {
      await shardedPage.goto(sharded.url);
      const id = 'console-sharded';
      const first = await publish(sharded.url, id, 'history 1');
      assert.match(first, /^v1\./, 'a sharded hub issues vector ids');
      await publish(sharded.url, id, 'history 2');
      await subscribeTo(shardedPage, id, 'everything retained');
      // Ids on the other shards move the hub's position there; they are not this card's.
      for (const other of ['console-sharded-a', 'console-sharded-b', 'console-sharded-c']) await publish(sharded.url, other, 'noise');
      await publish(sharded.url, id, 'live 1');
      await publish(sharded.url, id, 'live 2');
      await waitForRows(shardedPage, id, 4);
      const shown = await rows(shardedPage, id);
      assert.deepEqual(shown.map((r) => [r.data, r.arrival]), [['history 1', 'replayed'], ['history 2', 'replayed'], ['live 1', 'live'], ['live 2', 'live']]);
    } finally {
      await context.close();
      await sharded.close();
      await redis.stop();
    }
  });

  it('clears a card (the stream stays open) and removes one (its stream closes)', async () => {
    const id = 'console-clear';
    await subscribeTo(page, id, 'new messages only');
    const card = page.locator(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"]`);
    await publish(hub.url, id, 'before clearing');
    await waitForRows(page, id, 1);

    await page.getByRole('button', { name: `Clear messages of /messages/subscribe/${id}` }).click();
    assert.deepEqual(await rows(page, id), []);
    await card.getByText('No messages yet.').waitFor();
    await publish(hub.url, id, 'after clearing');
    await waitForRows(page, id, 1);
    assert.deepEqual((await rows(page, id)).map((r) => r.data), ['after clearing'], 'still subscribed after clearing');

    const subscribers = async (): Promise<number> => ((await (await fetch(`${hub.url}/messages/${id}`)).json()) as { subscribers: number }).subscribers;
    assert.equal(await subscribers(), 1);
    await page.getByRole('button', { name: `Remove subscription /messages/subscribe/${id}` }).click();
    assert.equal(await card.count(), 0, 'the card is gone');
    await eventually(async () => (await subscribers()) === 0, 10_000, 'the hub to see the stream closed');
  });
});
