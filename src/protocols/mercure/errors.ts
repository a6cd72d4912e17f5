import type { FastifyReply, FastifyRequest } from 'fastify';
import { challengeOf } from '../../auth/bearer.js';
import { logRequestError, toRelayError } from '../../http/error-handler.js';
import { noteErrorCode } from '../../metrics/http-metrics.js';

/** The error handler of the Mercure routes. */
export type MercureErrorHandler = (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply;

/**
 * How the Mercure endpoint answers errors: a plain-text body, as the reference hub does (its
 * clients read the status, not the body), with the same status as everywhere else and, for
 * authorization failures, the RFC 6750 `WWW-Authenticate` challenge, which also names the
 * protected resource metadata (RFC 9728 `resource_metadata`, from `metadataUrl`) so that a
 * client can find the resource identifier and authorization servers on its own.
 */
export function createMercureErrorHandler(metadataUrl: (request: FastifyRequest) => string): MercureErrorHandler {
  return (error, request, reply) => {
    const relayError = toRelayError(error);
    logRequestError(request, relayError, error);
    noteErrorCode(reply, relayError.code);
    const challenge = challengeOf(relayError);
    // The URL is ours, never a quote or a backslash in it (an origin and a fixed path).
    if (challenge) void reply.header('WWW-Authenticate', `${challenge}, resource_metadata="${metadataUrl(request).replace(/["\\]/g, '')}"`);
    return reply.code(relayError.status).type('text/plain; charset=utf-8').send(`${relayError.message}\n`);
  };
}
