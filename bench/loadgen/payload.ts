/**
 * The benchmark's message body: `M<step>,<lane>,<seq>,<sentUs>,` padded with `x` to a fixed size.
 *
 * - `step` tells which measurement step published it, so a late event of an earlier step is
 *   never counted in the next one;
 * - `lane` is the publishing connection that sent it. A topic may be published on several
 *   connections (one per hub node when a peer has several endpoints), and the hub defines no
 *   order between messages that arrive concurrently on different connections, so order is
 *   checked per (topic, lane);
 * - `seq` numbers the messages of one topic on one lane (1, 2, 3, ...): a subscriber checks it
 *   sees them in order, once each;
 * - `sentUs` is `performance.now()` in microseconds when the publisher wrote the request. The
 *   publisher and every subscriber live in the same process, so they share this clock and the
 *   difference is the publish→receive latency.
 *
 * Some peers serialise the body as JSON (better-sse's default), so a leading `"` is tolerated.
 */

/** Body size in bytes, as in the measurements (100-byte messages). */
export const PAYLOAD_SIZE = 100;

const PADDING = 'x'.repeat(PAYLOAD_SIZE);

/** Builds one message body of exactly `size` bytes (longer when the header does not fit). */
export function encodePayload(step: number, lane: number, seq: number, sentUs: number, size = PAYLOAD_SIZE): string {
  const head = `M${step},${lane},${seq},${sentUs},`;
  return head.length >= size ? head : head + PADDING.slice(0, size - head.length);
}

/** A decoded message header. */
export interface PayloadHeader {
  step: number;
  lane: number;
  seq: number;
  sentUs: number;
}

const M = 0x4d;
const QUOTE = 0x22;
const COMMA = 0x2c;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Decodes the header from the first bytes of an event's data into `out`; false when the event
 * is not a benchmark message (a greeting, a notice). Works on bytes: no string per event.
 */
export function decodePayload(bytes: Uint8Array, length: number, out: PayloadHeader): boolean {
  let i = 0;
  if (i < length && bytes[i] === QUOTE) i++;
  if (i >= length || bytes[i] !== M) return false;
  i++;
  // Four decimal fields, each followed by a comma; no array per event.
  let field = 0;
  let value = 0;
  let digits = 0;
  while (field < 4) {
    if (i >= length) return false;
    const b = bytes[i++]!;
    if (b >= ZERO && b <= NINE) {
      value = value * 10 + (b - ZERO);
      digits++;
      continue;
    }
    if (b !== COMMA || digits === 0) return false;
    if (field === 0) out.step = value;
    else if (field === 1) out.lane = value;
    else if (field === 2) out.seq = value;
    else out.sentUs = value;
    field++;
    value = 0;
    digits = 0;
  }
  return true;
}
