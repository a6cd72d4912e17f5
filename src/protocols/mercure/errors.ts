import type { FastifyReply, FastifyRequest } from 'fastify';
import { challengeOf } from '../../auth/bearer.js';
import { toRelayError } from '../../http/error-handler.js';

/**
 * How the Mercure endpoint answers errors: a plain-text body, as the reference hub does (its
 * clients read the status, not the body), with the same status as everywhere else and, for
 * authorization failures, the RFC 6750 `WWW-Authenticate` challenge.
 */
export function mercureErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const relayError = toRelayError(error);
  if (relayError.status >= 500) request.log.error({ err: error }, 'request failed');
  const challenge = challengeOf(relayError);
  if (challenge) void reply.header('WWW-Authenticate', challenge);
  return reply.code(relayError.status).type('text/plain; charset=utf-8').send(`${relayError.message}\n`);
}
