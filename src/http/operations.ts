import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { RelayError } from '../hub/errors.js';
import type { Hub } from '../hub/hub.js';
import type { RelayMetrics } from '../metrics/metrics.js';
import { sendError } from './error-handler.js';

/** What the operations routes read. */
export interface OperationsContext {
  readonly hub: Hub;
  readonly metrics: RelayMetrics;
  /** Bearer token guarding /metrics; undefined leaves it open. */
  readonly metricsToken: string | undefined;
  /** False once shutdown began (the server stops being ready before the hub stops). */
  readonly isShuttingDown: () => boolean;
  readonly startedAt: number;
}

/**
 * `/healthz` (the process is alive and serving HTTP), `/readyz` (the store is reachable and
 * the hub accepts work; not while shutting down), `/metrics` (Prometheus) and `/stats` (the
 * console's live figures, JSON).
 */
export function registerOperationsRoutes(app: FastifyInstance, context: OperationsContext): void {
  const { hub, metrics } = context;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    if (context.isShuttingDown()) return sendError(reply, new RelayError('HUB_ERR_SHUTTING_DOWN'));
    if (!hub.isReady()) return sendError(reply, new RelayError('HUB_ERR_STORE_UNAVAILABLE', `The ${hub.store.kind} store is not reachable`));
    return { status: 'ready', store: hub.store.kind };
  });

  app.get('/metrics', async (request, reply) => {
    if (context.metricsToken !== undefined && !bearerMatches(request.headers.authorization, context.metricsToken)) {
      void reply.header('WWW-Authenticate', 'Bearer realm="metrics"');
      return sendError(reply, new RelayError('HUB_ERR_UNAUTHORIZED', 'A valid bearer token is required to read metrics'));
    }
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });

  app.get('/stats', async () => {
    const counters = await metrics.registry.getMetricsAsJSON();
    const value = (name: string): number => {
      const metric = counters.find((m) => m.name === name) as { values?: { value: number }[] } | undefined;
      return metric?.values?.reduce((sum, v) => sum + v.value, 0) ?? 0;
    };
    return {
      subscribers: hub.subscriptionCount,
      published: value('sse_relay_messages_published_total'),
      delivered: value('sse_relay_messages_delivered_total'),
      store: hub.store.kind,
      // The hub's position: the console tells replayed history (ids up to it) from live messages.
      lastEventId: hub.currentPositionId(),
      ready: hub.isReady() && !context.isShuttingDown(),
      uptimeSeconds: Math.round((Date.now() - context.startedAt) / 1000),
    };
  });
}

/** Constant-time comparison of `Authorization: Bearer <token>` against the expected token. */
function bearerMatches(header: string | undefined, expected: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!match) return false;
  const given = Buffer.from(match[1]!.trim());
  const wanted = Buffer.from(expected);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
