import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, isRelayError, RelayError, type ErrorCode } from '../hub/errors.js';

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
  const status = (error as FastifyError | undefined)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = FASTIFY_STATUS_TO_CODE[status] ?? 'HUB_ERR_BAD_REQUEST';
    // Fastify's 4xx messages are safe to show (e.g. "Body cannot be empty when content-type...").
    return new RelayError(code, (error as Error).message || ERROR_CODES[code].message, { cause: error });
  }
  return new RelayError('HUB_ERR_INTERNAL', undefined, { cause: error });
}

/** Sends an error in the project's shape. */
export function sendError(reply: FastifyReply, error: RelayError): FastifyReply {
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  // Clients (the SDK included) back off by this much before retrying a temporary failure.
  if (error.status === 503 && !reply.hasHeader('Retry-After')) void reply.header('Retry-After', '1');
  return reply.code(error.status).type('application/json; charset=utf-8').send(body);
}

/** Routes every error, including Fastify's parser, body-limit and 404 errors, through one place. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const relayError = toRelayError(error);
    if (relayError.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendError(reply, relayError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new RelayError('HUB_ERR_NOT_FOUND', `No route for ${request.method} ${request.url.split("?")[0]!.slice(0, 200)}`)),
  );
}
