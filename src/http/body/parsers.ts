import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RelayError } from '../../hub/errors.js';
import { charsetOf, decodeText, resolveCharset } from './charset.js';
import { parseUrlEncoded, type UrlEncodedFields } from './url-encoded.js';

/** The request body types the hub parses; any other gets 415 naming these. */
export const ACCEPTED_MEDIA_TYPES = ['text/plain', 'application/json', 'application/x-www-form-urlencoded'] as const;

const PROTOTYPE_KEYS = 'JSON objects with a "__proto__" or "constructor.prototype" key are refused';

function contentTypeOf(request: FastifyRequest): string | undefined {
  return request.headers['content-type'];
}

/** A JSON body: UTF-8 only (RFC 8259), strictly decoded; prototype-poisoning keys refused. */
function parseJson(bytes: Buffer, contentType: string | undefined): unknown {
  const label = charsetOf(contentType);
  if (label !== undefined && resolveCharset(label) !== 'utf-8') {
    throw new RelayError('HUB_ERR_UNSUPPORTED_MEDIA_TYPE', 'JSON bodies must be UTF-8 (RFC 8259)');
  }
  const text = decodeText(bytes, 'utf-8');
  let poisoned = false;
  let value: unknown;
  try {
    value = JSON.parse(text, (key, field: unknown) => {
      // JSON.parse makes `__proto__` an own property (harmless here), but code that later
      // merges the object would not be so careful: refuse it at the door, and say why.
      if (key === '__proto__' || (key === 'constructor' && typeof field === 'object' && field !== null && Object.hasOwn(field, 'prototype'))) poisoned = true;
      return field;
    });
  } catch {
    throw new RelayError('HUB_ERR_BAD_REQUEST', 'The body is not valid JSON');
  }
  if (poisoned) throw new RelayError('HUB_ERR_BAD_REQUEST', PROTOTYPE_KEYS);
  return value;
}

/**
 * Body and query parsing with one rule for every way text arrives: a declared charset is
 * decoded (utf-8, iso-8859-1, us-ascii; others get 415), bytes invalid in it get 400, and
 * query strings and form bodies are percent-decoded strictly, like the path (400 on a bad
 * escape). Nothing is stored with U+FFFD or as the literal `%E9` the client typed.
 * Replaces Fastify's text and JSON parsers and @fastify/formbody.
 */
export function installBodyParsers(app: FastifyInstance, limits: { readonly bodyLimit: number }): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  for (const [type, parse] of Object.entries(BODY_PARSERS)) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: limits.bodyLimit }, (request, body, done) => {
      try {
        done(null, parse(body as Buffer, contentTypeOf(request)));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
  }
  // Fastify's query parser keeps `caf%E9` as typed when it does not decode; ours refuses it.
  // A callback hook: it runs on every request, and an async one costs a promise each time.
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      const query = queryOf(request.url);
      if (query !== undefined) request.query = query;
    } catch (error) {
      return done(error as Error);
    }
    done();
  });
}

/** A body parser: the raw bytes and the request's `Content-Type` header in, the value out. */
export type BodyParser = (body: Buffer, contentType: string | undefined) => unknown;

/**
 * The parser of each accepted media type (lowercase, no parameters): the one table both the
 * Fastify routes and the lean publish path (`../lean-publish.ts`) parse with.
 */
// Without a prototype: the table is indexed by the client's Content-Type, and names a plain
// object inherits (`toString`, `__proto__`, …) must find nothing, as any unknown type does.
export const BODY_PARSERS: Readonly<Record<(typeof ACCEPTED_MEDIA_TYPES)[number], BodyParser>> = Object.freeze(
  Object.assign(Object.create(null) as Record<(typeof ACCEPTED_MEDIA_TYPES)[number], BodyParser>, {
    'text/plain': (body: Buffer, contentType: string | undefined) => decodeText(body, resolveCharset(charsetOf(contentType))),
    'application/json': parseJson,
    // The body itself is ASCII (escapes carry the rest); latin1 keeps any stray byte as it is.
    'application/x-www-form-urlencoded': (body: Buffer, contentType: string | undefined) => parseUrlEncoded(body.toString('latin1'), resolveCharset(charsetOf(contentType))),
  }),
);

/**
 * The query of a request URL, strictly percent-decoded (400 on a bad escape); undefined when
 * the URL has none.
 */
export function queryOf(url: string): UrlEncodedFields | undefined {
  const mark = url.indexOf('?');
  return mark === -1 ? undefined : parseUrlEncoded(url.slice(mark + 1), 'utf-8');
}
