/**
 * fast-check generators for hostile input, and the oracles that say what the hub must do with
 * it. Shared by the fuzz suites; nothing here runs on import.
 */
import fc from 'fast-check';

/**
 * The fixed seed of every fuzz property (override with FUZZ_SEED=<n> to explore; a failure
 * prints the seed and path that replay it).
 */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 0x5e1a7);
/** Multiplies every property's number of runs (FUZZ_RUNS_FACTOR=10 for a long local run). */
export const RUNS_FACTOR = Number(process.env.FUZZ_RUNS_FACTOR ?? 1);

/** Replays one failure: FUZZ_PATH=<path> with the FUZZ_SEED it was printed with. */
const FUZZ_PATH = process.env.FUZZ_PATH;

/**
 * Runs a property with the fixed seed and a bounded number of runs (times RUNS_FACTOR). On
 * failure, throws an error that says how to replay it (seed and path), what failed, and the
 * shrunk counterexample with long strings abbreviated.
 */
export async function fuzz<T>(name: string, property: fc.IAsyncPropertyWithHooks<T> | fc.IPropertyWithHooks<T>, numRuns: number): Promise<void> {
  const parameters: fc.Parameters<[T]> = {
    seed: FUZZ_SEED,
    numRuns: Math.max(1, Math.round(numRuns * RUNS_FACTOR)),
    ...(FUZZ_PATH ? { path: FUZZ_PATH } : {}),
  };
  const details = await fc.check(property as fc.IAsyncPropertyWithHooks<[T]>, parameters);
  if (!details.failed) return;
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    [
      `fuzz property "${name}" failed after ${details.numRuns} runs (${details.numShrinks} shrinks)`,
      `replay: FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath} node --test <this file>`,
      `failure: ${cause}`,
      `counterexample: ${abbreviate(details.counterexample)}`,
    ].join('\n'),
  );
}

/** JSON-ish rendering of a counterexample with long strings and buffers cut short. */
export function abbreviate(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'string' && v.length > 120) return `${v.slice(0, 100)}…(${v.length} chars)`;
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
      const text = Buffer.from((v as { data: number[] }).data).toString('latin1');
      return `<bytes ${JSON.stringify(text.length > 120 ? `${text.slice(0, 100)}…(${text.length} bytes)` : text)}>`;
    }
    return v;
  }) ?? String(value);
}

/**
 * One "character" of hostile text: mostly printable ASCII, with the characters that break
 * things well represented: line breaks of every kind, NUL and other controls, DEL and C1
 * controls, the BOM, a lone surrogate, astral emoji, Latin-1 and CJK, and the characters
 * that mean something in URLs, forms, headers, JSON and SSE.
 */
export const hostileChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.constantFrom('\n', '\r', '\r\n', '\n\r', '\r\r\n') },
  { weight: 2, arbitrary: fc.constantFrom('\u0000', '\t', '\u000b', '\u000c', '\u001b', '\u007f', '\u0085', '\u009f', '\u2028', '\u2029') },
  { weight: 2, arbitrary: fc.constantFrom('\ufeff', '\ud800', '\udfff', '\u00a0', '\u3000', '\u200b', '\u202e', '\u2067', '\u200f', '\u200d') },
  { weight: 3, arbitrary: fc.constantFrom('é', 'ß', 'ÿ', '\u0100', '日', '本', '😀', '👩‍👩‍👧', '𝄞', '\u0301') },
  { weight: 4, arbitrary: fc.constantFrom('%', '%00', '%0A', '%0D%0A', '%2F', '%2e%2e', '%zz', '%E0%A4', '+', '&', '=', '?', '#', '/', '\\', '..', ':', ';', ',', '"', "'", '<', '>', '{', '}', '*', ' ') },
  { weight: 2, arbitrary: fc.constantFrom('data: x', 'id: 1', 'event: evil', 'retry: 1', ': c', '\nid: 666\n', '\r\nX-Injected: 1', '\n\ndata: forged\n\n') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** Hostile text of up to `maxLength` units, sometimes padded to a very long string. */
export function hostileText(maxLength = 40, longUpTo = 0): fc.Arbitrary<string> {
  const short = fc.string({ unit: hostileChar, maxLength });
  if (longUpTo <= 0) return short;
  return fc.oneof(
    { weight: 6, arbitrary: short },
    {
      weight: 1,
      arbitrary: fc.tuple(short, fc.integer({ min: 200, max: longUpTo }), fc.constantFrom('x', 'é', '😀', '\n', 'a\r\nb')).map(([text, n, pad]) => text + pad.repeat(Math.ceil(n / pad.length))),
    },
  );
}

/** Printable text with the usual suspects of URLs and Unicode but no control character. */
export const tameChar: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }).filter((c) => c >= ' ' && c !== '\u007f') },
  { weight: 3, arbitrary: fc.constantFrom('é', '日', '😀', '👩‍👩‍👧', '%', '%2F', '+', '&', '/', '?', '#', ' ', '\u3000', '\u00a0', '\ufeff', '{id}', '*', '..') },
);

/** Mostly tame text (so that most inputs are valid and delivery gets tested), sometimes hostile. */
export function mixedText(maxLength = 30, longUpTo = 0): fc.Arbitrary<string> {
  return fc.oneof({ weight: 3, arbitrary: fc.string({ unit: tameChar, maxLength }) }, { weight: 1, arbitrary: hostileText(maxLength, longUpTo) });
}

/** Percent-encodes every byte of the UTF-8 form except unreserved characters (never throws, unlike encodeURIComponent on a lone surrogate). */
export function percentEncode(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** What a string becomes after a trip through UTF-8 bytes: lone surrogates turn into U+FFFD. */
export function viaUtf8(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

/** How a path segment is written into the request line. */
export const segmentEncodings = ['percent', 'raw', 'double', 'partial'] as const;
export type SegmentEncoding = (typeof segmentEncodings)[number];

/** Writes `text` as a path segment: percent-encoded, raw bytes, double-encoded, or half-encoded. */
export function encodeSegment(text: string, encoding: SegmentEncoding): string {
  switch (encoding) {
    case 'percent':
      return percentEncode(text);
    case 'raw':
      return text;
    case 'double':
      return percentEncode(percentEncode(text));
    case 'partial':
      return text.replace(/[ /?#]/g, (c) => percentEncode(c));
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/;
/** Bidirectional formatting characters (ALM, LRM, RLM, LRE–RLO, LRI–PDI): refused in every name. */
export const BIDI_FORMATTING = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** The documented rule for ids (topics): 1–256 UTF-16 units, no control or bidirectional formatting character, valid Unicode. */
export function isValidTopic(topic: string): boolean {
  return topic.length >= 1 && topic.length <= 256 && !CONTROL.test(topic) && !BIDI_FORMATTING.test(topic) && isWellFormed(topic);
}

/** The documented rule for event types: 1–256 units, no CR, LF, NUL or bidirectional formatting character, valid Unicode. */
export function isValidEventType(type: string): boolean {
  return type.length >= 1 && type.length <= 256 && !LINE_BREAK_OR_NUL.test(type) && !BIDI_FORMATTING.test(type) && isWellFormed(type);
}

/** False for strings with a lone surrogate (no UTF-8 form). */
export function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** What a subscriber's SSE parser must see for `data`: every CRLF, CR and LF becomes LF. */
export function normaliseLineBreaks(data: string): string {
  return data.replace(/\r\n|\r/g, '\n');
}

/** HTTP strips spaces and tabs around header values, so ids with them cannot come back in a header. */
export function survivesHeader(id: string): boolean {
  return id === id.replace(/^[ \t]+|[ \t]+$/g, '');
}
