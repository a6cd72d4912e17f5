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
const REQUEST_LINE_STARTS: Readonly<Record<RawRequestMethod, string>> = { POST: 'POST /', GET: 'GET /' };
const VERSION_AND_EOL = ' HTTP/1.1\r\n';
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
 * The names publishers send, as constant (so internalized) strings, by length: a name that
 * matches one, in any case, is stored under it with no lowercase copy made and no lookup of a
 * fresh string in V8's string table when it becomes a property key (both showed up in the
 * callgrind profile of a publish, `bench/callgrind-publish.ts`). Other names are lowercased.
 */
const KNOWN_NAMES: readonly (readonly string[])[] = (() => {
  const byLength: string[][] = [];
  const names = ['host', 'content-type', 'content-length', 'connection', 'user-agent', 'accept', 'authorization', 'origin', 'accept-encoding', 'keep-alive', 'cookie', 'transfer-encoding', 'expect', 'upgrade', 'te'];
  for (const name of names) (byLength[name.length] ??= []).push(name);
  return byLength;
})();

/**
 * The lowercase name of `text[start, end)` (`bytes[start, end)` decoded), a token: a known
 * name's constant, or a lowercased copy.
 */
function headerName(bytes: Buffer, text: string, start: number, end: number): string {
  const candidates = KNOWN_NAMES[end - start];
  if (candidates !== undefined) {
    for (const known of candidates) {
      let i = 0;
      // `| 0x20` lowercases letters; tokens hold no byte that it would turn into another one of `known`.
      while (i < known.length && (bytes[start + i]! | 0x20) === known.charCodeAt(i)) i++;
      if (i === known.length) return known;
    }
  }
  return text.slice(start, end).toLowerCase();
}

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
  if (limit < requestLineStart.length) return undefined;
  // One string for the whole head: latin1 maps every byte to the char of the same code, so
  // names, values and the target are slices of it (one decode instead of one per field). The
  // checks read the bytes themselves: a Buffer's element loads are inlined in optimized code,
  // where `text.charCodeAt` per character halved this function's speed (1.65 → 0.88 µs per
  // 100-byte head in a loop of parses; in bench/callgrind-publish most of ~24k instructions per
  // publish in V8's LoadIC builtin came from here).
  const text = bytes.toString('latin1', 0, limit);
  if (!text.startsWith(requestLineStart)) return undefined;
  const targetStart = requestLineStart.length - 1;
  let i = targetStart;
  while (i < limit) {
    const c = bytes[i]!;
    if (c === SP) break;
    if (c < 0x21 || c > 0x7e) return undefined;
    i++;
  }
  if (i + VERSION_AND_EOL.length > limit || !text.startsWith(VERSION_AND_EOL, i)) return undefined;
  const url = text.slice(targetStart, i);
  i += VERSION_AND_EOL.length;

  const headers: IncomingHttpHeaders = {};
  let lines = 0;
  for (;;) {
    if (i + 1 >= limit) return undefined;
    if (bytes[i]! === CR) {
      if (bytes[i + 1]! !== LF) return undefined;
      i += 2;
      break;
    }
    const nameStart = i;
    for (let c = bytes[i]!; i < limit && c < 0x80 && TOKEN[c] === 1; c = bytes[++i]!);
    if (i === nameStart || i >= limit || bytes[i]! !== COLON) return undefined;
    const name = headerName(bytes, text, nameStart, i);
    i++;
    for (let c = bytes[i]!; i < limit && (c === SP || c === HTAB); c = bytes[++i]!);
    const valueStart = i;
    let valueEnd = i;
    while (i < limit) {
      const c = bytes[i]!;
      if (c === CR) break;
      if (c !== HTAB && (c < 0x20 || c > 0x7e)) return undefined;
      i++;
      if (c !== SP && c !== HTAB) valueEnd = i;
    }
    if (i + 1 >= limit || bytes[i + 1]! !== LF) return undefined;
    i += 2;
    // `in` also sees Object.prototype's names: such a header is node:http's.
    if (++lines > MAX_HEADER_LINES || name in headers || NOT_TAKEN.has(name)) return undefined;
    headers[name] = text.slice(valueStart, valueEnd);
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
