import { consumerAckUrl, type HeadersOption } from './endpoints.js';
import { postJson } from './publish.js';

/** Where and how acknowledgements are sent. */
export interface ConsumerAckTarget {
  readonly url: string;
  readonly id: string;
  readonly consumer: string;
  readonly headers?: HeadersOption | undefined;
  readonly fetch?: typeof fetch | undefined;
}

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Acknowledgements of one consumer, sent one request at a time. An acknowledgement covers
 * every message before it, so requests made while one is in flight (or, for automatic ones,
 * within `delayMs`) collapse into one for the newest id, and every caller waiting is settled
 * by it: a burst of events costs one request, not one each.
 */
/** Ids whose arrival order is remembered: an id older than these is taken for older than any. */
const REMEMBERED_ARRIVALS = 10_000;

export class ConsumerAcks {
  private latest: string | undefined;
  /** Arrival order of {@link latest}: a later request for an earlier event must not replace it. */
  private latestOrder = -1;
  /** Arrival order of the last events received, by id (ids are not ordered by themselves). */
  private readonly arrivals = new Map<string, number>();
  private arrived = 0;
  private waiting: Waiting[] = [];
  private inFlight: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly target: ConsumerAckTarget,
    /** How long an automatic acknowledgement waits for newer ones to join it. */
    private readonly delayMs: number,
  ) {}

  /** Records that the event with `id` arrived, after every event recorded before. */
  received(id: string): void {
    this.arrivals.delete(id);
    this.arrivals.set(id, ++this.arrived);
    if (this.arrivals.size > REMEMBERED_ARRIVALS) this.arrivals.delete(this.arrivals.keys().next().value!);
  }

  /** Acknowledges up to `id` now (joining a request in flight); resolves once the hub committed it. */
  ack(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.want(id);
      this.waiting.push({ resolve, reject });
      this.send();
    });
  }

  /** Acknowledges up to `id` within `delayMs`, with whatever comes meanwhile; failures are reported, not thrown. */
  later(id: string, onError: (error: unknown) => void): void {
    this.want(id);
    this.waiting.push({ resolve: () => {}, reject: onError });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, this.delayMs);
  }

  /** Makes `id` the one to send unless a later event's is already waiting (which covers it). */
  private want(id: string): void {
    const order = this.arrivals.get(id) ?? 0;
    if (this.latest !== undefined && order < this.latestOrder) return;
    this.latest = id;
    this.latestOrder = order;
  }

  /** Sends what is waiting at once (on close). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.send();
  }

  private send(): void {
    if (this.inFlight || this.latest === undefined) return;
    const id = this.latest;
    const settled = this.waiting;
    this.latest = undefined;
    this.latestOrder = -1;
    this.waiting = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const { url, id: topic, consumer, headers, fetch } = this.target;
    this.inFlight = postJson({ url, headers, fetch }, consumerAckUrl(url, topic, consumer), { id }).then(
      () => {
        for (const w of settled) w.resolve();
      },
      (error: unknown) => {
        for (const w of settled) w.reject(error);
      },
    ).finally(() => {
      this.inFlight = undefined;
      this.send();
    });
  }
}
