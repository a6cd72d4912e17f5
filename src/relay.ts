import { Authorizer } from './auth/authorizer.js';
import { serveOptions } from './config/load.js';
import type { ServeOptions } from './config/options.js';
import { Consumers } from './hub/consumers.js';
import { Hub } from './hub/hub.js';
import { serveOverHttp, type RelayServer } from './http/server.js';
import { RelayMetrics } from './metrics/metrics.js';
import { createStore } from './store/create-store.js';
import type { Store } from './store/store.js';

/**
 * The hub without its HTTP layer: who may do what, where messages live, the hub that fans
 * them out, and its metrics. Built in one place, {@link openRelayCore}, for `sse-relay serve`,
 * the package's entry point and the tests alike.
 */
export interface RelayCore {
  readonly options: ServeOptions;
  readonly authorizer: Authorizer;
  readonly store: Store;
  readonly hub: Hub;
  /** Acknowledged consumers (`?consumer=`), expired after `--consumer-ttl`. */
  readonly consumers: Consumers;
  readonly metrics: RelayMetrics;
}

/** Parts an embedder may supply instead of the ones the options name. */
export interface RelayParts {
  /** A store to use instead of the one `options.store` names (it is opened here). */
  readonly store?: Store;
  /** Human-readable logs (pino-pretty) instead of JSON lines. */
  readonly prettyLogs?: boolean;
}

/** Builds the core and opens its store. Rejects with HUB_ERR_CONFIG_INVALID, HUB_ERR_STORE_OPEN, .... */
export async function openRelayCore(options: ServeOptions, parts: RelayParts = {}): Promise<RelayCore> {
  // Keys and the open-hub exposure rule are checked before anything is opened.
  const authorizer = Authorizer.create(options);
  const store = parts.store ?? createStore(options);
  const hub = new Hub(store);
  const metrics = new RelayMetrics(hub);
  await hub.start();
  const consumers = new Consumers(hub, { ttlMs: options.consumerTtl });
  consumers.start();
  metrics.observeConsumers(consumers);
  return { options, authorizer, store, hub, consumers, metrics };
}

/**
 * Builds the hub, opens its store and serves both APIs over HTTP on `options.host:port`: what
 * `sse-relay serve` runs. Options it is not given take `serve`'s defaults. A failure after the
 * store opened (the port is taken, say) closes it again.
 */
export async function startRelay(options: Partial<ServeOptions> = {}, parts: RelayParts = {}): Promise<RelayServer> {
  const core = await openRelayCore(serveOptions(options), parts);
  try {
    return await serveOverHttp(core, { prettyLogs: parts.prettyLogs });
  } catch (error) {
    core.consumers.stop();
    await core.store.close();
    throw error;
  }
}
