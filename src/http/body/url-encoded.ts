import { RelayError } from '../../hub/errors.js';
import { decodeText, type resolveCharset } from './charset.js';

/** Fields of a query string or form body: one string, or several for a repeated name. */
export type UrlEncodedFields = Record<string, string | string[]>;

const PERCENT_ESCAPE = /%([0-9a-fA-F]{2})/y;

/**
 * Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space, `%XX` a byte,
 * and the bytes are text in `charset`. A `%` not followed by two hex digits, or bytes that are
 * not valid in the charset, are refused with 400 (as the path's are): never stored as typed.
 */
export function decodeUrlComponent(component: string, charset: ReturnType<typeof resolveCharset>): string {
  if (!component.includes('%') && !component.includes('+')) return component;
  const bytes: number[] = [];
  for (let i = 0; i < component.length; i++) {
    const char = component.charCodeAt(i);
    if (char === 0x25 /* % */) {
      PERCENT_ESCAPE.lastIndex = i;
      const escape = PERCENT_ESCAPE.exec(component);
      if (!escape) throw new RelayError('HUB_ERR_BAD_REQUEST', 'Malformed percent-encoding (a "%" must be followed by two hex digits)');
      bytes.push(parseInt(escape[1]!, 16));
      i += 2;
    } else if (char === 0x2b /* + */) {
      bytes.push(0x20);
    } else if (char < 0x80) {
      bytes.push(char);
    } else {
      // A raw non-ASCII character (a client that did not encode it): keep it as UTF-8 bytes.
      const codePoint = component.codePointAt(i)!;
      bytes.push(...Buffer.from(String.fromCodePoint(codePoint), 'utf8'));
      if (codePoint > 0xffff) i++;
    }
  }
  return decodeText(Uint8Array.from(bytes), charset, 'A percent-decoded value');
}

/** Parses a query string or form body strictly (see decodeUrlComponent). */
export function parseUrlEncoded(text: string, charset: ReturnType<typeof resolveCharset>): UrlEncodedFields {
  // No prototype: a field named `__proto__` or `constructor` is just a field.
  const fields: UrlEncodedFields = Object.create(null) as UrlEncodedFields;
  if (text.length === 0) return fields;
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue;
    const equals = pair.indexOf('=');
    const name = decodeUrlComponent(equals === -1 ? pair : pair.slice(0, equals), charset);
    const value = equals === -1 ? '' : decodeUrlComponent(pair.slice(equals + 1), charset);
    const previous = fields[name];
    if (previous === undefined) fields[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else fields[name] = [previous, value];
  }
  return fields;
}
