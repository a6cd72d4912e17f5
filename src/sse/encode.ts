/**
 * SSE framing, per the HTML Living Standard ("server-sent events", event stream interpretation).
 * Every byte the hub sends on an event stream is produced here; nothing else builds frames.
 *
 * - A data value is split on CRLF, CR or LF into several `data:` lines; the client joins them
 *   with LF, so line breaks arrive normalised to LF and nothing can inject a field or an event.
 * - `data: ` is written with the space: a parser strips exactly one leading space, so a value
 *   that itself starts with a space survives.
 * - `id` and `event` values must not contain CR or LF (and `id` no NUL): callers validate them
 *   at the API (HUB_ERR_EVENT_*); this module refuses them as a last line of defence.
 * - No BOM is ever written.
 * - A stored message's frame starts with a comment giving its publish time
 *   (`: published 2026-12-03T10:43:22.123Z`): clients ignore comments, so plain `EventSource`
 *   clients see the same events, while the SDK reads it (`publishedAt`) and a replayed
 *   message can be told from one that arrives live.
 */
import type { Message } from '../hub/message.js';
import { isoTime } from './iso-time.js';

/** One event to frame. */
export interface SseEvent {
  readonly id?: string | undefined;
  readonly event?: string | undefined;
  readonly data: string;
  readonly retry?: number | undefined;
}

const LINE_BREAK = /\r\n|\r|\n/;
// eslint-disable-next-line no-control-regex
const UNSAFE_FIELD = /[\r\n\u0000]/;

/** Frames one event as text, ending with the blank line that dispatches it. */
export function encodeEvent(event: SseEvent): string {
  let out = '';
  if (event.id !== undefined) out += `id: ${safeField('id', event.id)}\n`;
  if (event.event !== undefined) out += `event: ${safeField('event', event.event)}\n`;
  if (event.retry !== undefined) out += `retry: ${Math.max(0, Math.trunc(event.retry))}\n`;
  out += encodeData(event.data);
  return `${out}\n`;
}

/** `data:` lines for a value (without the terminating blank line). */
export function encodeData(data: string): string {
  // Fast path: most payloads have no line break.
  if (!data.includes('\n') && !data.includes('\r')) return `data: ${data}\n`;
  let out = '';
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}

/** A comment line (ignored by clients): heartbeats and notices. Line breaks become spaces. */
export function encodeComment(text: string): string {
  return text.length === 0 ? ':\n\n' : `: ${text.replace(/[\r\n]+/g, ' ')}\n\n`;
}

/**
 * A frame with an `id:` and no data (and a `retry:` hint when given): it sets the client's
 * last event id without dispatching an event, so an `EventSource` that drops before the first
 * message resumes from this position (the standard sets the id before it discards a frame
 * without data).
 */
export function encodePosition(id: string, retry?: number): string {
  let out = `id: ${safeField('id', id)}\n`;
  if (retry !== undefined) out += `retry: ${Math.max(0, Math.trunc(retry))}\n`;
  return `${out}\n`;
}

/** A stand-alone `retry:` hint. */
export function encodeRetry(ms: number): string {
  return `retry: ${Math.max(0, Math.trunc(ms))}\n\n`;
}

/** What precedes the publish time in a message frame's leading comment (see the module doc). */
export const PUBLISHED_COMMENT_PREFIX = 'published ';

/**
 * A stored message's bytes, kept on the message itself (`Message.encoded`): the frame, and the
 * same frame as one HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`), one allocation with the
 * frame a view into it.
 */
export interface EncodedMessage {
  /** The message this was encoded from (a spread copy of it carries this memo too). */
  readonly of: Message;
  readonly frame: Buffer;
  readonly chunk: Buffer;
}

/**
 * The frame of a stored message, as bytes, computed once per message and shared by every
 * subscriber it is written to (and by every replay of it while it stays in memory).
 *
 * The memo lives on the message rather than in a WeakMap (with a second one from frame to
 * chunk): two WeakMap misses and two inserts per publish, and two ephemeron entries per
 * retained message that every scavenge and every mark of the heap has to revisit, were ~7% of
 * the main thread's instructions per non-pipelined publish (bench/callgrind-publish).
 */
export function encodeMessage(message: Message): Buffer {
  return encodedOf(message).frame;
}

/** The chunk of a stored message's frame (see {@link EncodedMessage}); `frame` is its frame as delivered. */
export function chunkOfMessage(message: Message, frame: Buffer): Buffer {
  const encoded = message.encoded;
  return encoded !== undefined && encoded.frame === frame ? encoded.chunk : chunkOf(frame);
}

function encodedOf(message: Message): EncodedMessage {
  const memo = message.encoded;
  if (memo !== undefined && memo.of === message) return memo;
  // A store that lost the time (0, NaN) frames the message without it rather than fail.
  const published = message.time > 0 && Number.isFinite(message.time) ? `: ${PUBLISHED_COMMENT_PREFIX}${isoTime(message.time)}\n` : '';
  const text = published + encodeEvent({ id: message.id, event: message.type, data: message.data, retry: message.retry });
  const length = Buffer.byteLength(text, 'utf8');
  const head = `${length.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(head.length + length + 2);
  // One write of the whole chunk (the head and CRLF are ASCII, the same bytes in UTF-8).
  chunk.write(`${head}${text}\r\n`, 0, 'utf8');
  const encoded: EncodedMessage = { of: message, frame: chunk.subarray(head.length, head.length + length), chunk };
  message.encoded = encoded;
  return encoded;
}

function safeField(name: string, value: string): string {
  if (UNSAFE_FIELD.test(value)) throw new TypeError(`SSE ${name} must not contain CR, LF or NUL`);
  return value;
}

const chunks = new WeakMap<Buffer, Buffer>();
let lastFrame: Buffer | undefined;
let lastChunk: Buffer | undefined;

/**
 * The bytes of `frame` as one HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`), computed once per
 * frame and shared: the hot path writes these straight to each socket (see stream.ts).
 */
export function chunkOf(frame: Buffer): Buffer {
  // A fan-out asks for the same frame once per subscriber, back to back: one remembered pair
  // answers those without a WeakMap lookup each.
  if (frame === lastFrame) return lastChunk!;
  let chunk = chunks.get(frame);
  if (chunk === undefined) {
    const head = `${frame.length.toString(16)}\r\n`;
    chunk = Buffer.allocUnsafe(head.length + frame.length + 2);
    chunk.write(head, 0, 'latin1');
    frame.copy(chunk, head.length);
    chunk.write('\r\n', head.length + frame.length, 'latin1');
    chunks.set(frame, chunk);
  }
  lastFrame = frame;
  lastChunk = chunk;
  return chunk;
}
