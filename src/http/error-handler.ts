import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AllowedMethods } from './allowed-methods.js';
import { ACCEPTED_MEDIA_TYPES } from './body/parsers.js';
import { ERROR_CODES, isRelayError, RelayError, type ErrorCode } from '../hub/errors.js';
import { noteErrorCode } from '../metrics/http-metrics.js';
import { LogFloodGuard } from './log-flood-guard.js';

/** The JSON shape of every error answer: `{"error": {"code": "...", "message": "..."}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Fastify's own errors, by status, mapped onto ours so every error has the project's shape. */
const FASTIFY_STATUS_TO_CODE: Partial<Record<number, ErrorCode>> = {
  400: 'HUB_ERR_BAD_REQUEST',
  404: 'HUB_ERR_NOT_FOUND',
  405: 'HUB_ERR_METHOD_NOT_ALLOWED',
  413: 'HUB_ERR_BODY_TOO_LARGE',
  415: 'HUB_ERR_UNSUPPORTED_MEDIA_TYPE',
  503: 'HUB_ERR_SHUTTING_DOWN',
};

/** Converts anything thrown in a handler into a RelayError (unknown errors become 500). */
export function toRelayError(error: unknown): RelayError {
  if (isRelayError(error)) return error;
  if ((error as FastifyError | undefined)?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new RelayError('HUB_ERR_UNSUPPORTED_MEDIA_TYPE', `Unsupported media type: send ${ACCEPTED_MEDIA_TYPES.join(', ')}`, { cause: error });
  }
  const status = (error as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = FASTIFY_STATUS_TO_CODE[status] ?? 'HUB_ERR_BAD_REQUEST';
    // Fastify's 4xx messages are safe to show (e.g. "Body cannot be empty when content-type...").
    return new RelayError(code, (error as Error).message || ERROR_CODES[code].message, { cause: error });
  }
  return new RelayError('HUB_ERR_INTERNAL', undefined, { cause: error });
}

/** The body of an error answer. */
export function errorBody(error: RelayError): ErrorBody {
  return { error: { code: error.code, message: error.message } };
}

/** `Retry-After` of a 503 that does not set its own: how long clients (the SDK too) back off. */
export const DEFAULT_RETRY_AFTER_SECONDS = '1';

/** Sends an error in the project's shape. */
export function sendError(reply: FastifyReply, error: RelayError): FastifyReply {
  noteErrorCode(reply, error.code);
  if (error.status === 503 && !reply.hasHeader('Retry-After')) void reply.header('Retry-After', DEFAULT_RETRY_AFTER_SECONDS);
  return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(error));
}

/**
 * Fastify's router errors, answered before any route or hook runs (`frameworkErrors`): a URL
 * whose percent-encoding is malformed, a path parameter longer than `maxParamLength`. Their
 * default answers have Fastify's shape and quote the whole URL back.
 */
export function answerFrameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, new RelayError('HUB_ERR_TOPIC_INVALID', 'The id is too long'));
  if (error.code === 'FST_ERR_BAD_URL') return sendError(reply, new RelayError('HUB_ERR_BAD_REQUEST', 'The URL is not valid (malformed percent-encoding)'));
  return sendError(reply, toRelayError(error));
}

/**
 * What Node's HTTP parser refuses before Fastify sees a request (`clientError`): malformed
 * HTTP, headers over the size limit (431), a request not received within `--request-timeout`
 * (408). Answered in the project's shape (Fastify's default has its own), then the connection
 * is closed, as Node does. Returns the error answered, if one was written (for the metrics).
 */
export function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): RelayError | undefined {
  if (error.code === 'ECONNRESET' || socket.destroyed) return undefined;
  const relayError =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new RelayError('HUB_ERR_HEADERS_TOO_LARGE')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RelayError('HUB_ERR_REQUEST_TIMEOUT')
        : new RelayError('HUB_ERR_BAD_REQUEST', 'The request is not valid HTTP/1.1');
  this.log.debug({ err: error }, 'client error');
  return answerOnSocket(socket, relayError) ? relayError : undefined;
}

/**
 * Writes an error answer straight to a socket that no request object owns (parser errors,
 * `CONNECT`), then closes the connection. False when the socket could no longer be written.
 */
export function answerOnSocket(socket: Duplex, error: RelayError): boolean {
  const writable = socket.writable;
  if (writable) {
    const body = JSON.stringify(errorBody(error));
    socket.write(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
  return writable;
}

/** One per process: see LogFloodGuard. */
const floodGuard = new LogFloodGuard();

/**
 * Logs what a failed request tells an operator: a 5xx as an error with its cause; a refused
 * access token at info level with the reason (the message never quotes the token, and the
 * request's headers are not logged), so "why is my token refused" has an answer on both sides.
 * A flood of them is capped (LogFloodGuard).
 */
export function logRequestError(request: FastifyRequest, relayError: RelayError, error: unknown): void {
  logRefusal(request.log, relayError, error, request.method, request.url);
}

/** {@link logRequestError} for a request Fastify does not hold (the lean publish path). */
export function logRefusal(log: FastifyBaseLogger, relayError: RelayError, error: unknown, method: string, url: string): void {
  if (relayError.status >= 500) floodGuard.log(log, 'error', { err: error }, 'request failed');
  else if (relayError.code === 'HUB_ERR_TOKEN_INVALID') {
    floodGuard.log(log, 'info', { code: relayError.code, method, path: url.split('?')[0]!.slice(0, 200), reason: relayError.message }, 'access token refused');
  }
}

/** Routes every error, including Fastify's parser, body-limit and 404 errors, through one place. */
export function installErrorHandling(app: FastifyInstance, allowedMethods: AllowedMethods = () => []): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const relayError = toRelayError(error);
    logRequestError(request, relayError, error);
    return sendError(reply, relayError);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = allowedMethods(path);
    if (allowed.length > 0) {
      void reply.header('Allow', allowed.join(', '));
      return sendError(reply, new RelayError('HUB_ERR_METHOD_NOT_ALLOWED', `${request.method.slice(0, 20)} is not allowed here; allowed: ${allowed.join(', ')}`));
    }
    return sendError(reply, new RelayError('HUB_ERR_NOT_FOUND', `No route for ${request.method} ${path.slice(0, 200)}`));
  });
}
