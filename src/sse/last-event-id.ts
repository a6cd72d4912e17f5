/**
 * The `Last-Event-ID` header in both directions: read from a reconnecting client, echoed in a
 * response header (Mercure's `Mercure-Last-Event-ID`).
 *
 * Ids are Unicode text (Mercure publishers choose them). Browsers send the header as UTF-8
 * bytes, which Node hands over as Latin-1 (one character per byte): a header is read as UTF-8
 * when its bytes are valid UTF-8, so a custom id such as `日本-1` resumes exactly by header as
 * by query parameter. Writing is the other way round: Node refuses a header value with a
 * character above U+00FF (which, after the stream was hijacked, left the client waiting for
 * an answer that never came) and may send U+0080–U+00FF as one byte or as UTF-8 depending on
 * how the head is flushed. So an id with any non-ASCII character is echoed percent-encoded
 * (`encodeURIComponent`), which is ASCII on every path and decodes back to the id.
 */

// ignoreBOM: a leading U+FEFF is part of the id, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\u0000-\u007f]/;

/** A request header value, read as the UTF-8 text its bytes carry when they are valid UTF-8. */
export function headerText(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !NON_ASCII.test(text)) return text;
  try {
    return utf8.decode(Buffer.from(text, 'latin1'));
  } catch {
    return text;
  }
}

/** An id as a response header value: unchanged when ASCII, else percent-encoded UTF-8. */
export function asHeaderValue(text: string): string {
  return NON_ASCII.test(text) ? encodeURIComponent(text) : text;
}
