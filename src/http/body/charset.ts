import { isAscii, isUtf8 } from 'node:buffer';
import { RelayError } from '../../hub/errors.js';

/** The character encodings a text body may declare (`; charset=`), by their usual labels. */
export const ACCEPTED_CHARSETS = ['utf-8', 'iso-8859-1', 'us-ascii'] as const;

type Charset = (typeof ACCEPTED_CHARSETS)[number];

// Labels as IANA registers them (and as clients send them), lower-cased.
const CHARSET_LABELS: Readonly<Record<string, Charset>> = {
  'utf-8': 'utf-8',
  utf8: 'utf-8',
  'iso-8859-1': 'iso-8859-1',
  'iso_8859-1': 'iso-8859-1',
  latin1: 'iso-8859-1',
  l1: 'iso-8859-1',
  'us-ascii': 'us-ascii',
  ascii: 'us-ascii',
};


/** The `charset` parameter of a Content-Type header, lower-cased and unquoted, if any. */
export function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(contentType ?? '');
  return match ? match[2]!.toLowerCase() : undefined;
}

/**
 * The accepted charset a label names; 415 `HUB_ERR_UNSUPPORTED_MEDIA_TYPE` listing the
 * accepted ones otherwise. No label means UTF-8.
 */
export function resolveCharset(label: string | undefined): Charset {
  if (label === undefined || label === '') return 'utf-8';
  const charset = CHARSET_LABELS[label];
  if (charset === undefined) {
    throw new RelayError('HUB_ERR_UNSUPPORTED_MEDIA_TYPE', `Unsupported charset "${label.slice(0, 40)}": accepted are ${ACCEPTED_CHARSETS.join(', ')}`);
  }
  return charset;
}

/**
 * Decodes bytes in an accepted charset. Bytes that are not valid in it (invalid UTF-8, a byte
 * above 0x7F in US-ASCII) are refused with 400 `HUB_ERR_TEXT_ENCODING_INVALID`: a message is
 * stored as sent or not at all.
 */
export function decodeText(bytes: Uint8Array, charset: Charset, what = 'The body'): string {
  if (charset === 'iso-8859-1') return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (charset === 'us-ascii') {
    for (const byte of bytes) {
      if (byte > 0x7f) throw new RelayError('HUB_ERR_TEXT_ENCODING_INVALID', `${what} is not valid US-ASCII (a byte above 0x7F)`);
    }
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  }
  // Node's simdutf checks (`isAscii`, `isUtf8`) then a plain decode give what the strict
  // decoder gives, without its ICU converter: an ASCII body (most are) becomes a one-byte string
  // straight from the bytes. The strict decoder was ~4% of a non-pipelined publish's
  // instructions (bench/callgrind-publish).
  if (isAscii(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!isUtf8(bytes)) throw new RelayError('HUB_ERR_TEXT_ENCODING_INVALID', `${what} is not valid UTF-8`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
