/**
 * The console as a user sees it at desktop (1280x800) and phone (390x844) widths, in Chromium:
 * under its Content-Security-Policy with no violation, no failed request (favicon included), no
 * empty column, no clipped select, no floating badge, nothing wider than the phone. Screenshots
 * go to test-artifacts/console-<width>.png.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { publish } from '../helpers/sse-client.js';
import { openConsolePage, screenshot } from './console-page.js';

type Box = { left: number; right: number; top: number; bottom: number };

/** Subscribes to an id from the start, then publishes one message live from the page: the cards a user would look at. */
async function fillPage(page: Page, hub: TestHub, id: string): Promise<void> {
  await publish(hub.url, id, 'retained before the page opened');
  await page.goto(hub.url);
  await page.getByLabel('Ids (one per line').fill(id);
  await page.getByLabel('Start from').selectOption({ label: 'everything retained' });
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await page.locator('#stream-list article .state', { hasText: 'open' }).waitFor({ timeout: 10_000 });
  await page.getByLabel('API', { exact: true }).first().selectOption({ label: 'Mercure: URL patterns' });
  await page.getByLabel('URL patterns').fill('https://example.com/books/:id');
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  await page.locator('#stream-list article .state', { hasText: 'open' }).nth(1).waitFor({ timeout: 10_000 });
  await page.locator('#publish-topic').fill(id);
  await page.getByLabel('Message (multi-line allowed)').fill('{"live": true}');
  await page.getByRole('button', { name: 'Publish', exact: true }).click();
  await page.locator(`#stream-list article[aria-label="Subscription /messages/subscribe/${id}"] li[data-arrival=live]`).waitFor({ timeout: 10_000 });
  // The header's figures catch up (they refresh every 2 s): the screenshot shows a settled page.
  await page.waitForFunction(() => Number(document.getElementById('stat-subscribers')?.textContent) >= 2, undefined, { timeout: 10_000 });
}

describe('the web console layout and headers in Chromium', () => {
  let hub: TestHub;
  let browser: Browser;
  before(async () => {
    hub = await startHub({ store: 'memory' });
    browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 });
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('sends a strict Content-Security-Policy and nosniff with the page and every asset', async () => {
    for (const path of ['/', '/console/console.js', '/console/console.js.map', '/console/console.css', '/console/favicon.svg', '/favicon.ico']) {
      const answer = await fetch(new URL(path, hub.url));
      assert.equal(answer.status, 200, path);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', path);
      const csp = answer.headers.get('content-security-policy') ?? '';
      for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
        assert.ok(csp.split(/;\s*/).includes(directive), `${path}: ${directive} in ${csp}`);
      }
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, path);
    }
    assert.equal((await fetch(new URL('/favicon.ico', hub.url))).headers.get('content-type'), 'image/svg+xml');
  });

  it('at 1280x800: three full columns, whole select labels, badges beside their buttons, no CSP violation or failed request', async () => {
    const { page, context, failedRequests, errors, violations } = await openConsolePage(browser, { width: 1280, height: 800 });
    try {
      await fillPage(page, hub, 'layout-desktop');
      // The icon the page names loads (under img-src 'self') and is a real image.
      const icon = await page.evaluate(async () => {
        const href = document.querySelector<HTMLLinkElement>('link[rel=icon]')!.href;
        const image = new Image();
        image.src = href;
        await image.decode();
        return { href, width: image.naturalWidth };
      });
      assert.ok(icon.width > 0, `favicon ${icon.href} decodes`);

      const layout = await page.evaluate(() => {
        const box = (element: Element): { left: number; right: number; top: number; bottom: number } => {
          const r = element.getBoundingClientRect();
          return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
        };
        const main = document.querySelector('main')!;
        const padding = parseFloat(getComputedStyle(main).paddingRight);
        const panels = Array.from(main.children).filter((child) => !child.classList.contains('streams')).map(box);
        // What a select shows is its chosen option's label: it must fit inside the box, arrow aside.
        const canvas = document.createElement('canvas').getContext('2d')!;
        const selects = Array.from(document.querySelectorAll('select')).map((select) => {
          const style = getComputedStyle(select);
          canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
          const widest = Math.max(...Array.from(select.options).map((option) => canvas.measureText(option.label).width));
          return { id: select.id, widest, room: select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20 };
        });
        const heads = Array.from(document.querySelectorAll('.stream-head')).map((head) => ({
          badge: box(head.querySelector('.state')!),
          clear: box(head.querySelector('button')!),
          title: box(head.querySelector('.stream-title')!),
        }));
        return { mainRight: box(main).right - padding, mainLeft: box(main).left + padding, panels, selects, heads, scrollWidth: document.documentElement.scrollWidth };
      });
      assert.equal(layout.panels.length, 3);
      const columns = new Set(layout.panels.map((p: Box) => Math.round(p.left)));
      assert.equal(columns.size, 3, 'three columns side by side');
      assert.ok(Math.abs(Math.min(...layout.panels.map((p: Box) => p.left)) - layout.mainLeft) < 2, 'the first column starts at the left');
      assert.ok(Math.abs(Math.max(...layout.panels.map((p: Box) => p.right)) - layout.mainRight) < 2, 'the last column ends at the right: no empty column');
      for (const select of layout.selects) assert.ok(select.widest <= select.room, `select #${select.id}: its longest label (${select.widest.toFixed(0)} px) fits in ${select.room.toFixed(0)} px`);
      assert.ok(layout.heads.length >= 2);
      for (const { badge, clear, title } of layout.heads) {
        assert.ok(clear.left - badge.right >= 0 && clear.left - badge.right < 16, `badge right beside its buttons (gap ${clear.left - badge.right} px)`);
        assert.ok(badge.top < title.bottom && badge.bottom > title.top, 'badge on the title line');
      }
      assert.ok(layout.scrollWidth <= 1280, 'no horizontal scrolling');
      await screenshot(page, 'console-1280x800');

      assert.deepEqual(await violations(), [], 'no CSP violation');
      assert.deepEqual(errors, [], 'no error in the browser console');
      assert.deepEqual(failedRequests, [], 'no failed request (favicon included)');

      // The policy is enforced, not only sent: an injected inline script does not run.
      const ran = await page.evaluate(async () => {
        const script = document.createElement('script');
        script.textContent = 'window.inlineScriptRan = true';
        document.head.append(script);
        await new Promise((resolve) => setTimeout(resolve, 50));
        return (window as unknown as { inlineScriptRan?: boolean }).inlineScriptRan === true;
      });
      assert.equal(ran, false, 'inline script blocked');
      assert.match((await violations()).join('\n'), /script-src/);
    } finally {
      await context.close();
    }
  });

  it('at 390x844 (a phone): one column, nothing wider than the screen, no CSP violation', async () => {
    const { page, context, failedRequests, errors, violations } = await openConsolePage(browser, { width: 390, height: 844 });
    try {
      await fillPage(page, hub, 'layout-phone');
      const layout = await page.evaluate(() => {
        const wide = Array.from(document.querySelectorAll('body *'))
          .filter((element) => element.getBoundingClientRect().right > window.innerWidth + 0.5)
          .map((element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}.${element.className}`);
        const panels = Array.from(document.querySelectorAll('main > *')).map((element) => Math.round(element.getBoundingClientRect().left));
        return { scrollWidth: document.documentElement.scrollWidth, wide, lefts: new Set(panels).size };
      });
      assert.equal(layout.scrollWidth, 390, 'no horizontal scrolling');
      assert.deepEqual(layout.wide, [], 'no element past the right edge');
      assert.equal(layout.lefts, 1, 'one column');
      const heads = await page.$$eval('.stream-actions', (groups) => groups.map((group) => Array.from(group.children).map((child) => Math.round(child.getBoundingClientRect().top + child.getBoundingClientRect().height / 2))));
      assert.ok(heads.length >= 2);
      for (const centres of heads) assert.ok(Math.max(...centres) - Math.min(...centres) <= 2, `badge, Clear and Remove on one line (${centres})`);
      await screenshot(page, 'console-390x844');
      assert.deepEqual(await violations(), []);
      assert.deepEqual(errors, []);
      assert.deepEqual(failedRequests, []);
    } finally {
      await context.close();
    }
  });
});
