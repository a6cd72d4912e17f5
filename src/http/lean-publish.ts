import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeader, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { challengeOf } from '../auth/bearer.js';
import type { ServeOptions } from '../config/options.js';
import type { ErrorCode, RelayError } from '../hub/errors.js';
import type { HttpRequestObserver } from '../metrics/http-metrics.js';
import { discoveryLink } from '../protocols/mercure/discovery.js';
import { publishToId, type PublishReply, type PublishRequest } from '../protocols/messages/publish.js';
import { BODY_PARSERS, queryOf, type BodyParser } from './body/parsers.js';
import type { AdapterContext } from './context.js';
import { corsPolicy } from './cors.js';
import { DEFAULT_RETRY_AFTER_SECONDS, errorBody, logRefusal, toRelayError } from './error-handler.js';

/** What the lean path shares with the Fastify routes. */
export interface LeanPublishOptions {
  readonly context: Pick<AdapterContext, 'hub' | 'authorizer'>;
  readonly options: Pick<ServeOptions, 'maxBodySize' | 'corsOrigins' | 'publicUrl'>;
  /** True once shutdown began: Fastify then answers 503 in its one place. */
  readonly isShuttingDown: () => boolean;
  /** True for a connection over the connection caps: Fastify then answers 429 in its one place. */
  readonly isOverLimit: (socket: Socket) => boolean;
  /** Where 5xx answers are logged (the Fastify instance's logger). */
  readonly log: FastifyBaseLogger;
  /**
   * Told of every answer the lean path sends, success or error, as Fastify's `onResponse` hook
   * tells it of the others (Fastify's own hooks never see these requests).
   */
  readonly observer?: Pick<HttpRequestObserver, 'observe'> | undefined;
}

/** Takes a request when it is a plain publish; false leaves it to Fastify untouched. */
export type LeanRoute = (request: IncomingMessage, response: ServerResponse) => boolean;

/**
 * Sends one answer of the route: the status, its headers as name/value pairs (lowercase names,
 * `content-type` and `content-length` last; a `connection: close` pair means the connection
 * closes after it) and the JSON body.
 */
export type PublishAnswerWriter = (status: number, headers: string[], body: string) => void;

/** A publish the lean paths serve: its decoded id and the parser of its body (none: no body). */
export interface LeanPublishPlan {
  readonly topic: string;
  readonly parse: BodyParser | undefined;
}

/**
 * The rules of the lean paths, apart from how bytes come and go: which requests they take and
 * how a taken request is answered. Shared by the `node:http` path below and the raw socket
 * path of `raw-publish.ts`, so the two cannot drift apart.
 */
export interface LeanPublishRules {
  /** The plan for a request the lean paths take; undefined leaves it to Fastify's route. */
  plan(method: string, url: string, headers: IncomingHttpHeaders, socket: Socket): LeanPublishPlan | undefined;
  /** Runs a planned publish with its whole body and answers it through `write` (once). */
  serve(url: string, headers: IncomingHttpHeaders, plan: LeanPublishPlan, body: Buffer | undefined, startedAt: number, write: PublishAnswerWriter): void;
  /** True when the observer wants timings (read `performance.now()` at the request's start). */
  readonly timed: boolean;
}

const PREFIX = '/messages/';
/** The route pattern, as Fastify's route table names it for the metrics' `route` label. */
const ROUTE = '/messages/:id';
/** The router's `maxParamLength` (see server.ts): a longer id is Fastify's to refuse. */
const MAX_RAW_ID_LENGTH = 4096;
const NO_QUERY: PublishRequest['Querystring'] = Object.freeze({});

/**
 * The rules of `POST /messages/:id` on the lean paths, beside Fastify, for the common case: a
 * publish with an accepted body type and a Content-Length within the limit (or no body), and no
 * cookie. Everything else (a cookie, so the CSRF check; chunked or over-long bodies; other media
 * types; a connection over the caps; shutdown; an id that needs the router's own errors) is left
 * to Fastify's route, which answers it as before. Both paths run the same rules: the same
 * `publishToId` (authentication, id checks, authorization, message extraction), the same body
 * parsers and strict query decoding, the same CORS policy, the same `Link` header, the same
 * error shape and `WWW-Authenticate` challenge (a test sends each request both ways and
 * compares the answers).
 *
 * Hand-written because Fastify's per-request machinery (request and reply objects, six or seven
 * onRequest hooks, the content-type parser chain, an async onSend, the serializer, the reply's
 * promise chain) was the largest avoidable share of a non-pipelined publish: in the CPU profile
 * of the hub under the bench's `direct-1k-serial-4` its reply pipeline alone was 15% inclusive.
 * Measured with that step (`--quick`), memory store, Fastify route and this path alternating
 * three times each on the shared 2-core machine at load average 3.3–4.2: server CPU per
 * publish, one delivery included, 204/183/161 µs before, 196/146/101 µs after (median 183 →
 * 146, 0.80×), publishes/s 4.8k/5.3k/6.1k before, 4.9k/6.5k/9.6k after (median 1.24×); at
 * load average ~12 the medians were 663 → 412 µs. nchan needed 36 µs in the same hour.
 */
export function leanPublishRules(lean: LeanPublishOptions): LeanPublishRules {
  const { context, isShuttingDown, isOverLimit, log, observer } = lean;
  const bodyLimit = lean.options.maxBodySize;
  const cors = corsPolicy(lean.options.corsOrigins);
  const link = discoveryLink(lean.options as ServeOptions);
  const parsers: Readonly<Record<string, BodyParser>> = BODY_PARSERS;

  const answer = (
    write: PublishAnswerWriter,
    origin: string | undefined,
    startedAt: number,
    status: number,
    body: string,
    extra?: string[],
    discovery = true,
    code?: ErrorCode,
  ): void => {
    // Headers every answer of the route carries before its own (CORS, discovery).
    const headers: string[] = [];
    if (cors) for (const [name, value] of cors.headersFor(origin)) headers.push(name, value);
    if (discovery) headers.push('link', link);
    if (extra) headers.push(...extra);
    headers.push('content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)));
    write(status, headers, body);
    observer?.observe(ROUTE, 'POST', status, (performance.now() - startedAt) / 1000, code);
  };

  const answerError = (
    write: PublishAnswerWriter,
    url: string,
    origin: string | undefined,
    startedAt: number,
    error: unknown,
    discovery = true,
    closeConnection = false,
  ): void => {
    const relayError: RelayError = toRelayError(error);
    logRefusal(log, relayError, error, 'POST', url);
    const extra: string[] = [];
    // Fastify's content-type parser closes the connection after a body it could not parse.
    if (closeConnection) extra.push('connection', 'close');
    const challenge = challengeOf(relayError);
    if (challenge) extra.push('www-authenticate', challenge);
    if (relayError.status === 503) extra.push('retry-after', DEFAULT_RETRY_AFTER_SECONDS);
    answer(write, origin, startedAt, relayError.status, JSON.stringify(errorBody(relayError)), extra, discovery, relayError.code);
  };

  const serve: LeanPublishRules['serve'] = (url, headers, plan, body, startedAt, write) => {
    const origin = headers.origin;
    let parsed: unknown;
    let query: PublishRequest['Querystring'];
    // Fastify's order: the query (an onRequest hook), then the body, then the handler. Its
    // query hook runs before the discovery hook, so a refused query carries no `Link` there.
    try {
      query = queryOf(url) ?? NO_QUERY;
    } catch (error) {
      answerError(write, url, origin, startedAt, error, false);
      return;
    }
    try {
      parsed = plan.parse && body ? plan.parse(body, headers['content-type']) : undefined;
    } catch (error) {
      answerError(write, url, origin, startedAt, error, true, true);
      return;
    }
    let reply: PublishReply | Promise<PublishReply>;
    try {
      reply = publishToId(context, headers, plan.topic, parsed, query);
    } catch (error) {
      answerError(write, url, origin, startedAt, error);
      return;
    }
    // Answered in this turn when the publish did not wait (see publishToId).
    if (reply instanceof Promise) {
      reply.then(
        (accepted) => answer(write, origin, startedAt, 200, `{"id":${JSON.stringify(accepted.id)}}`),
        (error: unknown) => answerError(write, url, origin, startedAt, error),
      );
    } else {
      answer(write, origin, startedAt, 200, `{"id":${JSON.stringify(reply.id)}}`);
    }
  };

  const plan: LeanPublishRules['plan'] = (method, url, headers, socket) => {
    if (method !== 'POST') return undefined;
    if (!url.startsWith(PREFIX)) return undefined;
    const end = idEnd(url);
    if (end === PREFIX.length || end - PREFIX.length > MAX_RAW_ID_LENGTH) return undefined;
    const raw = url.slice(PREFIX.length, end);
    if (raw.includes('/')) return undefined;
    if (headers.cookie !== undefined || headers['transfer-encoding'] !== undefined) return undefined;
    if (isShuttingDown() || isOverLimit(socket)) return undefined;

    const contentType = headers['content-type'];
    const length = headers['content-length'];
    let parse: BodyParser | undefined;
    if (contentType === undefined) {
      if (length !== undefined && length !== '0') return undefined;
    } else {
      const semicolon = contentType.indexOf(';');
      parse = parsers[(semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim()];
      // An empty body with a type, an unknown or differently spelt type: Fastify's parser chain decides.
      if (parse === undefined || length === undefined || length === '0' || !(Number(length) <= bodyLimit)) return undefined;
    }
    let topic = raw;
    if (raw.includes('%')) {
      try {
        topic = decodeURIComponent(raw);
      } catch {
        return undefined; // Fastify's router answers a malformed escape.
      }
    }
    return { topic, parse };
  };

  return { plan, serve, timed: observer !== undefined };
}

/**
 * The lean path on `node:http`: {@link leanPublishRules} for the requests node:http parsed
 * (those the raw socket path of `raw-publish.ts` hands over, or all of them without it).
 */
export function createLeanPublish(lean: LeanPublishOptions): LeanRoute {
  return leanRouteOf(leanPublishRules(lean));
}

/** The `node:http` adapter of a set of lean rules. */
export function leanRouteOf(rules: LeanPublishRules): LeanRoute {
  return (request, response) => {
    const url = request.url!;
    const headers = request.headers;
    const plan = rules.plan(request.method!, url, headers, request.socket);
    if (plan === undefined) return false;
    const write: PublishAnswerWriter = (status, answerHeaders, body) => {
      // One writeHead and one end: Node sends the head and the body in one write.
      response.writeHead(status, answerHeaders as OutgoingHttpHeader[]);
      response.end(body);
    };
    const startedAt = rules.timed ? performance.now() : 0;
    if (plan.parse === undefined) {
      rules.serve(url, headers, plan, undefined, startedAt, write);
      return true;
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => rules.serve(url, headers, plan, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), startedAt, write));
    return true;
  };
}

/** Where the id of a `/messages/<id>` URL ends: at the query, a fragment, or the end. */
function idEnd(url: string): number {
  for (let i = PREFIX.length; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) return i;
  }
  return url.length;
}
