/**
 * Property: whatever a client sends to any route of the hub, both APIs and the operations
 * routes, on an open hub and on one with JWT keys, CORS and a metrics token, the answer is not
 * a 5xx, arrives (no hang), leaks no stack trace and no injected header, and an error has the
 * documented shape: JSON `{"error": {"code", "message"}}` with the code's status everywhere,
 * one line of text on the Mercure endpoint. And the hub keeps serving afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { MERCURE_SECRET } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { encodeSegment, fuzz, hostileText, percentEncode, segmentEncodings, type SegmentEncoding } from './arbitraries.js';
import { assertWellFormedAnswer } from './invariants.js';
import { rawExchange, requestBytes, type RawHeaders } from './raw-http.js';

const MAX_BODY = 64 * 1024;

/** Tokens: none of them may crash the verifier; some are valid. */
function tokens(valid: string[]): fc.Arbitrary<string> {
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return fc.oneof(
    fc.constantFrom(
      ...valid,
      '',
      'x',
      'a.b.c',
      '..',
      // alg none, with and without a signature
      `${b64({ alg: 'none' })}.${b64({ mercure: { publish: ['*'], subscribe: ['*'] } })}.`,
      `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ exp: 4102444800 })}.sig`,
      // algorithm confusion attempts and broken headers
      `${b64({ alg: 'RS256' })}.${b64({ mercure: { publish: ['*'] } })}.AAAA`,
      `${b64({ alg: 'HS256', crit: ['x'] })}.${b64({})}.AAAA`,
      `${b64('not an object')}.${b64([])}.AAAA`,
      `${b64({ alg: 'HS256' })}.${'A'.repeat(70_000)}.AAAA`,
    ),
    hostileText(60, 20_000),
    fc.tuple(fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 400 }), fc.base64String({ maxLength: 100 })).map(([h, p, s]) => `${h}.${p}.${s}`),
  );
}

/** A header value as bytes: hostile text without CR and LF (those would end the header). */
const headerValue = (maxLength: number, longUpTo = 0): fc.Arbitrary<Buffer> =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_.,;=/"\'é😀日'), maxLength }) },
      // Control characters other than tab make Node refuse the whole request as malformed:
      // rare, so that most requests reach the routes.
      { weight: 1, arbitrary: hostileText(maxLength, longUpTo).map((text) => text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '')) },
      { weight: 1, arbitrary: fc.oneof({ weight: 40, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('\u0000', 'a\u001bb', '\u007f') }) },
    )
    .map((text) => Buffer.from(text.replace(/[\r\n]/g, ''), 'utf8'));

// Mostly well-encoded (reaching the routes), sometimes raw bytes the HTTP parser must refuse.
const segmentEncoding = fc.oneof({ weight: 12, arbitrary: fc.constant<SegmentEncoding>('percent') }, { weight: 3, arbitrary: fc.constantFrom(...segmentEncodings) });
const segment = fc.tuple(hostileText(40, 5000), segmentEncoding).map(([text, encoding]) => encodeSegment(text, encoding));

const queryParam = fc.tuple(
  fc.oneof(
    fc.constantFrom('message', 'event', 'lastEventId', 'match', 'match_exact', 'match_urlpattern', 'topic', 'last_event_id', 'lastEventID', 'Last-Event-ID', 'matchX', 'match%20', 'id', '__proto__', 'constructor'),
    hostileText(10),
  ),
  fc.oneof(hostileText(40, 3000), fc.constantFrom('*', 'earliest', '/books/{id}', 'https://example.com/*', '/a/:x((?:a+)+)b', '{/x}*')),
  fc.oneof({ weight: 15, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
);

export function target(route: string, segments: string[], query: [string, string, boolean][]): string {
  const seg = segments[0] ?? '';
  let path: string;
  switch (route) {
    case 'publish':
    case 'topic-info':
      path = `/messages/${seg}`;
      break;
    case 'subscribe':
      path = `/messages/subscribe/${seg}`;
      break;
    case 'demo':
      path = `/messages/sse/${seg}`;
      break;
    case 'mercure':
      path = '/.well-known/mercure';
      break;
    case 'console':
      path = `/console/${segments.join('/')}`;
      break;
    case 'ops':
      path = `/${['healthz', 'readyz', 'metrics', 'stats', '', 'openapi.json'][seg.length % 6]}`;
      break;
    default:
      path = `/${segments.join('/')}`;
  }
  if (query.length === 0) return path;
  // Either properly encoded, or raw (whatever bytes the generator made).
  return `${path}?${query.map(([k, v, encode]) => (encode ? `${percentEncode(k)}=${percentEncode(v)}` : `${k}=${v}`)).join('&')}`;
}

const contentTypes = fc.oneof(
  fc.constantFrom(
    'text/plain',
    'text/plain; charset=utf-8',
    'text/plain; charset=latin1',
    'application/json',
    'application/json; charset=utf-16',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    'text/event-stream',
    'TEXT/PLAIN',
    ';;;',
    '',
  ),
  headerValue(30),
);

/** A body matching (or not) its content type. */
const body = fc.oneof(
  fc.constant(undefined),
  hostileText(80, MAX_BODY + 1000),
  fc.record({ message: fc.oneof(hostileText(60), fc.jsonValue()), event: fc.oneof(fc.constant(undefined), hostileText(20), fc.jsonValue()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.constantFrom('{"message":"x","__proto__":{"a":1}}', '{"message":"x","constructor":{"prototype":{"a":1}}}', '{"message":', '[]', 'null', '"just a string"', '{"message":"a"}'.repeat(3)),
  fc.array(fc.tuple(fc.constantFrom('topic', 'data', 'id', 'type', 'retry', 'private', 'message', 'event', 'x'), hostileText(30, 2000)), { maxLength: 8 }).map((pairs) => pairs.map(([k, v]) => `${k}=${percentEncode(v)}`).join('&')),
  fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
);

interface SurfaceRequest {
  secured: boolean;
  method: string;
  route: string;
  segments: string[];
  query: [string, string, boolean][];
  headers: Record<string, Buffer | string>;
  body: string | Buffer | undefined;
}

export function surfaceRequest(validTokens: string[]): fc.Arbitrary<SurfaceRequest> {
  return fc.record({
    secured: fc.boolean(),
    method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom('GET', 'POST') }, { weight: 2, arbitrary: fc.constantFrom('PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'get', 'FOO', 'CONNECT') }),
    route: fc.constantFrom('publish', 'subscribe', 'topic-info', 'demo', 'mercure', 'mercure', 'console', 'ops', 'random'),
    segments: fc.array(segment, { minLength: 1, maxLength: 3 }),
    query: fc.array(queryParam, { maxLength: 4 }),
    headers: fc.record(
      {
        'Content-Type': contentTypes,
        'Last-Event-ID': fc.oneof(headerValue(40, 3000), fc.constantFrom('earliest', '0', '-1', '1e999', '99999999999999999999', ' 1 ')),
        Authorization: fc.oneof(tokens(validTokens).map((t) => `Bearer ${t.replace(/[\r\n]/g, '')}`), headerValue(40), fc.constantFrom('Bearer', 'bearer  ', 'Basic YTpi', 'Bearer a b')),
        Cookie: fc.oneof(
          tokens(validTokens).map((t) => `mercureAuthorization=${t.replace(/[\r\n;]/g, '')}`),
          tokens(validTokens).map((t) => `__Secure-mercure_access_token="${t.replace(/[\r\n;]/g, '')}"; other=1`),
          fc.integer({ min: 1, max: 40_000 }).map((n) => `big=${'c'.repeat(n)}`),
          headerValue(60),
        ),
        'X-Request-Id': headerValue(40, 2000),
        Origin: fc.oneof(fc.constantFrom('https://app.example', 'https://evil.example', 'null', 'https://APP.example'), headerValue(30)),
        'Access-Control-Request-Method': fc.constantFrom('GET', 'POST', 'DELETE', ''),
        'Access-Control-Request-Headers': fc.constantFrom('authorization, last-event-id', 'x-evil', ''),
        'X-Forwarded-For': fc.oneof(fc.constantFrom('1.2.3.4', '::1, 10.0.0.1', 'garbage'), headerValue(20)),
        Accept: fc.constantFrom('text/event-stream', '*/*', 'application/json'),
        'Accept-Encoding': fc.constantFrom('gzip', 'br, deflate', 'identity'),
      },
      { requiredKeys: [] },
    ),
    body,
  });
}

describe('fuzz: the whole HTTP surface answers hostile requests within its documented shapes', () => {
  let open: TestHub;
  let secured: TestHub;
  let validTokens: string[];

  before(async () => {
    open = await startHub({ maxBodySize: MAX_BODY, headersTimeout: 5000 });
    secured = await startHub({
      maxBodySize: MAX_BODY,
      headersTimeout: 5000,
      publisherJwtKey: MERCURE_SECRET,
      corsOrigins: ['https://app.example'],
      metricsToken: 'metrics-secret',
    });
    const { legacyToken, accessToken } = await import('../auth/tokens.js');
    validTokens = [
      await legacyToken({ publish: ['*'], subscribe: ['*'] }),
      await accessToken({ publish: [{ match: '*' }], subscribe: [{ match: 'https://example.com/{id}', match_type: 'uritemplate' }] }),
      await legacyToken({ publish: ['nothing'], subscribe: [] }, { exp: 1 }),
    ];
  });
  after(async () => {
    await open?.close();
    await secured?.close();
  });

  it('never answers 5xx, never hangs, never leaks a stack trace, always in the documented shape', async (t) => {
    let requests = 0;
    const statuses = new Map<string, number>();
    await fuzz(
      'HTTP surface',
      fc.asyncProperty(surfaceRequest(validTokens ?? []), async (r) => {
        const hub = r.secured ? secured : open;
        const port = Number(new URL(hub.url).port);
        const path = target(r.route, r.segments, r.query);
        const bytes = requestBytes({ method: r.method, target: path, headers: r.headers as RawHeaders, body: r.body });
        const res = await rawExchange(port, bytes, { timeoutMs: 8000 });
        requests++;
        const code = /"code":"(\w+)"/.exec(res.body.toString('latin1'))?.[1];
        const key = code ? `${res.status} ${code.replace('HUB_ERR_', '')}` : String(res.status);
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        const onMercure = path === '/.well-known/mercure' || path.startsWith('/.well-known/mercure?');
        assertWellFormedAnswer(res, onMercure ? 'mercure' : 'json', r.method);
      }),
      2500,
    );
    t.diagnostic(`${requests} requests; answers by status: ${[...statuses].sort((a, b) => a[0].localeCompare(b[0])).map(([s, n]) => `${s}×${n}`).join(', ')}`);
    assert.ok(requests > 0);
    // Still serving both hubs, and nothing left subscribed.
    for (const hub of [open, secured]) {
      assert.equal((await fetch(`${hub.url}/healthz`)).status, 200);
    }
  });
});
