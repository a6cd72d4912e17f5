import type { Message } from './message.js';

/**
 * Where a subscription's messages go: the protocol adapter's stream. `deliver` receives the
 * message and its frame, encoded once for all subscribers. A sink that can take no more closes
 * itself and reports `closed`.
 */
export interface SubscriberSink {
  deliver(message: Message, frame: Buffer): void;
  readonly closed: boolean;
}

/** Decides whether a message is for a subscription (topic matching, authorisation). */
export interface SubscriptionSelector {
  /** Exact topics this subscription listens to, used to index it; undefined: every topic. */
  readonly topics?: readonly string[] | undefined;
  /** Extra test applied after the topic index (e.g. Mercure matchers, private updates). */
  readonly accepts?: ((message: Message) => boolean) | undefined;
}

type SubscriptionState = 'replaying' | 'live' | 'closed';

/**
 * One client listening. While its history is being replayed, live messages are held in a
 * bounded buffer; once replay is done the buffer is drained, skipping every message that replay
 * already sent, so the client sees each message once and in order.
 */
export class Subscription {
  state: SubscriptionState = 'replaying';
  /** Highest seq delivered: deduplicates replay against live and multi-topic messages. */
  lastSeq = 0;
  private held: Message[] = [];

  constructor(
    readonly selector: SubscriptionSelector,
    readonly sink: SubscriberSink,
    private readonly maxHeld: number,
  ) {}

  /** Live dispatch: deliver now, or hold while replaying. Returns false when the sink closed. */
  offer(message: Message, frame: () => Buffer): boolean {
    if (this.state === 'closed' || this.sink.closed) return false;
    if (message.seq <= this.lastSeq) return true;
    if (this.selector.accepts && !this.selector.accepts(message)) return true;
    if (this.state === 'replaying') {
      if (this.held.length >= this.maxHeld) return false;
      this.held.push(message);
      return true;
    }
    this.lastSeq = message.seq;
    this.sink.deliver(message, frame());
    return !this.sink.closed;
  }

  /** Replay: deliver a stored message directly (skipping what is already sent). */
  replay(message: Message, frame: Buffer): boolean {
    if (this.state === 'closed' || this.sink.closed) return false;
    if (message.seq <= this.lastSeq) return true;
    if (this.selector.accepts && !this.selector.accepts(message)) return true;
    this.lastSeq = message.seq;
    this.sink.deliver(message, frame);
    return !this.sink.closed;
  }

  /** Ends replay: sends what was held during it (skipping duplicates) and goes live. */
  goLive(encode: (message: Message) => Buffer): void {
    if (this.state !== 'replaying') return;
    const held = this.held;
    this.held = [];
    for (const message of held) {
      if (!this.replay(message, encode(message))) break;
    }
    if (this.state === 'replaying') this.state = 'live';
  }

  markClosed(): void {
    this.state = 'closed';
    this.held = [];
  }
}
