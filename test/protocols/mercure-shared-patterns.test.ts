import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accessToken, legacyToken, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream, type TestStream } from '../helpers/sse-client.js';

const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });
const base = 'https://shared.example';
const sentinel = `${base}/sentinel`;

interface Group {
  readonly name: string;
  readonly count: number;
  readonly params: [string, string][];
  readonly token?: string;
  /** The data of the updates this group must receive, in order. */
  readonly expected: readonly string[];
}

/**
 * Issue 12, item 10: subscriptions that share patterns share their evaluation (one compiled
 * pattern, one test per message for the whole group); what each subscriber receives must not
 * change: exact topics, URI templates, URL patterns, mixed sets, private updates per token.
 */
describe('Mercure: many subscribers sharing patterns', () => {
  let hub: TestHub;
  let publisher: string;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, anonymous: true, maxSubscriptionPatterns: 2 });
    publisher = await accessToken({ publish: [{ match: '*' }] });
  });
  after(() => hub.close());

  async function update(topics: string[], data: string, isPrivate = false): Promise<void> {
    const fields: [string, string][] = [...topics.map((t): [string, string] => ['topic', t]), ['data', data]];
    if (isPrivate) fields.push(['private', 'on']);
    const res = await mercurePublish(hub.url, fields, bearer(publisher));
    assert.equal(res.status, 200, res.text);
  }

  it('delivers exactly what each subscriber selected and may receive, live and replayed', async () => {
    const template: [string, string] = ['topic', `${base}/books/{id}`];
    const urlPattern: [string, string] = ['match_urlpattern', `${base}/users/:id`];
    const books = await legacyToken({ subscribe: [`${base}/books/{id}`] });
    const groups: Group[] = [
      { name: 'template + URL pattern, anonymous', count: 25, params: [template, urlPattern, ['match', sentinel]], expected: ['m1', 'm2', 'm6'] },
      // The same set in another order, with a duplicate: the same shared matcher set.
      { name: 'same set reordered', count: 25, params: [['match', sentinel], urlPattern, template, template], expected: ['m1', 'm2', 'm6'] },
      { name: 'same set, granted private books', count: 20, params: [template, urlPattern, ['match', sentinel]], token: books, expected: ['m1', 'm2', 'm5', 'm6'] },
      { name: 'exact + template', count: 20, params: [['match', `${base}/exact/1`], template, ['match', sentinel]], expected: ['m1', 'm3', 'm6'] },
      { name: 'exact only', count: 10, params: [['match', `${base}/books/1`], ['match', sentinel]], expected: ['m1'] },
      { name: 'everything', count: 5, params: [['match', '*']], token: await accessToken({ subscribe: [{ match: `${base}/users/:id`, match_type: 'urlpattern' }] }), expected: ['m1', 'm2', 'm3', 'm4', 'm6', 'm7'] },
    ];
    const streams: { group: Group; stream: TestStream }[] = [];
    try {
      for (const group of groups) {
        for (let i = 0; i < group.count; i++) {
          const stream = await openStream(mercureUrl(hub.url, group.params), group.token === undefined ? {} : bearer(group.token));
          assert.equal(stream.status, 200, group.name);
          streams.push({ group, stream });
        }
      }
      // Three groups share one matcher set, one more has its own; exact-only and `*` need none.
      assert.equal(hub.hub.filterGroupCount, 2);

      await update([`${base}/books/1`], 'm1');
      await update([`${base}/users/7`], 'm2');
      await update([`${base}/exact/1`], 'm3');
      await update([`${base}/other/x`], 'm4');
      await update([`${base}/books/2`], 'm5', true);
      await update([`${base}/other/y`, `${base}/books/3`], 'm6');
      await update([`${base}/users/8`], 'm7', true);
      await update([sentinel], 'sentinel');
      for (const { group, stream } of streams) {
        await stream.waitFor((events) => events.some((e) => e.data === 'sentinel'));
        assert.deepEqual(stream.events.map((e) => e.data).filter((d) => /^m\d$/.test(d)), group.expected, group.name);
      }

      // Replayed history passes the same shared filter and the same authorization.
      for (const group of groups) {
        const replay = await openStream(mercureUrl(hub.url, [...group.params, ['last_event_id', 'earliest']]), group.token === undefined ? {} : bearer(group.token));
        try {
          await replay.waitFor((events) => events.some((e) => e.data === 'sentinel'));
          assert.deepEqual(replay.events.map((e) => e.data).filter((d) => /^m\d$/.test(d)), group.expected, `${group.name}, replayed`);
        } finally {
          replay.close();
        }
      }
    } finally {
      for (const { stream } of streams) stream.close();
    }
    // Closed subscriptions leave no group behind.
    const deadline = Date.now() + 5_000;
    while (hub.hub.filterGroupCount > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(hub.hub.filterGroupCount, 0);
  });

  it('refuses more patterns per subscription than --max-subscription-patterns with 400', async () => {
    const tooMany = await fetch(mercureUrl(hub.url, [['topic', `${base}/a/{id}`], ['topic', `${base}/b/{id}`], ['match_urlpattern', `${base}/c/:id`]]));
    assert.equal(tooMany.status, 400);
    assert.match(await tooMany.text(), /at most 2 URL patterns and URI templates \(it has 3\)/);
    // Exact topics and templates without expressions are not patterns; duplicates count once.
    const exact = Array.from({ length: 10 }, (_, i): [string, string] => ['match', `${base}/e/${i}`]);
    const fine = await openStream(
      mercureUrl(hub.url, [...exact, ['topic', `${base}/plain`], ['topic', `${base}/a/{id}`], ['topic', `${base}/a/{id}`], ['match_urlpattern', `${base}/c/:id`]]),
    );
    assert.equal(fine.status, 200);
    fine.close();
  });
});
