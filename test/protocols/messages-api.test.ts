import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventSource } from 'eventsource';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, post, publish } from '../helpers/sse-client.js';

describe('the article API: subscribe and publish', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ retry: 2500 });
  });
  after(() => hub.close());

  it("opens an event stream with the right headers and a greeting whose id is the stream's position", async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/demo`);
    try {
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['content-type'], 'text/event-stream');
      assert.equal(stream.headers['cache-control'], 'no-cache, no-transform');
      assert.equal(stream.headers['x-accel-buffering'], 'no');
      await stream.waitForCount(1);
      const greeting = stream.events[0]!;
      assert.deepEqual({ ...greeting, id: undefined }, { id: undefined, event: undefined, data: 'Subscribed to id demo' });
      assert.match(greeting.id ?? '', /^(\d+|earliest)$/);
      assert.deepEqual(stream.retries, [2500]);
      const next = await publish(hub.url, 'demo', 'after the greeting');
      if (greeting.id !== 'earliest') assert.ok(Number(next) > Number(greeting.id), `${next} > ${greeting.id}`);
    } finally {
      stream.close();
    }
  });

  it('delivers each published message with an increasing id, after answering {"id"}', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/ids`);
    try {
      await stream.waitForCount(1);
      const first = await publish(hub.url, 'ids', 'one');
      const second = await publish(hub.url, 'ids', 'two', 'greeting');
      assert.ok(Number(second) > Number(first), `${second} > ${first}`);
      await stream.waitForCount(3);
      assert.deepEqual(stream.events.slice(1), [
        { id: first, event: undefined, data: 'one' },
        { id: second, event: 'greeting', data: 'two' },
      ]);
    } finally {
      stream.close();
    }
  });

  it('accepts the message as ?message=, text/plain, JSON and a form field', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/forms`);
    try {
      await stream.waitForCount(1);
      const base = `${hub.url}/messages/forms`;
      const answers = [
        await post(`${base}?message=${encodeURIComponent('from query')}`),
        await post(base, 'from text', { 'content-type': 'text/plain' }),
        await post(base, JSON.stringify({ message: 'from json', event: 'kind' }), { 'content-type': 'application/json' }),
        await post(base, 'message=from+form&event=formkind', { 'content-type': 'application/x-www-form-urlencoded' }),
      ];
      for (const answer of answers) {
        assert.equal(answer.status, 200, answer.text);
        assert.match(answer.json.id, /^\d+$/);
      }
      await stream.waitForCount(5);
      assert.deepEqual(
        stream.events.slice(1).map((e) => [e.event, e.data]),
        [
          [undefined, 'from query'],
          [undefined, 'from text'],
          ['kind', 'from json'],
          ['formkind', 'from form'],
        ],
      );
    } finally {
      stream.close();
    }
  });

  it('is readable by the WHATWG eventsource client', async () => {
    const source = new EventSource(`${hub.url}/messages/subscribe/whatwg`);
    try {
      const received: { data: string; lastEventId: string }[] = [];
      const opened = new Promise<void>((resolve, reject) => {
        source.onopen = () => resolve();
        source.onerror = (e) => reject(new Error(`EventSource error: ${e.message}`));
      });
      source.onmessage = (event) => received.push({ data: event.data, lastEventId: event.lastEventId });
      await opened;
      const id = await publish(hub.url, 'whatwg', 'hello browser');
      await eventually(() => received.length >= 2, 5000, 'two events');
      const position = received[0]?.lastEventId ?? '';
      assert.match(position, /^(\d+|earliest)$/, 'the greeting gives the browser a cursor');
      assert.deepEqual(received, [
        { data: 'Subscribed to id whatwg', lastEventId: position },
        { data: 'hello browser', lastEventId: id },
      ]);
    } finally {
      source.close();
    }
  });

  it('frames multi-line, injection and unicode payloads so they round-trip exactly', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/${encodeURIComponent('frames ✓')}`);
    try {
      await stream.waitForCount(1);
      const payloads = [
        'line one\nline two',
        'cr\rline',
        'crlf\r\nline',
        'trailing newline\n',
        '\nleading newline',
        ' leading space',
        'data: fake\n\nid: 999\nevent: evil\nretry: 1\n\ndata: second event',
        ': not a comment',
        'emoji 😀 astral 𝌆 line separator \u2028 paragraph \u2029 nbsp \u00a0 zero-width \u200b',
        'x'.repeat(10_000),
        'mixed\r\n\r\n\n\rend',
      ];
      const ids: string[] = [];
      for (const payload of payloads) ids.push(await publish(hub.url, 'frames ✓', payload));
      await stream.waitForCount(1 + payloads.length);
      const normalised = payloads.map((p) => p.replace(/\r\n|\r/g, '\n'));
      assert.deepEqual(
        stream.events.slice(1),
        normalised.map((data, i) => ({ id: ids[i], event: undefined, data })),
      );
      // Exactly one event per message on the wire (and the greeting): each starts with its own `id:` line.
      assert.equal(stream.raw().match(/^id: /gm)?.length, 1 + payloads.length);
      assert.ok(!stream.raw().includes('\r'), 'no CR on the wire');
      assert.ok(!stream.raw().startsWith('\ufeff'), 'no BOM');
    } finally {
      stream.close();
    }
  });

  it('gives every subscriber of an id every message, in order', async () => {
    const a = await openStream(`${hub.url}/messages/subscribe/shared`);
    const b = await openStream(`${hub.url}/messages/subscribe/shared`);
    try {
      await Promise.all([a.waitForCount(1), b.waitForCount(1)]);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push(await publish(hub.url, 'shared', `m${i}`));
      await Promise.all([a.waitForCount(21), b.waitForCount(21)]);
      for (const s of [a, b]) assert.deepEqual(s.events.slice(1).map((e) => e.id), ids);
      assert.equal(hub.hub.subscriberCount('shared'), 2);
    } finally {
      a.close();
      b.close();
    }
  });

  it('does not deliver messages of other ids', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/mine`);
    try {
      await stream.waitForCount(1);
      await publish(hub.url, 'other', 'not for you');
      await publish(hub.url, 'mine', 'for you');
      await stream.waitForCount(2);
      assert.deepEqual(stream.events.slice(1).map((e) => e.data), ['for you']);
    } finally {
      stream.close();
    }
  });

  it('reports a topic with GET /messages/:id', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/info`);
    try {
      await stream.waitForCount(1);
      const first = await publish(hub.url, 'info', 'a');
      const last = await publish(hub.url, 'info', 'b');
      const res = await fetch(`${hub.url}/messages/info`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { id: 'info', retained: 2, firstId: first, lastId: last, subscribers: 1 });
    } finally {
      stream.close();
    }
  });

  it('answers /healthz', async () => {
    const res = await fetch(`${hub.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).status, 'ok');
  });
});

describe('the article API: timers', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ heartbeatInterval: 50, loopInterval: 50 });
  });
  after(() => hub.close());

  it('sends comment heartbeats that are not events', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/beat`);
    try {
      await stream.waitForCount(1);
      await eventually(() => stream.comments.length >= 2, 5000, 'two heartbeats');
      assert.equal(stream.events.length, 1, 'heartbeats are not events');
    } finally {
      stream.close();
    }
  });

  it('streams the article demo: "<time> Looping" on an interval', async () => {
    const stream = await openStream(`${hub.url}/messages/sse/anything`);
    try {
      assert.equal(stream.headers['content-type'], 'text/event-stream');
      await stream.waitForCount(3);
      for (const event of stream.events) assert.match(event.data, /^\S.* Looping$/);
      assert.ok(!Number.isNaN(Date.parse(stream.events[0]!.data.replace(' Looping', ''))) || /\d/.test(stream.events[0]!.data));
    } finally {
      stream.close();
    }
  });
});
