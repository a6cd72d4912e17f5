/**
 * Names a subscriber or an operator reads (ids, Mercure topics and matchers, event ids and
 * types, keys) cannot carry bidirectional formatting characters: invisible, they make one name
 * display as another in the console, in log lines and in a terminal (`invoice<RLO>fdp.exe` shows
 * as `invoiceexe.pdf`). Letters of right-to-left scripts and joiners (emoji sequences) stay valid.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { isMessage, openStream, post, publish } from '../helpers/sse-client.js';
import { mercurePublish, mercureUrl } from '../auth/tokens.js';

const BIDI = ['\u202e', '\u202a', '\u202b', '\u202c', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c'];
const named = (bidi: string): string => `invoice${bidi}fdp.exe`;

describe('bidirectional formatting characters in names', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub?.close());

  it('refuses them in an id, on publish and on subscribe, with 400 and the reason', async () => {
    for (const bidi of BIDI) {
      const id = encodeURIComponent(named(bidi));
      const published = await post(`${hub.url}/messages/${id}`, 'x', { 'content-type': 'text/plain' });
      assert.equal(published.status, 400, `publish U+${bidi.codePointAt(0)!.toString(16)}`);
      assert.equal(published.json.error.code, 'HUB_ERR_TOPIC_INVALID');
      assert.match(published.json.error.message, /bidirectional formatting characters/);
      const stream = await openStream(`${hub.url}/messages/subscribe/${id}`);
      assert.equal(stream.status, 400);
      await stream.ended;
      assert.match(stream.raw(), /HUB_ERR_TOPIC_INVALID/);
    }
  });

  it('refuses them in an event type', async () => {
    const res = await post(`${hub.url}/messages/plain`, JSON.stringify({ message: 'x', event: `order\u202eplaced` }), { 'content-type': 'application/json' });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'HUB_ERR_EVENT_TYPE_INVALID');
    assert.match(res.json.error.message, /bidirectional/);
  });

  it('refuses them in Mercure topics, event ids and matchers', async () => {
    const topic = await mercurePublish(hub.url, [['topic', `https://example.com/${named('\u2067')}`], ['data', 'x']]);
    assert.equal(topic.status, 400, topic.text);
    assert.match(topic.text, /bidirectional/);
    const id = await mercurePublish(hub.url, [['topic', 'https://example.com/books/1'], ['id', `urn:uuid:1${'\u200f'}2`], ['data', 'x']]);
    assert.equal(id.status, 400, id.text);
    assert.match(id.text, /bidirectional/);
    for (const name of ['match', 'match_urlpattern', 'topic']) {
      const res = await fetch(mercureUrl(hub.url, [[name, `https://example.com/${named('\u202e')}`]]));
      assert.equal(res.status, 400, name);
      assert.match(await res.text(), /bidirectional/);
    }
  });

  it('accepts right-to-left letters and joiners, and delivers them unchanged', async () => {
    for (const id of ['طلبات', 'הזמנות', '\u{1F469}\u200d\u{1F4BB}-builds']) {
      const stream = await openStream(`${hub.url}/messages/subscribe/${encodeURIComponent(id)}`);
      assert.equal(stream.status, 200, id);
      await stream.waitForCount(1);
      const eventId = await publish(hub.url, id, `for ${id}`);
      await stream.waitFor((events) => events.some((e) => e.id === eventId));
      assert.deepEqual(stream.events.filter(isMessage).map((e) => e.data), [`for ${id}`]);
      stream.close();
    }
  });
});
