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
 *
 * Nothing here is allocated per connection beyond a map entry: idle subscribers are what a hub
 * holds most of, so the close listener is one shared function, and silent connections are found
 * by one sweeping timer rather than a timer per socket.
 */
export function limitConnections(app: FastifyInstance, server: Server, options: ConnectionLimitOptions): ConnectionLimits {
  let open = 0;
  const perAddress = new Map<string, number>();
  const overLimit = new WeakSet<Socket>();
  /** Connections that have not sent a byte yet, with the time they are cut off. */
  const silentUntil = new Map<Socket, number>();
  let sweeper: NodeJS.Timeout | undefined;

  function releaseConnection(this: Socket): void {
    open--;
    silentUntil.delete(this);
    // Read when the connection was counted, so Node has the peer address cached by now.
    const address = this.remoteAddress ?? 'unknown';
    const left = (perAddress.get(address) ?? 1) - 1;
    if (left <= 0) perAddress.delete(address);
    else perAddress.set(address, left);
  }

  /**
   * Cuts off connections that stayed silent past the first-request timeout. Node's
   * `headersTimeout` only starts with the first byte, so without this a client that connects
   * and sends nothing holds its slot (and a file descriptor) forever. A connection that has
   * sent bytes is Node's to time out (headersTimeout, requestTimeout).
   */
  const sweep = (): void => {
    const now = Date.now();
    for (const [socket, deadline] of silentUntil) {
      if (socket.bytesRead > 0 || socket.destroyed) silentUntil.delete(socket);
      else if (now >= deadline) {
        silentUntil.delete(socket);
        socket.destroy();
      }
    }
    if (silentUntil.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };
  // As often as Node checks its own header timeout (see server.ts): every half timeout, between
  // 0.1 and 1 s, so a silent connection is cut within a second of its deadline.
  const sweepEveryMs = Math.max(100, Math.min(1000, Math.floor(options.firstRequestTimeoutMs / 2)));

  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const exempt = options.isTrustedProxy(address);
    open++;
    const forAddress = (perAddress.get(address) ?? 0) + 1;
    perAddress.set(address, forAddress);
    if (open > options.maxConnections || (!exempt && forAddress > options.maxConnectionsPerIp)) overLimit.add(socket);
    if (options.firstRequestTimeoutMs > 0) {
      silentUntil.set(socket, Date.now() + options.firstRequestTimeoutMs);
      if (!sweeper) {
        sweeper = setInterval(sweep, sweepEveryMs);
        sweeper.unref();
      }
    }
    socket.on('close', releaseConnection);
  });
  server.on('close', () => {
    clearInterval(sweeper);
    sweeper = undefined;
  });

  server.on('request', (request: IncomingMessage) => {
    silentUntil.delete(request.socket);
  });

  // A callback hook: it runs on every request, and an async one costs a promise each time.
  app.addHook('onRequest', (request, reply, done) => {
    if (!overLimit.has(request.raw.socket)) return done();
    void reply.header('Retry-After', String(options.retryAfterSeconds)).header('Connection', 'close');
    sendError(reply, new RelayError('HUB_ERR_TOO_MANY_CONNECTIONS'));
  });

  return { open: () => open, isOverLimit: (socket) => overLimit.has(socket) };
}

/** What {@link limitConnections} reports. */
export interface ConnectionLimits {
  /** Connections open now. */
  open(): number;
  /** True for a connection past a cap, whose requests are answered 429 (by the Fastify hook). */
  isOverLimit(socket: Socket): boolean;
}
