import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { LocalHistogram } from './local-histogram.js';
import type { ConsumerObserver, Consumers } from '../hub/consumers.js';
import { SUBSCRIPTION_APIS } from '../auth/authorized-selector.js';
import type { Hub, HubObserver } from '../hub/hub.js';
import type { Message } from '../hub/message.js';
import type { SlowConsumerObserver } from '../sse/backlog-queue.js';
import { packageVersion } from '../version.js';

/** Optional sources of state the hub core does not own. */
export interface MetricsSources {
  /** 1 when the store's backing service is reachable (Redis), for `sse_relay_store_up`. */
  readonly storeUp?: () => boolean;
}

/**
 * The hub's Prometheus metrics. Counters are plain additions on the hot path (the hub calls
 * the observer once per message, never per subscriber); gauges are read when scraped.
 */
export class RelayMetrics implements HubObserver, SlowConsumerObserver, ConsumerObserver {
  readonly registry = new Registry();
  /** Published and delivered messages not yet handed to their counters (see the constructor). */
  private publishedCount = 0;
  private deliveredCount = 0;
  private readonly replayedTotal: Counter;
  private readonly droppedTotal: Counter;
  private readonly skippedTotal: Counter;
  private readonly conflatedTotal: Counter;
  private readonly consumerAcksTotal: Counter;
  /** The largest backlog one `skip`/`latest` subscriber has held since start (bytes). */
  private backlogPeak = 0;
  private readonly dispatchLag: LocalHistogram;
  private readonly appendLatency: LocalHistogram;

  constructor(hub: Hub, sources: MetricsSources = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    const metrics = this;
    // Counted in plain numbers on the hot path (once or twice per publish), handed to
    // prom-client when the registry is read: its `inc` validates and hashes labels per call.
    new Counter({
      name: 'sse_relay_messages_published_total',
      help: 'Messages accepted and committed by the store.',
      registers,
      collect() {
        this.inc(metrics.takePublished());
      },
    });
    new Counter({
      name: 'sse_relay_messages_delivered_total',
      help: 'Live messages written to subscribers (one per subscriber per message).',
      registers,
      collect() {
        this.inc(metrics.takeDelivered());
      },
    });
    this.replayedTotal = new Counter({ name: 'sse_relay_messages_replayed_total', help: 'Messages sent from history to resuming subscribers.', registers });
    this.droppedTotal = new Counter({ name: 'sse_relay_subscribers_dropped_total', help: 'Subscribers disconnected because they did not keep up (slow consumers).', registers });
    this.skippedTotal = new Counter({ name: 'sse_relay_messages_skipped_total', help: 'Queued messages dropped for subscribers past --max-backlog with the skip or latest policy (each announced by a gap event).', registers });
    this.conflatedTotal = new Counter({ name: 'sse_relay_messages_conflated_total', help: 'Queued messages replaced by a newer one with the same key for subscribers behind with the latest policy.', registers });
    this.consumerAcksTotal = new Counter({ name: 'sse_relay_consumer_acks_total', help: 'Acknowledgements that moved an acknowledged consumer forward.', registers });
    new Gauge({
      name: 'sse_relay_subscriber_backlog_peak_bytes',
      help: 'The largest backlog (queued plus unsent in the socket) held for one skip or latest subscriber since start; bounded by --max-backlog.',
      registers,
      collect() {
        this.set(metrics.backlogPeak);
      },
    });
    this.dispatchLag = new LocalHistogram({
      name: 'sse_relay_publish_to_dispatch_seconds',
      help: 'Time from the store accepting a message to the hub dispatching it.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.appendLatency = new LocalHistogram({
      name: 'sse_relay_store_append_seconds',
      help: 'Time for the store to commit a published message.',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    });
    new Gauge({
      name: 'sse_relay_subscribers',
      help: 'Subscribers connected now.',
      registers,
      collect() {
        this.set(hub.subscriptionCount);
      },
    });
    new Gauge({
      name: 'sse_relay_subscriptions',
      help: 'Open subscriptions by API.',
      labelNames: ['api'],
      registers,
      collect() {
        this.reset();
        // Every API at zero from start: a query over the series sees no gap before the first subscriber.
        for (const api of SUBSCRIPTION_APIS) this.set({ api }, 0);
        for (const [api, count] of hub.subscriptionsByApi()) this.set({ api }, count);
      },
    });
    new Gauge({
      name: 'sse_relay_ready',
      help: '1 while the hub accepts publishes and subscriptions.',
      registers,
      collect() {
        this.set(hub.isReady() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sse_relay_store_up',
      help: `1 when the store (${hub.store.kind}) can accept writes.`,
      labelNames: ['store'],
      registers,
      collect() {
        this.set({ store: hub.store.kind }, (sources.storeUp?.() ?? hub.store.isReady()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sse_relay_build_info',
      help: 'Always 1; the labels name the sse-relay version and the Node.js version it runs on.',
      labelNames: ['version', 'node_version'],
      registers,
    }).set({ version: packageVersion(), node_version: process.versions.node }, 1);
    hub.observe(this);
  }

  /** Follows acknowledged consumers: acknowledgements, and the consumers connected now. */
  observeConsumers(consumers: Consumers): void {
    consumers.observe(this);
    new Gauge({
      name: 'sse_relay_consumers_connected',
      help: 'Acknowledged consumers with a stream open on this hub process.',
      registers: [this.registry],
      collect() {
        this.set(consumers.connectedCount);
      },
    });
  }

  acknowledged(): void {
    this.consumerAcksTotal.inc();
  }

  published(_message: Message, appendMs: number): void {
    this.publishedCount++;
    this.appendLatency.observe(appendMs / 1000);
  }

  dispatched(_message: Message, lagMs: number): void {
    this.dispatchLag.observe(lagMs / 1000);
  }

  delivered(count: number): void {
    this.deliveredCount += count;
  }

  private takePublished(): number {
    const count = this.publishedCount;
    this.publishedCount = 0;
    return count;
  }

  private takeDelivered(): number {
    const count = this.deliveredCount;
    this.deliveredCount = 0;
    return count;
  }

  replayed(count: number): void {
    if (count > 0) this.replayedTotal.inc(count);
  }

  evicted(): void {
    this.droppedTotal.inc();
  }

  skipped(count: number): void {
    this.skippedTotal.inc(count);
  }

  conflated(count: number): void {
    this.conflatedTotal.inc(count);
  }

  backlog(bytes: number): void {
    if (bytes > this.backlogPeak) this.backlogPeak = bytes;
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
