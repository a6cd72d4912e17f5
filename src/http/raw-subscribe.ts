import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { EventStreamTransport } from './event-stream.js';
import { RawEventStreamResponse } from './raw-event-stream-response.js';
import { parseRawRequestHead } from './raw-request-head.js';

/**
 * Opens the stream of a plain subscription on `transport`: the rules of the Fastify route
 * (`describeSubscribeStream`, then `EventStreams.openOn`). Rejects, with nothing written, when
 * the route answers an error instead: the request is then node:http's, and the route throws
 * that error (see {@link rawRefusalOf}).
 */
export type RawSubscribeOpener = (topic: string, headers: IncomingHttpHeaders, transport: EventStreamTransport) => Promise<void>;

/** What the raw subscribe path needs from the server it sits in front of. */
export interface RawSubscribeOptions {
  /** The opener, once the hub's routes exist; until then every connection is node:http's. */
  readonly opener: () => RawSubscribeOpener | undefined;
  /** True once shutdown began: requests are then node:http's (Fastify's 503). */
  readonly isShuttingDown: () => boolean;
  /** True for a connection over the connection caps: Fastify then answers 429 in its one place. */
  readonly isOverLimit: (socket: Socket) => boolean;
  /** The headers Fastify's hooks put on the route's answers for `origin` (CORS, discovery). */
  readonly presetHeaders: (origin: string | undefined) => Record<string, string>;
  /** node:http's `keepAliveTimeout` (ms; 0: none): how long a connection may idle after its stream. */
  readonly keepAliveTimeout: number;
}

const SUBSCRIBE_PATH = '/messages/subscribe/';
/**
 * Ids the router hands to the route unchanged (no percent-encoding to decode, no `/`, no
 * query): any other request target is node:http's and Fastify's to route.
 */
const PLAIN_ID = /^[A-Za-z0-9._~-]+$/;

/** Why the raw path refused a request it handed to node:http, by the socket, then the request. */
const refusedOn = new WeakMap<Socket, { error: unknown }>();
const refused = new WeakMap<IncomingMessage, { error: unknown }>();

/**
 * The error the raw path met opening this request's stream, if it did: the route throws it
 * rather than open the stream again, so the client gets the answer of the one attempt (opening
 * has effects: a subscription registered, messages held, a consumer connected), rendered by
 * Fastify's error handling like every other answer.
 */
export function rawRefusalOf(request: IncomingMessage): { error: unknown } | undefined {
  const refusal = refused.get(request);
  refused.delete(request);
  return refusal;
}

/**
 * A raw path on the socket for `GET /messages/subscribe/<id>`, the request that opens an event
 * stream, in front of node:http: idle streams are what a hub holds most of, and node:http keeps,
 * for every open response, its parser, IncomingMessage, ServerResponse (with its written head),
 * and about a dozen bound functions and listener wrappers per connection. Measured with
 * `bench/stream-memory.ts` (10,000 idle streams, heap snapshot diff): see the README.
 *
 * Taken: a request head in the strict subset of `raw-request-head.ts`, method GET, target
 * exactly `/messages/subscribe/<id>` with an id of unreserved characters, no body, arriving whole
 * in the connection's first read. Its stream is opened by the same rules as Fastify's route
 * (authentication, authorisation, cursor, limits, preamble, heartbeats) and written with the
 * bytes node:http would write (raw-event-stream-response.ts), with the headers Fastify's hooks
 * would add (CORS, discovery). Everything else, and every request the route would refuse (an
 * invalid token, an id past the limits, a shutdown, a connection over the caps), is handed to
 * node:http for good with every byte put back, as raw-publish.ts does (`socket.unshift`, then
 * node:http's own `connection` listener), so its answer is Fastify's, byte for byte.
 *
 * No undocumented Node internal is used: `socket.unshift`, the server's `connection` listener,
 * and the socket's public events and properties.
 */
export function installRawSubscribe(server: Server, options: RawSubscribeOptions): void {
  const nodeListeners = server.listeners('connection');
  // A server that is not a plain http.Server (or already has other listeners): leave it alone.
  if (nodeListeners.length !== 1) return;
  const nodeConnectionListener = nodeListeners[0] as (socket: Socket) => void;
  /** Sockets serving a raw stream, for `closeAllConnections`. */
  const streaming = new Set<Socket>();
  /** Connections whose client asked for `Connection: close`: they end with their stream. */
  const closeAfterStream = new WeakSet<Socket>();
  /**
   * Connections whose stream ended with nothing pipelined, waiting for their next request:
   * idle keep-alive connections (node:http would time them out and close them on shutdown, but
   * it only learns of a connection with its first bytes).
   */
  const idleAfterStream = new Set<Socket>();
  /**
   * Connections that have not sent their first request: idle too (node:http closes such
   * sockets on `closeIdleConnections`, but it has not seen these yet).
   */
  const beforeFirstRequest = new Set<Socket>();

  // Shared listeners, `this` being the socket: nothing allocated per connection until it is
  // taken but its entry in `beforeFirstRequest`.
  function onFirstData(this: Socket, chunk: Buffer): void {
    this.removeListener('data', onFirstData);
    this.removeListener('end', onEndBeforeRequest);
    this.removeListener('close', onCloseBeforeRequest);
    beforeFirstRequest.delete(this);
    take(this, chunk);
  }
  function onError(this: Socket): void {
    this.destroy();
  }
  /** The client half-closed before sending a request: nothing to answer. */
  function onEndBeforeRequest(this: Socket): void {
    this.end();
  }
  function onCloseBeforeRequest(this: Socket): void {
    beforeFirstRequest.delete(this);
  }
  function onStreamClose(this: Socket): void {
    streaming.delete(this);
  }

  const handOver = (socket: Socket, bytes: Buffer | undefined): void => {
    socket.removeListener('data', onFirstData);
    socket.removeListener('error', onError);
    socket.removeListener('end', onEndBeforeRequest);
    socket.removeListener('close', onCloseBeforeRequest);
    beforeFirstRequest.delete(socket);
    if (socket.destroyed) return;
    // Paused while the bytes go back, so none is emitted before node:http listens.
    socket.pause();
    if (bytes) socket.unshift(bytes);
    nodeConnectionListener.call(server, socket);
    socket.resume();
  };

  const take = (socket: Socket, bytes: Buffer): void => {
    const opener = options.opener();
    if (!opener || options.isShuttingDown() || options.isOverLimit(socket)) return handOver(socket, bytes);
    const head = parseRawRequestHead(bytes, 'GET');
    if (!head || head.bodyLength !== 0 || head.bodyStart !== bytes.length || !head.url.startsWith(SUBSCRIBE_PATH)) return handOver(socket, bytes);
    const topic = head.url.slice(SUBSCRIBE_PATH.length);
    if (!PLAIN_ID.test(topic)) return handOver(socket, bytes);
    // Nothing more is read until the stream opens (or the request goes to node:http).
    socket.pause();
    if (!head.keepAlive) closeAfterStream.add(socket);
    const response = new RawEventStreamResponse(socket, nextRequest);
    let taken = false;
    const transport: EventStreamTransport = {
      response,
      presetHeaders: () => options.presetHeaders(head.headers.origin),
      takeOver: () => {
        taken = true;
        // Gone meanwhile: the caller sees it (`gone`) and lets the stream go.
        if (socket.destroyed) return;
        socket.removeListener('error', onError);
        response.attach();
        streaming.add(socket);
        socket.on('close', onStreamClose);
        socket.resume();
      },
      get gone() {
        return socket.destroyed;
      },
    };
    opener(topic, head.headers, transport).catch((error: unknown) => {
      if (taken) {
        socket.destroy();
        return;
      }
      // Refused before anything was written: node:http and Fastify answer it with this error.
      refusedOn.set(socket, { error });
      handOver(socket, bytes);
    });
  };

  /**
   * A stream ended and its last chunk is out: the connection is node:http's from now on, with
   * what the client sent meanwhile, so keep-alive (its timeout, idle closing on shutdown,
   * half-closed clients) is node:http's as after any other answer.
   */
  const nextRequest = (socket: Socket, parked: Buffer | undefined): void => {
    // The response let go of the socket's errors: a reset from here on must not go unheard
    // (an `error` event without a listener ends the process).
    socket.on('error', onError);
    const shuttingDown = options.isShuttingDown();
    if (closeAfterStream.has(socket) || (shuttingDown && parked === undefined)) {
      // Asked for by the client, or node:http already closed its idle connections (shutdown):
      // this one ends here, and is cut with the others at the shutdown deadline if the client
      // does not close its side.
      socket.end();
      return;
    }
    streaming.delete(socket);
    socket.removeListener('close', onStreamClose);
    // A request pipelined behind the stream is answered even during shutdown (the drain's 503,
    // with `Connection: close`), as raw-publish.ts does: the client then knows it was not
    // served, rather than seeing its connection close under a request it sent.
    if (parked !== undefined) return handOver(socket, parked);
    waitForNextRequest(socket);
  };

  /**
   * Holds an idle connection after its stream until its next request, which goes to node:http
   * with its bytes; closes it after the keep-alive timeout, on shutdown, or when the client
   * half-closes, as node:http does with an idle connection.
   */
  const waitForNextRequest = (socket: Socket): void => {
    idleAfterStream.add(socket);
    const done = (): void => {
      idleAfterStream.delete(socket);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('timeout', onIdle);
      socket.removeListener('close', onClose);
      socket.setTimeout(0);
    };
    const onData = (bytes: Buffer): void => {
      done();
      handOver(socket, bytes);
    };
    const onEnd = (): void => {
      done();
      socket.end();
    };
    const onIdle = (): void => {
      done();
      socket.destroy();
    };
    const onClose = (): void => done();
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    if (options.keepAliveTimeout > 0) {
      socket.setTimeout(options.keepAliveTimeout);
      socket.on('timeout', onIdle);
    }
    socket.resume();
  };

  // First, so the refusal is the request's before Fastify's handler (a `request` listener) runs.
  server.prependListener('request', (request: IncomingMessage) => {
    const refusal = refusedOn.get(request.socket);
    if (refusal === undefined) return;
    refusedOn.delete(request.socket);
    refused.set(request, refusal);
  });

  server.removeListener('connection', nodeConnectionListener);
  server.on('connection', (socket: Socket) => {
    if (!options.opener() || options.isShuttingDown()) return nodeConnectionListener.call(server, socket);
    socket.on('data', onFirstData);
    socket.on('error', onError);
    socket.on('end', onEndBeforeRequest);
    socket.on('close', onCloseBeforeRequest);
    beforeFirstRequest.add(socket);
  });

  // The streams served here are not node:http's connections, so its closing call would miss them.
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeAll();
    for (const socket of streaming) socket.destroy();
    for (const socket of idleAfterStream) socket.destroy();
    for (const socket of beforeFirstRequest) socket.destroy();
  };
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const socket of idleAfterStream) socket.destroy();
    for (const socket of beforeFirstRequest) socket.destroy();
  };
}
