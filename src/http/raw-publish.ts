import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LeanPublishRules, PublishAnswerWriter } from './lean-publish.js';
import { parseRawRequestHead } from './raw-request-head.js';
import { httpDate } from './http-date.js';

/** What the raw publish path needs from the server it sits in front of. */
export interface RawPublishOptions {
  /** The lean rules, once the hub's routes exist; until then every connection is node:http's. */
  readonly rules: () => LeanPublishRules | undefined;
  /** True once shutdown began: requests are then node:http's (Fastify's 503), idle sockets close. */
  readonly isShuttingDown: () => boolean;
  /** node:http's `keepAliveTimeout` (ms; 0: none), also announced in `Keep-Alive: timeout=`. */
  readonly keepAliveTimeout: number;
  /** node:http's `maxRequestsPerSocket` (0: no limit), announced and enforced as node:http does. */
  readonly maxRequestsPerSocket: number;
}

/** A connection the raw path holds. */
interface RawConnection {
  /** A publish is being served: its answer is not written yet. */
  busy: boolean;
  /** Bytes that arrived while busy (a pipelining client): handed to node:http after the answer. */
  parked: Buffer | undefined;
  /** Requests answered on this connection. */
  served: number;
  /** The last answer closes the connection (`Connection: close` asked, or the server closing). */
  closeAfterAnswer: boolean;
  /** The answer writer of this connection, made at its first publish. */
  writer: PublishAnswerWriter | undefined;
}

/**
 * A hand-written HTTP/1.1 path on the raw socket for the one request a publisher repeats,
 * `POST /messages/<id>`, in front of node:http: every new connection is read here first, and a
 * request head in the strict subset of `raw-request-head.ts` whose whole body arrived with it
 * is served by the lean rules (the same `plan` and `serve` as the node:http lean path and so the
 * same answers as Fastify's route) and answered with one string, head and body, in one write.
 * Anything else (another route or method, a header or framing outside the subset, a head or
 * body split over several reads, pipelined bytes, a connection over the caps, shutdown) hands
 * the connection to node:http for good, with every byte read so far put back: `socket.unshift`
 * (documented for exactly this, "parse a header, put the rest back") and then node:http's own
 * `connection` listener, the function `server.emit('connection', socket)` (documented for
 * handing a socket to an HTTP server) would call. It is called directly rather than through
 * `emit` so that the connection caps (a `connection` listener too) count the socket once.
 *
 * Why hand-written: no library serves one route on a raw socket and hands everything else to
 * node:http, and node:http's per-request work (its parser's callbacks, IncomingMessage and
 * ServerResponse, header objects, a writev of head and body) was the bulk of what a
 * non-pipelined publish cost beyond the hub itself (see the commit that added this for the
 * measurements).
 *
 * Timeouts: node:http's header and request timeouts bound how long a request may take to
 * arrive; this path never waits for one (a partial request is node:http's at once), so they
 * hold for every request it does not answer on the spot. Between requests the connection gets
 * node:http's keep-alive timeout. Shutdown: `server.closeIdleConnections()` and
 * `closeAllConnections()` (what Fastify's close and the shutdown deadline call) also close
 * the connections held here, idle ones at once, busy ones after their answer.
 */
export function installRawPublish(server: Server, options: RawPublishOptions): void {
  const nodeListeners = server.listeners('connection');
  // A server that is not a plain http.Server (or already has other listeners): leave it alone.
  if (nodeListeners.length !== 1) return;
  const nodeConnectionListener = nodeListeners[0] as (socket: Socket) => void;
  const { isShuttingDown, keepAliveTimeout, maxRequestsPerSocket } = options;
  const keepAliveHeader = keepAliveHeaderOf(keepAliveTimeout, maxRequestsPerSocket);
  const held = new Map<Socket, RawConnection>();

  // Shared listeners, `this` being the socket: nothing allocated per connection but its state.
  function onData(this: Socket, chunk: Buffer): void {
    const connection = held.get(this)!;
    if (connection.busy) {
      connection.parked = connection.parked ? Buffer.concat([connection.parked, chunk]) : chunk;
      this.pause();
      return;
    }
    take(this, connection, chunk);
  }
  function onError(this: Socket): void {
    this.destroy();
  }
  function onClose(this: Socket): void {
    held.delete(this);
  }
  /** The client half-closed (node:http's server allows half-open sockets): close once answered. */
  function onEnd(this: Socket): void {
    const connection = held.get(this);
    if (connection?.busy) connection.closeAfterAnswer = true;
    else this.end();
  }
  function onIdle(this: Socket): void {
    if (!held.get(this)?.busy) this.destroy();
  }

  const handOver = (socket: Socket, bytes: Buffer | undefined): void => {
    const connection = held.get(socket);
    held.delete(socket);
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
    socket.removeListener('end', onEnd);
    if (connection && connection.served > 0) {
      socket.setTimeout(0);
      socket.removeListener('timeout', onIdle);
    }
    // Paused while the bytes go back, so none is emitted before node:http listens.
    socket.pause();
    if (bytes) socket.unshift(bytes);
    nodeConnectionListener.call(server, socket);
    socket.resume();
  };

  const take = (socket: Socket, connection: RawConnection, bytes: Buffer): void => {
    const rules = options.rules();
    const head = rules && parseRawRequestHead(bytes);
    if (!rules || !head || head.bodyStart + head.bodyLength !== bytes.length) return handOver(socket, bytes);
    if (maxRequestsPerSocket > 0 && connection.served >= maxRequestsPerSocket) {
      // node:http's answer past the limit, byte for byte (it then closes the connection).
      connection.served++;
      closeAfter(socket, `HTTP/1.1 503 Service Unavailable\r\nDate: ${httpDate()}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
      return;
    }
    const plan = rules.plan('POST', head.url, head.headers, socket);
    if (!plan) return handOver(socket, bytes);
    connection.busy = true;
    connection.closeAfterAnswer = !head.keepAlive;
    const body = plan.parse && head.bodyLength > 0 ? bytes.subarray(head.bodyStart) : undefined;
    rules.serve(head.url, head.headers, plan, body, rules.timed ? performance.now() : 0, (connection.writer ??= writerFor(socket, connection)));
  };

  const writerFor =
    (socket: Socket, connection: RawConnection): PublishAnswerWriter =>
    (status, headers, body) => {
      if (socket.destroyed) return;
      connection.served++;
      connection.busy = false;
      const parked = connection.parked;
      // A pipelined request parked during shutdown still gets its answer (node:http's 503).
      let closing = connection.closeAfterAnswer || (isShuttingDown() && !parked);
      // The head node:http would write for the same writeHead: the given headers, then Date
      // and the connection's fate, unless the answer names it itself.
      let text = headTextOf(status, headers);
      const named = headNamesConnection;
      text += `Date: ${httpDate()}\r\n`;
      if (named) {
        closing = true;
        text += '\r\n';
      } else if (closing || (maxRequestsPerSocket > 0 && connection.served >= maxRequestsPerSocket)) text += 'Connection: close\r\n\r\n';
      else text += keepAliveHeader;
      text += body;
      if (closing) {
        closeAfter(socket, text);
        return;
      }
      // One write: head and body leave in one syscall.
      socket.write(text);
      if (connection.served === 1 && keepAliveTimeout > 0) {
        socket.setTimeout(keepAliveTimeout);
        socket.on('timeout', onIdle);
      }
      if (parked) {
        connection.parked = undefined;
        handOver(socket, parked);
      }
    };

  // The status line and headers of the last answer, as text: a publisher's answers repeat them
  // (the content-length of ids of one length included), so most answers reuse the text.
  let headStatus = 0;
  let headHeaders: readonly string[] = [];
  let headText = '';
  let headNamesConnection = false;
  const headTextOf = (status: number, headers: readonly string[]): string => {
    if (status === headStatus && sameStrings(headers, headHeaders)) return headText;
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`;
    let named = false;
    for (let i = 0; i < headers.length; i += 2) {
      text += `${headers[i]}: ${headers[i + 1]}\r\n`;
      if (headers[i] === 'connection') named = true;
    }
    headStatus = status;
    headHeaders = headers;
    headText = text;
    headNamesConnection = named;
    return text;
  };

  server.removeListener('connection', nodeConnectionListener);
  server.on('connection', (socket: Socket) => {
    if (!options.rules() || isShuttingDown()) return nodeConnectionListener.call(server, socket);
    // As node:http sets its own sockets (its `noDelay` default).
    socket.setNoDelay(true);
    held.set(socket, { busy: false, parked: undefined, served: 0, closeAfterAnswer: false, writer: undefined });
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('end', onEnd);
  });

  // The connections held here are not node:http's, so its two closing calls would miss them.
  const closeIdle = server.closeIdleConnections.bind(server);
  const closeAll = server.closeAllConnections.bind(server);
  server.closeIdleConnections = () => {
    closeIdle();
    for (const [socket, connection] of held) {
      if (connection.busy) connection.closeAfterAnswer = true;
      else socket.destroy();
    }
  };
  server.closeAllConnections = () => {
    closeAll();
    for (const socket of held.keys()) socket.destroy();
  };
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Writes a last answer and closes as node:http does after one (`destroySoon`): the socket is
 * destroyed once the answer is written, whatever the client does with its side.
 */
function closeAfter(socket: Socket, text: string): void {
  socket.end(text, () => socket.destroy());
}

/** What node:http writes after `Date` on a keep-alive answer (see `_http_outgoing.js`). */
function keepAliveHeaderOf(keepAliveTimeout: number, maxRequestsPerSocket: number): string {
  if (!keepAliveTimeout) return 'Connection: keep-alive\r\n\r\n';
  const max = maxRequestsPerSocket > 0 ? `, max=${maxRequestsPerSocket}` : '';
  return `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveTimeout / 1000)}${max}\r\n\r\n`;
}

