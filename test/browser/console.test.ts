import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { runCli } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { publish } from '../helpers/sse-client.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/** Texts of the message rows (events with an id) of the first subscription card. */
async function rows(page: Page): Promise<{ id: string; data: string }[]> {
  return page.$$eval('#stream-list article li', (items) =>
    items
      .filter((li) => (li as HTMLElement).dataset.id)
      .map((li) => ({ id: (li as HTMLElement).dataset.id!, data: li.querySelector('.data')!.textContent! })),
  );
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
    page = await browser.newPage({ viewport: { width: 420, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('subscribes, shows messages published from the page and the CLI, and resumes across a hub restart', async () => {
    await page.goto(hub.url);
    assert.equal(await page.title(), 'sse-relay console');
    // Keyboard only: the form fields are labelled and reachable.
    await page.getByLabel('Ids or topics').fill('console-demo');
    await page.getByRole('button', { name: 'Subscribe' }).press('Enter');
    const state = page.locator('#stream-list article .state');
    await state.filter({ hasText: 'open' }).waitFor({ timeout: 10_000 });

    await page.getByLabel('Id / topic', { exact: true }).fill('console-demo');
    await page.getByLabel('Message (multi-line allowed)').fill('from the page\nsecond line');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.locator('#publish-result', { hasText: 'Published with id' }).waitFor();

    const cli = await runCli(['publish', 'console-demo', 'from the CLI', '--url', hub.url]);
    assert.equal(cli.code, 0, cli.stderr);
    const cliId = cli.stdout.trim();

    await page.waitForFunction(() => document.querySelectorAll('#stream-list article li[data-id]:not([data-id=""])').length >= 2);
    const before = await rows(page);
    assert.deepEqual(before.map((r) => r.data), ['from the page\nsecond line', 'from the CLI']);
    assert.equal(before[1]!.id, cliId);

    // Stop the hub: the console shows it is reconnecting.
    const port = Number(new URL(hub.url).port);
    await hub.close();
    await state.filter({ hasText: /reconnecting|connecting/ }).waitFor({ timeout: 10_000 });

    // Start it again on the same port and data, publish before the console is back.
    hub = await startHub({ dataDir, port });
    const whileAway = await publish(hub.url, 'console-demo', 'posted while the console was away');
    await page.waitForFunction(
      (id) => Array.from(document.querySelectorAll("#stream-list article li")).some((li) => (li as HTMLElement).dataset.id === id),
      whileAway,
      { timeout: 20_000 },
    );
    await state.filter({ hasText: 'open' }).waitFor();
    const afterRestart = await rows(page);
    assert.deepEqual(
      afterRestart.map((r) => r.data),
      ['from the page\nsecond line', 'from the CLI', 'posted while the console was away'],
      'nothing lost, nothing twice',
    );
    await page.waitForFunction(() => document.getElementById('stat-store')?.textContent === 'sqlite', undefined, { timeout: 10_000 });

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console.png'), fullPage: true });
  });
});
