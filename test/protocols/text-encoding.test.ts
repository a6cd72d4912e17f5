import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { isMessage, openStream } from '../helpers/sse-client.js';

async function postBytes(url: string, body: Buffer | string | undefined, contentType?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', body: body as RequestInit['body'], headers: contentType ? { 'content-type': contentType } : {} });
  const text = await res.text();
  return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text };
}

const CAFE_LATIN1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]);

describe('text in any accepted encoding is stored as the text it is, or refused', () => {
  let hub: TestHub;
  let topicCounter = 0;
  before(async () => {
    hub = await startHub();
  });
  after(async () => {
    await hub.close();
  });

  /** Publishes with `send`, then reads back what a subscriber receives from the start. */
  async function storedData(send: (topic: string) => Promise<{ status: number; json: any }>): Promise<string> {
    const topic = `enc-${++topicCounter}`;
    const res = await send(topic);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const stream = await openStream(`${hub.url}/messages/subscribe/${topic}?lastEventId=earliest`);
    try {
      await stream.waitFor((events) => events.some(isMessage));
      return stream.events.find(isMessage)!.data;
    } finally {
      stream.close();
    }
  }

  it('decodes a text/plain body declared iso-8859-1 (and latin1)', async () => {
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, CAFE_LATIN1, 'text/plain; charset=iso-8859-1')), 'café');
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, CAFE_LATIN1, 'text/plain; charset="latin1"')), 'café');
  });

  it('decodes us-ascii and utf-8 bodies, and refuses a byte above 0x7F in us-ascii', async () => {
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, Buffer.from('café'), 'text/plain; charset=UTF-8')), 'café');
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, Buffer.from('cafe'), 'text/plain; charset=us-ascii')), 'cafe');
    const res = await postBytes(`${hub.url}/messages/ascii`, CAFE_LATIN1, 'text/plain; charset=us-ascii');
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'HUB_ERR_TEXT_ENCODING_INVALID');
  });

  it('refuses invalid UTF-8 with 400 instead of storing U+FFFD', async () => {
    for (const contentType of ['text/plain', 'text/plain; charset=utf-8', 'application/json']) {
      const body = contentType === 'application/json' ? Buffer.concat([Buffer.from('{"message":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]) : CAFE_LATIN1;
      const res = await postBytes(`${hub.url}/messages/bad-utf8`, body, contentType);
      assert.equal(res.status, 400, contentType);
      assert.equal(res.json.error.code, 'HUB_ERR_TEXT_ENCODING_INVALID', contentType);
      assert.match(res.json.error.message, /not valid UTF-8/);
    }
  });

  it('answers 415 naming the accepted charsets for any other charset', async () => {
    const res = await postBytes(`${hub.url}/messages/koi`, Buffer.from('x'), 'text/plain; charset=koi8-r');
    assert.equal(res.status, 415);
    assert.equal(res.json.error.code, 'HUB_ERR_UNSUPPORTED_MEDIA_TYPE');
    assert.match(res.json.error.message, /utf-8, iso-8859-1, us-ascii/);
  });

  it('percent-decodes ?message= and form values as UTF-8, like the path', async () => {
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}?message=caf%C3%A9+au+lait`, undefined)), 'café au lait');
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, 'message=caf%C3%A9', 'application/x-www-form-urlencoded')), 'café');
    assert.equal(await storedData((t) => postBytes(`${hub.url}/messages/${t}`, 'message=caf%E9', 'application/x-www-form-urlencoded; charset=iso-8859-1')), 'café');
  });

  it('refuses ?message=caf%E9 and form message=caf%E9 (not UTF-8) and a malformed escape with 400', async () => {
    const cases: Array<[string, string | undefined, string | undefined]> = [
      ['/messages/q?message=caf%E9', undefined, undefined],
      ['/messages/q?message=100%', undefined, undefined],
      ['/messages/q', 'message=caf%E9', 'application/x-www-form-urlencoded'],
      ['/messages/q', 'message=%zz', 'application/x-www-form-urlencoded'],
    ];
    for (const [path, body, type] of cases) {
      const res = await postBytes(`${hub.url}${path}`, body, type);
      assert.equal(res.status, 400, `${path} ${body}`);
      assert.match(res.json.error.code, /^HUB_ERR_(TEXT_ENCODING_INVALID|BAD_REQUEST)$/);
      assert.doesNotMatch(JSON.stringify(res.json), /caf%E9/, 'the value is not echoed');
    }
  });

  it('applies the same rules to a Mercure publish', async () => {
    const mercure = `${hub.url}/.well-known/mercure`;
    const bad = await postBytes(mercure, 'topic=m1&data=caf%E9', 'application/x-www-form-urlencoded');
    assert.equal(bad.status, 400);
    // Mercure's errors are plain text, as the reference hub's.
    assert.match(bad.json, /not valid UTF-8/);
    const latin1 = await storedData((t) => postBytes(mercure, `topic=${t}&data=caf%E9`, 'application/x-www-form-urlencoded; charset=iso-8859-1'));
    assert.equal(latin1, 'café');
    const other = await postBytes(mercure, 'topic=m1&data=x', 'application/x-www-form-urlencoded; charset=shift_jis');
    assert.equal(other.status, 415);
  });

  it('says why a JSON body with a "__proto__" key is refused', async () => {
    const res = await postBytes(`${hub.url}/messages/proto`, '{"__proto__": {"x": 1}, "message": "hi"}', 'application/json');
    assert.equal(res.status, 400);
    assert.match(res.json.error.message, /__proto__/);
    assert.doesNotMatch(res.json.error.message, /not valid JSON/);
  });

  it('lists the accepted media types in a 415', async () => {
    const res = await postBytes(`${hub.url}/messages/xml`, '<m/>', 'application/xml');
    assert.equal(res.status, 415);
    assert.match(res.json.error.message, /text\/plain, application\/json, application\/x-www-form-urlencoded/);
  });
});
