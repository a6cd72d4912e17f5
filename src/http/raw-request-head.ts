import type { IncomingHttpHeaders } from 'node:http';

/** A request head in the strict subset {@link parseRawRequestHead} accepts. */
export interface RawRequestHead {
  /** The request target, as node:http's `request.url` would give it. */
  readonly url: string;
  /** Lowercase names, each present once, values with their surrounding whitespace trimmed. */
  readonly headers: IncomingHttpHeaders;
  /** Where the body starts in the bytes parsed. */
  readonly bodyStart: number;
  /** The body's length: its Content-Length, 0 without one. */
  readonly bodyLength: number;
  /** False when the client asked for `Connection: close`. */
  readonly keepAlive: boolean;
}

/** Heads longer than this are node:http's to judge (its own limit is 16 KiB). */
export const MAX_RAW_HEAD_BYTES = 8 * 1024;
/** Header lines at most; more are node:http's to judge. */
const MAX_HEADER_LINES = 64;

/** The methods the raw paths serve: publishes and subscriptions. */
export type RawRequestMethod = 'POST' | 'GET';
const REQUEST_LINE_STARTS: Readonly<Record<RawRequestMethod, Buffer>> = { POST: Buffer.from('POST /', 'latin1'), GET: Buffer.from('GET /', 'latin1') };
const VERSION_AND_EOL = Buffer.from(' HTTP/1.1\r\n', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
/** Content-Length as RFC 9110 spells it, without leading zeros: at most 15 digits, so exact as a number. */
const CONTENT_LENGTH = /^(?:0|[1-9][0-9]{0,14})$/;

/** RFC 9110 `tchar`: the bytes a header name is made of. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

/**
 * Headers whose meaning the raw path does not take on: framing it does not do (chunked bodies,
 * `Expect: 100-continue`, protocol upgrades) or a check only Fastify's route makes (a cookie,
 * so CSRF). A request carrying one is node:http's.
 */
const NOT_TAKEN = new Set(['transfer-encoding', 'te', 'expect', 'upgrade', 'http2-settings', 'cookie', 'proxy-connection']);

/**
 * Parses `bytes` as one whole HTTP/1.1 `POST /…` (or `GET /…`) request head in a deliberately strict subset of
 * the grammar, and returns undefined for anything outside it, so the caller can hand the bytes
 * to node:http, whose parser then accepts or refuses them as it always did. Undefined also when
 * the head is not complete in `bytes`. The subset:
 *
 * - request line exactly `<method> /<target> HTTP/1.1` CRLF, the target of visible ASCII only;
 * - header lines `name: value` CRLF: a token name, a value of visible ASCII, spaces and tabs
 *   (trimmed); no obs-fold (a line starting with whitespace), no bare CR or LF, no byte ≥ 0x80,
 *   at most {@link MAX_HEADER_LINES} lines in {@link MAX_RAW_HEAD_BYTES} bytes;
 * - every header name at most once (so no two Content-Lengths and no two Hosts: request
 *   smuggling starts with a disagreement about those) and none that names a property of
 *   `Object.prototype` (`__proto__`, `constructor`), which also keeps the headers object safe;
 * - `Host` present; `Content-Length` digits only, no sign, no leading zero, at most 15 digits;
 *   `Connection` exactly `keep-alive` or `close`; none of {@link NOT_TAKEN}.
 */
export function parseRawRequestHead(bytes: Buffer, method: RawRequestMethod = 'POST'): RawRequestHead | undefined {
  const requestLineStart = REQUEST_LINE_STARTS[method];
  const limit = Math.min(bytes.length, MAX_RAW_HEAD_BYTES);
  if (limit < requestLineStart.length || bytes.compare(requestLineStart, 0, requestLineStart.length, 0, requestLineStart.length) !== 0) return undefined;
  const targetStart = requestLineStart.length - 1;
  let i = targetStart;
  while (i < limit) {
    const c = bytes[i]!;
    if (c === SP) break;
    if (c < 0x21 || c > 0x7e) return undefined;
    i++;
  }
  if (i + VERSION_AND_EOL.length > limit || bytes.compare(VERSION_AND_EOL, 0, VERSION_AND_EOL.length, i, i + VERSION_AND_EOL.length) !== 0) return undefined;
  const url = bytes.toString('latin1', targetStart, i);
  i += VERSION_AND_EOL.length;

  const headers: IncomingHttpHeaders = {};
  let lines = 0;
  for (;;) {
    if (i + 1 >= limit) return undefined;
    if (bytes[i] === CR) {
      if (bytes[i + 1] !== LF) return undefined;
      i += 2;
      break;
    }
    const nameStart = i;
    while (i < limit && bytes[i]! < 0x80 && TOKEN[bytes[i]!] === 1) i++;
    if (i === nameStart || i >= limit || bytes[i] !== COLON) return undefined;
    const name = bytes.toString('latin1', nameStart, i).toLowerCase();
    i++;
    while (i < limit && (bytes[i] === SP || bytes[i] === HTAB)) i++;
    const valueStart = i;
    let valueEnd = i;
    while (i < limit) {
      const c = bytes[i]!;
      if (c === CR) break;
      if (c !== HTAB && (c < 0x20 || c > 0x7e)) return undefined;
      i++;
      if (c !== SP && c !== HTAB) valueEnd = i;
    }
    if (i + 1 >= limit || bytes[i + 1] !== LF) return undefined;
    i += 2;
    // `in` also sees Object.prototype's names: such a header is node:http's.
    if (++lines > MAX_HEADER_LINES || name in headers || NOT_TAKEN.has(name)) return undefined;
    headers[name] = bytes.toString('latin1', valueStart, valueEnd);
  }

  if (headers.host === undefined) return undefined;
  let bodyLength = 0;
  const length = headers['content-length'];
  if (length !== undefined) {
    if (!CONTENT_LENGTH.test(length)) return undefined;
    bodyLength = Number(length);
  }
  let keepAlive = true;
  const connection = headers.connection;
  if (connection !== undefined) {
    const token = connection.toLowerCase();
    if (token === 'close') keepAlive = false;
    else if (token !== 'keep-alive') return undefined;
  }
  return { url, headers, bodyStart: i, bodyLength, keepAlive };
}
