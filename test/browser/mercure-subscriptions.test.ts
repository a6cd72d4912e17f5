/**
 * What a Mercure client built on the active-subscriptions API does, in a real browser: a page
 * lists the subscriptions through the API (authorized by the token cookie), then follows the
 * subscription events from the list's `lastEventID` with an `EventSource`, and keeps the list
 * on screen current as subscribers come and go.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { accessToken, MERCURE_SECRET, mercureUrl } from '../auth/tokens.js';
import { CHROMIUM_ARGS, chromiumExecutable } from '../helpers/chromium.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, type TestStream } from '../helpers/sse-client.js';

const SUBSCRIPTIONS = '/.well-known/mercure/subscriptions';

/** The matchers the page shows, one list item per active subscription. */
const shown = (page: Page): Promise<string[]> => page.$$eval('#who li', (items) => items.map((li) => li.textContent ?? '').sort());

describe('a page keeps a list of active subscriptions current (Chromium)', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, publicUrl: 'https://example.com', subscriptions: true });
    browser = await chromium.launch({ executablePath: chromiumExecutable(), args: CHROMIUM_ARGS, timeout: 60_000 });
    const context = await browser.newContext();
    const watcher = await accessToken({ subscribe: [{ match: `${SUBSCRIPTIONS}{/*}?`, match_type: 'urlpattern' }] });
    await context.addCookies([{ name: 'mercureAuthorization', value: watcher, url: hub.url }]);
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('lists the subscriptions, then adds and removes them as their events arrive', async () => {
    const run = randomBytes(4).toString('hex');
    const subscriber = await accessToken({ subscribe: [{ match: '*' }] });
    const bearer = { Authorization: `Bearer ${subscriber}` };
    const open = (name: string): Promise<TestStream> => openStream(mercureUrl(hub.url, [['match', `https://example.com/${run}/${name}`]]), bearer);
    const early = await open('early');

    await page.goto(hub.url);
    await page.evaluate(async (subscriptions) => {
      const list = document.createElement('ul');
      list.id = 'who';
      document.body.append(list);
      const active = new Map<string, { match: string }>();
      const render = (): void => {
        list.replaceChildren(
          ...[...active.values()].map((doc) => {
            const item = document.createElement('li');
            item.textContent = doc.match;
            return item;
          }),
        );
      };
      const answer = await fetch(subscriptions);
      if (!answer.ok) throw new Error(`the list answered ${answer.status}`);
      const collection = (await answer.json()) as { lastEventID: string; subscriptions: { id: string; match: string }[] };
      for (const doc of collection.subscriptions) active.set(doc.id, doc);
      render();
      const events = new URL('/.well-known/mercure', location.href);
      events.searchParams.set('match_urlpattern', `${subscriptions}/:type/:match/:subscriber`);
      events.searchParams.set('lastEventID', collection.lastEventID);
      const source = new EventSource(events);
      source.addEventListener('mercure', (event) => {
        const doc = JSON.parse((event as MessageEvent<string>).data) as { id: string; match: string; active: boolean };
        if (doc.active) active.set(doc.id, doc);
        else active.delete(doc.id);
        render();
      });
      await new Promise<void>((resolve, reject) => {
        source.onopen = () => resolve();
        source.onerror = () => reject(new Error('the event stream failed'));
      });
    }, SUBSCRIPTIONS);

    const mine = async (): Promise<string[]> => (await shown(page)).filter((match) => match.includes(`/${run}/`));
    assert.deepEqual(await mine(), [`https://example.com/${run}/early`], 'the list read through the API');

    const late = await open('late');
    await page.waitForFunction((run) => Array.from(document.querySelectorAll('#who li')).some((li) => li.textContent?.endsWith(`/${run}/late`)), run, { timeout: 10_000 });
    assert.deepEqual(await mine(), [`https://example.com/${run}/early`, `https://example.com/${run}/late`]);

    early.close();
    await page.waitForFunction((run) => !Array.from(document.querySelectorAll('#who li')).some((li) => li.textContent?.endsWith(`/${run}/early`)), run, { timeout: 10_000 });
    assert.deepEqual(await mine(), [`https://example.com/${run}/late`]);
    late.close();
  });
});
