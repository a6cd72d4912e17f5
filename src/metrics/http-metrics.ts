import type { FastifyInstance, FastifyReply } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { ERROR_CODES, type ErrorCode } from '../hub/errors.js';
import { LocalHistogram } from './local-histogram.js';

/** Methods that get their own label value; anything else a client sends is `other` (bounded cardinality). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'QUERY']);
/** The route label of requests no route matched (404s, probes of random URLs). */
const UNMATCHED = 'unmatched';

/** The error code of replies that answered with one, set where errors are rendered. */
const errorCodes = new WeakMap<FastifyReply, ErrorCode>();

/**
 * Records the hub error code a reply answers with, for `sse_relay_requests_refused_total`. Called by
 * the error renderers (the JSON one and Mercure's plain-text one): only they know the code.
 */
export function noteErrorCode(reply: FastifyReply, code: ErrorCode): void {
  errorCodes.set(reply, code);
}

type Child = { observe(value: number): void };

/** Where an answered request is counted; the lean publish path (src/http/lean-publish.ts) uses it too. */
export interface HttpRequestObserver {
  /**
   * One answered request: `route` is the route pattern (`/messages/:id`), `code` the hub error
   * code of an error answer.
   */
  observe(route: string, method: string, status: number, seconds: number, code: ErrorCode | undefined): void;
  /**
   * One error answered on the socket before a request existed (malformed HTTP, 408, 431,
   * `CONNECT`): counted by its code only, as it has no route, method or duration to time.
   */
  refusedBeforeRequest(code: ErrorCode): void;
}

/**
 * HTTP metrics, from one `onResponse` hook: request durations by route pattern (never the raw
 * URL, so that the series stay bounded by the route table), method and status, and error
 * answers by the hub's error code (src/hub/errors.ts), every code present at zero from start.
 *
 * Event streams are not observed: they are hijacked (their lifetime is not a request duration),
 * and Fastify runs no `onResponse` for them. Errors answered on the socket before a request
 * exists (malformed HTTP, 408, 431) are counted by their code (`refusedBeforeRequest`) but not
 * timed: they have no route or method, and an error rate watched on the refusals must see them.
 */
export function observeHttpRequests(app: FastifyInstance, registry: Registry): HttpRequestObserver {
  const registers = [registry];
  const durations = new LocalHistogram({
    name: 'sse_relay_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (event streams excluded), by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const errors = new Counter({
    name: 'sse_relay_requests_refused_total',
    help: 'HTTP requests answered with an error, by the hub error code (src/hub/errors.ts): 4xx refusals and 5xx failures alike.',
    labelNames: ['code'],
    registers,
  });
  for (const code of Object.keys(ERROR_CODES)) errors.inc({ code }, 0);

  // route → method → status → child: one lookup chain per request, and the labels object and
  // its hash key are built once per combination instead of on every request.
  const children = new Map<string, Map<string, Map<number, Child>>>();
  const childFor = (route: string, method: string, status: number): Child => {
    let byMethod = children.get(route);
    if (byMethod === undefined) children.set(route, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (child === undefined) byStatus.set(status, (child = durations.labels(route, method, String(status))));
    return child;
  };

  const observer: HttpRequestObserver = {
    observe(route, method, status, seconds, code) {
      childFor(route, METHODS.has(method) ? method : 'other', status).observe(seconds);
      if (status >= 400 && code !== undefined) errors.inc({ code });
    },
    refusedBeforeRequest(code) {
      errors.inc({ code });
    },
  };
  // A callback hook: an async one would cost a promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    observer.observe(request.routeOptions.url ?? UNMATCHED, request.method, status, reply.elapsedTime / 1000, status >= 400 ? errorCodes.get(reply) : undefined);
    done();
  });
  return observer;
}
