/**
 * What every answer of the hub must satisfy, whatever was asked: the invariants of the fuzz
 * suites. Each check throws an AssertionError naming the violation and showing the answer.
 */
import assert from 'node:assert/strict';
import { ERROR_CODES } from '../../src/hub/errors.js';
import type { RawResponse } from './raw-http.js';

/** Which error shape an endpoint documents. */
export type ErrorShape = 'json' | 'mercure';

const STATUSES = new Set<number>(Object.values(ERROR_CODES).map((c) => c.status));
// A V8 stack frame ("    at fn (file.js:1:2)") or a source location.
const STACK_TRACE = /\n\s+at \S|\bat [^\s()]+ \([^)]*:\d+:\d+\)|\.(?:js|ts|mjs|cjs):\d+:\d+/;
/** Response headers an attacker must never be able to add (they appear in the generators' injection attempts). */
const FORBIDDEN_HEADERS = ['x-injected', 'set-cookie', 'forged'];

function describe(res: RawResponse): string {
  return `${res.status} ${JSON.stringify(res.headers)} ${JSON.stringify(res.body.toString('utf8').slice(0, 400))}`;
}

/**
 * The invariants of every answer: not a 5xx, no stack trace, no injected header, and an error
 * in the endpoint's documented shape with the documented status for its code.
 */
export function assertWellFormedAnswer(res: RawResponse, shape: ErrorShape, method = 'GET'): void {
  const text = res.body.toString('utf8');
  assert.ok(res.status >= 100 && res.status < 500, `a 5xx or no status: ${describe(res)}`);
  assert.ok(!STACK_TRACE.test(text), `stack trace leaked: ${describe(res)}`);
  for (const name of FORBIDDEN_HEADERS) assert.equal(res.headers[name], undefined, `header ${name} injected: ${describe(res)}`);
  if (res.status === 401) assert.ok(res.headers['www-authenticate'], `401 without WWW-Authenticate: ${describe(res)}`);
  if (res.status === 429 || res.status === 503) assert.ok(res.headers['retry-after'], `${res.status} without Retry-After: ${describe(res)}`);
  if (res.eventStream) {
    assert.equal(res.status, 200, `event stream with status ${res.status}`);
    assertCleanFraming(text);
    return;
  }
  // A HEAD answer has the headers of the GET answer and no body.
  if (res.status < 400 || method === 'HEAD') return;
  if (shape === 'mercure' && /^text\/plain/i.test(res.headers['content-type'] ?? '')) {
    assert.ok(STATUSES.has(res.status), `undocumented status: ${describe(res)}`);
    assert.ok(text.length > 1 && text.endsWith('\n') && !text.trimStart().startsWith('{'), `Mercure error body is not one line of text: ${describe(res)}`);
    return;
  }
  // /messages and everything else (and the hub-wide limits on the Mercure path): the JSON shape.
  assert.match(res.headers['content-type'] ?? '', /^application\/json/i, `error is not JSON: ${describe(res)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`error body is not JSON: ${describe(res)}`);
  }
  assert.ok(body !== null && typeof body === 'object' && !Array.isArray(body), `error body is not an object: ${describe(res)}`);
  assert.deepEqual(Object.keys(body as object), ['error'], `error body keys: ${describe(res)}`);
  const error = (body as { error: unknown }).error as Record<string, unknown>;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message'], `error keys: ${describe(res)}`);
  const code = error.code as keyof typeof ERROR_CODES;
  assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_CODES, code), `undocumented code: ${describe(res)}`);
  assert.equal(res.status, ERROR_CODES[code].status, `status does not match the documented status of ${code}: ${describe(res)}`);
  assert.ok(typeof error.message === 'string' && error.message.length > 0, `empty message: ${describe(res)}`);
  // Messages may quote the request, but must not echo an attacker's megabytes back.
  assert.ok((error.message as string).length <= 1024, `message of ${(error.message as string).length} characters: ${describe(res)}`);
}

/** Every line of an event stream is a field the hub writes, a comment, or blank: nothing injected. */
export function assertCleanFraming(text: string): void {
  // The stream was cut at an arbitrary byte: the last line may be partial.
  const lines = text.split(/\r\n|\r|\n/).slice(0, -1);
  for (const line of lines) {
    assert.ok(line === '' || line.startsWith(':') || /^(?:data|id|event|retry): /.test(line) || line === 'data:', `unexpected stream line ${JSON.stringify(line)}`);
    if (line.startsWith('retry: ')) assert.match(line, /^retry: \d+$/);
  }
}
