import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { ServeOptions } from '../config/options.js';
import { Hub } from '../hub/hub.js';
import { RelayMetrics } from '../metrics/metrics.js';
import { registerMessagesProtocol } from '../protocols/messages/routes.js';
import type { SseStream } from '../sse/stream.js';
import { Ticker } from '../sse/ticker.js';
import { createStore } from '../store/create-store.js';
import type { Store } from '../store/store.js';
import type { AdapterContext } from './context.js';
import { registerConsoleRoutes } from './console.js';
import { installErrorHandling } from './error-handler.js';
import { registerOperationsRoutes } from './operations.js';

/** A running hub: its HTTP server, core and address. */
export interface RelayServer {
  readonly app: FastifyInstance;
  readonly hub: Hub;
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly options: ServeOptions;
  readonly metrics: RelayMetrics;
  /** Graceful stop: refuse new work, end streams, answer in-flight requests, close the store. */
  close(): Promise<void>;
}

/** Extra parts for embedding and tests. */
export interface RelayServerParts {
  /** A store to use instead of the one `options.store` names. */
  readonly store?: Store;
}

const HEARTBEAT = Buffer.from(':\n\n');

/** Builds the hub, opens its store and listens. Rejects (HUB_ERR_STORE_OPEN, ...) on failure. */
export async function startRelayServer(options: ServeOptions, parts: RelayServerParts = {}): Promise<RelayServer> {
  const store = parts.store ?? createStore(options);
  const hub = new Hub(store);
  const metrics = new RelayMetrics(hub);
  await hub.start();

  const app = Fastify({
    logger: options.logLevel === 'silent' ? false : { level: options.logLevel },
    // Request logs would add two log lines to every publish; errors are logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodySize,
    // Ids up to 256 characters, percent-encoded (x3): longer ones get our 400, not a 404.
    routerOptions: { maxParamLength: 4096 },
    // Close keep-alive connections on shutdown so `close()` does not wait for idle clients.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  installErrorHandling(app);
  await app.register(formbody, { bodyLimit: options.maxBodySize });

  const heartbeats = new Ticker<SseStream>(options.heartbeatInterval, (stream) => stream.send(HEARTBEAT));
  const context: AdapterContext = { hub, options, heartbeats, extraStreams: new Set() };

  let shuttingDown = false;
  registerOperationsRoutes(app, {
    hub,
    metrics,
    metricsToken: options.metricsToken,
    isShuttingDown: () => shuttingDown,
    startedAt: Date.now(),
  });
  await registerConsoleRoutes(app);
  registerMessagesProtocol(app, context);

  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await store.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      hub.beginShutdown();
      for (const stream of [...context.extraStreams]) stream.close('shutdown');
      heartbeats.stop();
      await app.close();
      await hub.shutdown();
    })());

  return { app, hub, url, options, metrics, close };
}
