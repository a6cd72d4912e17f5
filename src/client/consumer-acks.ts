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
export class ConsumerAcks {
  private latest: string | undefined;
  private waiting: Waiting[] = [];
  private inFlight: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly target: ConsumerAckTarget,
    /** How long an automatic acknowledgement waits for newer ones to join it. */
    private readonly delayMs: number,
  ) {}

  /** Acknowledges up to `id` now (joining a request in flight); resolves once the hub committed it. */
  ack(id: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.latest = id;
      this.waiting.push({ resolve, reject });
      this.send();
    });
  }

  /** Acknowledges up to `id` within `delayMs`, with whatever comes meanwhile; failures are reported, not thrown. */
  later(id: string, onError: (error: unknown) => void): void {
    this.latest = id;
    this.waiting.push({ resolve: () => {}, reject: onError });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, this.delayMs);
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
