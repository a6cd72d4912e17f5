import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { sendError } from './error-handler.js';

/** Limits on open connections. */
export interface ConnectionLimitOptions {
  /** Open connections in all. */
  readonly maxConnections: number;
  /** Open connections per socket address (proxies listed in `trustedProxies` are exempt). */
  readonly maxConnectionsPerIp: number;
  /** Addresses of trusted proxies: their connections carry many clients, so no per-address cap. */
  readonly isTrustedProxy: (address: string) => boolean;
  /** Seconds a refused client is told to wait (`Retry-After`). */
  readonly retryAfterSeconds: number;
  /**
   * Milliseconds a new connection may stay silent before its first request arrives. Node's
   * `headersTimeout` only starts with the first byte, so without this a client that connects
   * and sends nothing holds its slot (and a file descriptor) forever. 0 disables it.
   */
  readonly firstRequestTimeoutMs: number;
}

/**
 * Caps open connections in all and per client address. A connection over a cap is still read
 * (so the client gets an answer instead of a reset), but its first request is answered 429 with
 * `Retry-After` and `Connection: close`, and the connection then closes. Counting happens on
 * `connection`/`close`, so it costs nothing per request for clients under the caps.
 */
export function limitConnections(app: FastifyInstance, server: Server, options: ConnectionLimitOptions): { open(): number } {
  let open = 0;
  const perAddress = new Map<string, number>();
  const overLimit = new WeakSet<Socket>();
  const awaitingFirstRequest = new WeakSet<Socket>();

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const exempt = options.isTrustedProxy(address);
    open++;
    const forAddress = (perAddress.get(address) ?? 0) + 1;
    perAddress.set(address, forAddress);
    if (open > options.maxConnections || (!exempt && forAddress > options.maxConnectionsPerIp)) overLimit.add(socket);
    // An idle timer until the first request (bytes reset it; Node's headersTimeout then bounds
    // a slow header). On expiry Node's own 'timeout' handler destroys the idle socket.
    if (options.firstRequestTimeoutMs > 0) {
      socket.setTimeout(options.firstRequestTimeoutMs);
      awaitingFirstRequest.add(socket);
    }
    socket.once('close', () => {
      open--;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });

  server.on('request', (request: IncomingMessage) => {
    const socket = request.socket;
    if (awaitingFirstRequest.delete(socket)) socket.setTimeout(0);
  });

  app.addHook('onRequest', async (request, reply) => {
    if (!overLimit.has(request.raw.socket)) return;
    void reply.header('Retry-After', String(options.retryAfterSeconds)).header('Connection', 'close');
    return sendError(reply, new RelayError('HUB_ERR_TOO_MANY_CONNECTIONS'));
  });

  return { open: () => open };
}
