/**
 * Property: a message the hub accepts comes out of every subscription, live and replayed from
 * the store, exactly as published (line breaks normalised to LF, as the SSE specification
 * does), read by an independent parser (eventsource-parser) from the raw bytes; a message the
 * hub refuses is refused with the documented code. Both APIs, every way of publishing, and
 * resumption from any accepted id, by header (as browsers send it: UTF-8) and by query.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isReservedTopic } from '../../src/protocols/mercure/publish.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import {
  BIDI_FORMATTING,
  fuzz,
  hostileText,
  mixedText,
  isValidEventType,
  isValidTopic,
  isWellFormed,
  normaliseLineBreaks,
  percentEncode,
  survivesHeader,
  viaUtf8,
} from './arbitraries.js';
import { isMessage } from '../helpers/sse-client.js';
import { assertWellFormedAnswer } from './invariants.js';
import { openRawStream, rawExchange, requestBytes, type ParsedEvent, type RawStream } from './raw-http.js';

let unique = 0;
/** Makes a generated topic or id unique to its run (history and ids persist across runs). */
const tagged = (text: string): string => `${text}~${++unique}`;

const withoutGreeting = (events: readonly ParsedEvent[]): ParsedEvent[] => events.filter(isMessage);

async function subscribe(port: number, target: string, headers: Record<string, string> = {}): Promise<RawStream> {
  return openRawStream(port, requestBytes({ method: 'GET', target, headers: { Accept: 'text/event-stream', ...headers, Connection: 'keep-alive' } }));
}

describe('fuzz: accepted messages round-trip byte for byte, refused ones are refused as documented', () => {
  let hub: TestHub;
  let port: number;
  before(async () => {
    hub = await startHub({ maxBodySize: 1024 * 1024, retentionCount: 100 });
    port = Number(new URL(hub.url).port);
  });
  after(() => hub?.close());

  it('the article API: every way of publishing, live and replayed', async (t) => {
    const transports = ['json', 'text', 'form', 'query'] as const;
    const accepted = { count: 0 };
    await fuzz(
      'messages round trip',
      fc.asyncProperty(
        mixedText(30, 300),
        fc.oneof(hostileText(60), hostileText(20, 60_000)),
        fc.option(mixedText(12, 300), { nil: undefined }),
        fc.constantFrom(...transports),
        async (rawTopic, message, event, transport) => {
          // The path carries UTF-8: a lone surrogate arrives as U+FFFD.
          const topic = viaUtf8(tagged(rawTopic));
          // What the hub receives: JSON carries lone surrogates as escapes; the other
          // transports carry UTF-8 bytes, in which a lone surrogate became U+FFFD.
          const sentMessage = transport === 'json' ? message : viaUtf8(message);
          const sentEvent = event === undefined ? undefined : transport === 'json' ? event : viaUtf8(event);
          const query = transport === 'query' ? message.length > 3000 : false;
          if (query) return; // A long message in the URL is a 431 (headers too large), tested elsewhere.

          let target = `/messages/${percentEncode(topic)}`;
          let body: string | undefined;
          const headers: Record<string, string> = {};
          const params: string[] = [];
          switch (transport) {
            case 'json':
              body = JSON.stringify({ message, event });
              headers['Content-Type'] = 'application/json';
              break;
            case 'text':
              body = message;
              headers['Content-Type'] = 'text/plain; charset=utf-8';
              if (event !== undefined) params.push(`event=${percentEncode(event)}`);
              break;
            case 'form':
              body = `message=${percentEncode(message)}${event === undefined ? '' : `&event=${percentEncode(event)}`}`;
              headers['Content-Type'] = 'application/x-www-form-urlencoded';
              break;
            case 'query':
              params.push(`message=${percentEncode(message)}`);
              if (event !== undefined) params.push(`event=${percentEncode(event)}`);
              break;
          }
          if (params.length > 0) target += `?${params.join('&')}`;

          const expectedEvent = sentEvent === '' ? undefined : sentEvent;
          const expectedCode = !isValidTopic(topic)
            ? 'HUB_ERR_TOPIC_INVALID'
            : sentMessage === ''
              ? 'HUB_ERR_MESSAGE_MISSING'
              : !isWellFormed(sentMessage)
                ? 'HUB_ERR_MESSAGE_INVALID'
                : expectedEvent !== undefined && !isValidEventType(expectedEvent)
                  ? 'HUB_ERR_EVENT_TYPE_INVALID'
                  : undefined;

          const live = expectedCode === undefined ? await subscribe(port, `/messages/subscribe/${percentEncode(topic)}`) : undefined;
          const mercure = expectedCode === undefined ? await subscribe(port, `/.well-known/mercure?match=${percentEncode(topic)}`) : undefined;
          try {
            const res = await rawExchange(port, requestBytes({ method: 'POST', target, headers, body }));
            assertWellFormedAnswer(res, 'json', 'POST');
            if (expectedCode !== undefined) {
              assert.equal(res.status, 400, res.body.toString());
              assert.equal(JSON.parse(res.body.toString()).error.code, expectedCode);
              return;
            }
            assert.equal(res.status, 200, res.body.toString());
            const { id } = JSON.parse(res.body.toString()) as { id: string };
            accepted.count++;
            const expected: ParsedEvent = { id, event: expectedEvent, data: normaliseLineBreaks(sentMessage) };
            for (const stream of [live!, mercure!]) {
              await stream.waitFor((events) => events.some((e) => e.id === id), 3000);
              assert.deepEqual(withoutGreeting(stream.events), [expected]);
            }
            // From the store: a new subscriber replaying everything retained on the topic.
            const replay = await subscribe(port, `/messages/subscribe/${percentEncode(topic)}?lastEventId=earliest`);
            try {
              await replay.waitFor((events) => events.some((e) => e.id === id), 3000);
              assert.deepEqual(withoutGreeting(replay.events), [expected]);
            } finally {
              replay.close();
            }
          } finally {
            live?.close();
            mercure?.close();
          }
        },
      ),
      1500,
    );
    t.diagnostic(`${accepted.count} messages accepted and delivered`);
    assert.ok(accepted.count > 50, `only ${accepted.count} messages were accepted: the generators are too hostile to test delivery`);
  });

  it('Mercure: updates with custom ids, types and several topics, on both APIs; resumption from any id', async (t) => {
    const accepted = { count: 0, resumed: 0 };
    await fuzz(
      'mercure round trip',
      fc.asyncProperty(
        fc.array(mixedText(30, 300), { minLength: 1, maxLength: 3 }),
        fc.oneof(hostileText(60), hostileText(20, 30_000)),
        fc.option(mixedText(20, 300), { nil: undefined }),
        fc.option(mixedText(12, 300), { nil: undefined }),
        fc.option(fc.oneof(fc.nat({ max: 100_000 }).map(String), hostileText(5)), { nil: undefined }),
        fc.boolean(),
        async (rawTopics, data, rawId, type, retry, isPrivate) => {
          const topics = rawTopics.map(tagged).map(viaUtf8);
          const id = rawId === undefined ? undefined : viaUtf8(tagged(rawId));
          const sentType = type === undefined ? undefined : viaUtf8(type);
          const sentData = viaUtf8(data);
          const fields: [string, string][] = [...topics.map((t): [string, string] => ['topic', t]), ['data', data]];
          if (rawId !== undefined) fields.push(['id', id!]);
          if (type !== undefined) fields.push(['type', type]);
          if (retry !== undefined) fields.push(['retry', retry]);
          if (isPrivate) fields.push(['private', 'on']);
          const body = fields.map(([k, v]) => `${k}=${percentEncode(v)}`).join('&');

          // eslint-disable-next-line no-control-regex
          const control = /[\u0000-\u001f\u007f-\u009f]/;
          const effectiveType = sentType === '' ? undefined : sentType;
          const valid =
            topics.every((t) => isValidTopic(t) && t !== '*' && !isReservedTopic(t)) &&
            (id === undefined || (id.length <= 256 && !id.startsWith('#') && id !== 'earliest' && !/^[0-9]+$/.test(id) && !control.test(id) && !BIDI_FORMATTING.test(id))) &&
            (effectiveType === undefined || (effectiveType !== 'mercure' && isValidEventType(effectiveType))) &&
            (retry === undefined || retry === '' || /^\d{1,15}$/.test(retry));

          const first = topics[0]!;
          const streams = valid
            ? [await subscribe(port, `/.well-known/mercure?match=${percentEncode(first)}`), await subscribe(port, `/messages/subscribe/${percentEncode(first)}`)]
            : [];
          try {
            const res = await rawExchange(port, requestBytes({ method: 'POST', target: '/.well-known/mercure', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body }));
            assertWellFormedAnswer(res, 'mercure', 'POST');
            if (!valid) {
              assert.equal(res.status, 400, `expected a refusal: ${res.body.toString()}`);
              return;
            }
            assert.equal(res.status, 200, res.body.toString());
            const assigned = res.body.toString('utf8');
            if (id !== undefined) assert.equal(assigned, id);
            accepted.count++;

            // A public fence after it: once the fence arrived, the update would have too.
            const fence = await rawExchange(port, requestBytes({ method: 'POST', target: '/.well-known/mercure', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `topic=${percentEncode(first)}&data=fence` }));
            assert.equal(fence.status, 200);
            const fenceId = fence.body.toString('utf8');
            const expected: ParsedEvent = { id: assigned, event: effectiveType, data: normaliseLineBreaks(sentData) };
            const fenceEvent: ParsedEvent = { id: fenceId, event: undefined, data: 'fence' };
            for (const stream of streams) {
              await stream.waitFor((events) => events.some((e) => e.id === fenceId), 3000);
              // Private updates reach no one on an open hub: no token can prove a grant.
              assert.deepEqual(withoutGreeting(stream.events), isPrivate ? [fenceEvent] : [expected, fenceEvent]);
            }
            if (isPrivate || !survivesHeader(assigned)) return;

            // Resume after the update, from its id: exactly the fence, no gap. By header (the
            // UTF-8 bytes a browser sends) on both APIs, and by query on Mercure.
            accepted.resumed++;
            const resumes = await Promise.allSettled([
              subscribe(port, `/.well-known/mercure?match=${percentEncode(first)}`, { 'Last-Event-ID': assigned }),
              subscribe(port, `/.well-known/mercure?match=${percentEncode(first)}&last_event_id=${percentEncode(assigned)}`),
              subscribe(port, `/messages/subscribe/${percentEncode(first)}`, { 'Last-Event-ID': assigned }),
              subscribe(port, `/messages/subscribe/${percentEncode(first)}?lastEventId=${percentEncode(assigned)}`),
            ]);
            const opened = resumes.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
            const failed = resumes.find((r) => r.status === 'rejected');
            if (failed) {
              for (const stream of opened) stream.close();
              throw (failed as PromiseRejectedResult).reason;
            }
            for (const [i, stream] of opened.entries()) {
              try {
                await stream.waitFor((events) => events.some((e) => e.id === fenceId), 3000);
                assert.deepEqual(withoutGreeting(stream.events), [fenceEvent], `resume #${i} after ${JSON.stringify(assigned)}`);
                assert.equal(stream.head.headers['replay-gap'], undefined, `resume #${i}: no gap`);
                // ASCII ids as they are; others percent-encoded, as header values must be ASCII.
                // eslint-disable-next-line no-control-regex
                const echoed = /^[\u0000-\u007f]*$/.test(assigned) ? assigned : encodeURIComponent(assigned);
                if (i < 2) assert.equal(stream.head.headers['mercure-last-event-id'], echoed, `resume #${i}: Mercure-Last-Event-ID`);
              } finally {
                stream.close();
              }
            }
          } finally {
            for (const stream of streams) stream.close();
          }
        },
      ),
      1000,
    );
    t.diagnostic(`${accepted.count} updates accepted and delivered, ${accepted.resumed} resumed from by header and query`);
    assert.ok(accepted.count > 40 && accepted.resumed > 20, `accepted ${accepted.count}, resumed ${accepted.resumed}: the generators are too hostile`);
  });
});
