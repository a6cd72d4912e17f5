import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import proxyAddr from 'proxy-addr';
import { challengeOf } from '../auth/bearer.js';
import type { ServeOptions } from '../config/options.js';
import { RelayError } from '../hub/errors.js';
import type { Hub } from '../hub/hub.js';
import { observeHttpRequests } from '../metrics/http-metrics.js';
import type { RelayMetrics } from '../metrics/metrics.js';
import { registerMercureProtocol } from '../protocols/mercure/routes.js';
import { discoveryLink } from '../protocols/mercure/discovery.js';
import { registerMessagesProtocol } from '../protocols/messages/routes.js';
import { describeSubscribeStream } from '../protocols/messages/subscribe.js';
import type { RelayCore } from '../relay.js';
import type { AdapterContext } from './context.js';
import { trackAllowedMethods } from './allowed-methods.js';
import { installBodyParsers } from './body/parsers.js';
import { registerConsoleRoutes } from './console.js';
import { installLingeringClose } from './lingering-close.js';
import { limitConnections } from './connection-limits.js';
import { corsPolicy, installCors } from './cors.js';
import { installCsrfCheck } from './csrf.js';
import { EventStreams } from './event-streams.js';
import { answerClientError, answerFrameworkError, answerOnSocket, installErrorHandling } from './error-handler.js';
import { registerOpenApiRoute, trackRoutes, type RegisteredRoute } from './openapi.js';
import { registerOperationsRoutes } from './operations.js';
import { registerProbeRoute } from './probe.js';
import { leanPublishRules, leanRouteOf, type LeanPublishRules, type LeanRoute } from './lean-publish.js';
import { installRawPublish } from './raw-publish.js';
import { installRawSubscribe, type RawSubscribeOpener } from './raw-subscribe.js';
import { armShutdownDeadline } from './shutdown-deadline.js';

/** A running hub: its HTTP server, core and address. */
export interface RelayServer {
  readonly app: FastifyInstance;
  readonly hub: Hub;
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly options: ServeOptions;
  readonly metrics: RelayMetrics;
  /** Every route registered (checked against the OpenAPI description by a test). */
  readonly routes: readonly RegisteredRoute[];
  /**
   * Graceful stop: refuse new work (503 `HUB_ERR_SHUTTING_DOWN`), end streams, answer requests
   * in flight, close the store. Bounded by `options.shutdownTimeout`: past it every connection
   * still open is cut, and the outcome says the stop was forced.
   */
  close(): Promise<ShutdownOutcome>;
}

/** How a {@link RelayServer.close} ended. */
export interface ShutdownOutcome {
  /** True when the shutdown timeout passed and connections were cut rather than answered. */
  readonly forced: boolean;
  /** Connections cut at the deadline (0 when not forced). */
  readonly cutConnections: number;
}

/**
 * What Fastify's own "Server listening at" lines (one per address: every interface for
 * `0.0.0.0`) are turned into, so the logger drops them: `serve` logs one line of its own, with
 * the store, once its signal handlers are in place.
 */
const FASTIFY_LISTENING_TEXT = 'fastify listening (dropped by the logger)';

/** How the HTTP layer logs. */
export interface HttpLayerOptions {
  /** Human-readable logs (pino-pretty) instead of JSON lines. */
  readonly prettyLogs?: boolean | undefined;
}

/**
 * The HTTP layer over an opened core (see `startRelay`, which builds one): both APIs, the
 * operations routes and the console, listening on `options.host:port`. Rejects when it cannot
 * listen; closing the core's store is then the caller's.
 */
export async function serveOverHttp(core: RelayCore, parts: HttpLayerOptions = {}): Promise<RelayServer> {
  const { options, authorizer, hub, consumers, metrics } = core;

  // The lean publish path, once the pieces it shares with Fastify exist (below); until then,
  // and for every request it does not take, Fastify's handler serves.
  let leanRules: LeanPublishRules | undefined;
  let leanRoute: LeanRoute | undefined;
  let rawSubscribe: RawSubscribeOpener | undefined;
  const cors = corsPolicy(options.corsOrigins);
  let shuttingDown = false;
  const app = Fastify({
    // Fastify's own http.createServer, plus the lean path in front of its handler.
    serverFactory: (handler, fastifyOptions) => {
      const server = createServer(fastifyOptions.http ?? {}, (request, response) => {
        if (leanRoute?.(request, response)) return;
        handler(request, response);
      });
      // What Fastify sets on the server it creates itself (lib/server.js).
      server.keepAliveTimeout = options.keepAliveTimeout;
      server.requestTimeout = options.requestTimeout;
      if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
      // In front of node:http: plain subscriptions streamed on the raw socket (raw-subscribe.ts),
      // and in front of that, plain publishes answered on it (raw-publish.ts).
      installRawSubscribe(server, {
        opener: () => rawSubscribe,
        isShuttingDown: () => shuttingDown,
        isOverLimit: (socket) => connections.isOverLimit(socket),
        keepAliveTimeout: server.keepAliveTimeout,
        presetHeaders: (origin) => {
          // What the CORS and discovery hooks set on the route's reply, in their order.
          const headers: Record<string, string> = {};
          if (cors) for (const [name, value] of cors.headersFor(origin)) headers[name] = value;
          headers.link = discoveryLink(options);
          return headers;
        },
      });
      installRawPublish(server, {
        rules: () => leanRules,
        isShuttingDown: () => shuttingDown,
        keepAliveTimeout: options.keepAliveTimeout,
        maxRequestsPerSocket: options.maxRequestsPerSocket,
      });
      return server;
    },
    logger:
      options.logLevel === 'silent'
        ? false
        : {
            level: options.logLevel,
            // Tokens and cookies never reach the logs; message bodies are never logged at all.
            redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
            hooks: {
              logMethod(args, method) {
                if (args[0] === FASTIFY_LISTENING_TEXT) return;
                method.apply(this, args);
              },
            },
            ...(parts.prettyLogs ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
          },
    requestIdHeader: 'x-request-id',
    // Request logs would add two log lines to every publish; errors are logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodySize,
    // Ids up to 256 characters, percent-encoded (x3): longer ones get our 400, not a 404.
    routerOptions: { maxParamLength: 4096 },
    // Errors raised before any route (malformed URL, over-long id, unparseable HTTP) get the
    // project's error shape too, not Fastify's.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Duplex) {
      const answered = answerClientError.call(this, error, socket);
      if (answered) requestObserver.refusedBeforeRequest(answered.code);
    },
    // Close keep-alive connections on shutdown so `close()` does not wait for idle clients.
    forceCloseConnections: 'idle',
    // Fastify's own 503 has Fastify's shape; requests arriving during the drain get ours
    // (the hook below), and Fastify still adds `Connection: close` to them.
    return503OnClosing: false,
    // HEAD on every GET route (CORS advertises it). An event stream's HEAD answers its headers
    // and ends without subscribing (EventStreams answers it).
    exposeHeadRoutes: true,
    trustProxy: options.trustProxy.length > 0 ? [...options.trustProxy] : false,
    keepAliveTimeout: options.keepAliveTimeout,
    requestTimeout: options.requestTimeout,
    maxRequestsPerSocket: options.maxRequestsPerSocket,
    http: {
      headersTimeout: options.headersTimeout,
      requestTimeout: options.requestTimeout,
      // Node checks the two timeouts above only this often (30 s by default), so a short
      // header timeout needs a short interval to mean anything.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(options.headersTimeout / 2))),
    },
  });
  // CONNECT is for proxies: Node would drop the connection without a word.
  app.server.on('connect', (_request, socket: Duplex) => {
    const refusal = new RelayError('HUB_ERR_METHOD_NOT_ALLOWED', 'CONNECT is not supported');
    if (answerOnSocket(socket, refusal)) requestObserver.refusedBeforeRequest(refusal.code);
  });
  const trusted = proxyAddr.compile([...options.trustProxy]);
  const connections = limitConnections(app, app.server, {
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    isTrustedProxy: (address) => options.trustProxy.length > 0 && trusted(address, 0),
    retryAfterSeconds: 5,
    firstRequestTimeoutMs: options.headersTimeout,
  });
  const routes = trackRoutes(app);
  const requestObserver = observeHttpRequests(app, metrics.registry);
  installErrorHandling(app, trackAllowedMethods(app));
  installLingeringClose(app);
  installCors(app, options.corsOrigins);
  // After CORS (so a browser can read the answer), before any protocol's hook or handler: a
  // request that arrives during the drain (on a connection already open) does no work.
  app.addHook('onRequest', (_request, _reply, done) => {
    if (shuttingDown) done(new RelayError('HUB_ERR_SHUTTING_DOWN'));
    else done();
  });
  installCsrfCheck(app, { corsOrigins: options.corsOrigins, publicUrl: options.publicUrl });
  // RFC 6750: authorization failures carry their `WWW-Authenticate` challenge, whatever renders them.
  app.addHook('onError', async (_request, reply, error) => {
    const challenge = challengeOf(error);
    if (challenge) void reply.header('WWW-Authenticate', challenge);
  });
  installBodyParsers(app, { bodyLimit: options.maxBodySize });

  const streams = new EventStreams(hub, options, metrics);
  const context: AdapterContext = { hub, options, streams, authorizer, consumers };

  registerProbeRoute(app, streams, options.heartbeatInterval);
  registerOperationsRoutes(app, {
    hub,
    metrics,
    metricsToken: options.metricsToken,
    isShuttingDown: () => shuttingDown,
    startedAt: Date.now(),
  });
  await registerConsoleRoutes(app);
  registerOpenApiRoute(app);
  registerMessagesProtocol(app, context);
  registerMercureProtocol(app, context);
  leanRules = leanPublishRules({
    context,
    options,
    isShuttingDown: () => shuttingDown,
    isOverLimit: (socket) => connections.isOverLimit(socket),
    log: app.log,
    observer: requestObserver,
  });
  leanRoute = leanRouteOf(leanRules);
  rawSubscribe = async (topic, headers, transport) => streams.openOn(await describeSubscribeStream(context, topic, headers, {}), transport);

  try {
    await app.listen({ host: options.host, port: options.port, listenTextResolver: () => FASTIFY_LISTENING_TEXT });
  } catch (error) {
    streams.shutdown();
    await app.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  for (const warning of authorizer.startupWarnings()) app.log.warn(warning);

  let closing: Promise<ShutdownOutcome> | undefined;
  const close = (): Promise<ShutdownOutcome> =>
    (closing ??= (async () => {
      shuttingDown = true;
      let cutConnections = 0;
      const deadline = armShutdownDeadline(app.server, options.shutdownTimeout, () => {
        cutConnections = connections.open();
        app.log.warn({ shutdownTimeout: options.shutdownTimeout, connections: cutConnections }, 'shutdown timeout passed: closing every open connection');
      });
      hub.beginShutdown();
      consumers.stop();
      streams.shutdown();
      try {
        await app.close();
      } finally {
        deadline.cancel();
      }
      await hub.shutdown();
      return { forced: deadline.passed, cutConnections };
    })());

  return { app, hub, url, options, metrics, routes, close };
}
