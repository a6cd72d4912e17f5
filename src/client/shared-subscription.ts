import { resolveHeaders } from './endpoints.js';
import { RelayClientError } from './errors.js';
import { EventQueue } from './event-queue.js';
import { SeenEvents } from './seen-events.js';
import type { OpenInfo, RelayEvent, SubscribeOptions, Subscription } from './subscribe.js';
import { endWaiters, subscriptionIterator, type Waiter } from './waiters.js';

/** What a direct connection tells its owner beyond the public callbacks. */
export interface ConnectionHooks {
  /** The stream's position changed without an event (the greeting's id, a leading frame's). */
  onPosition?: (lastEventId: string) => void;
}

/** Opens one real connection to the hub (a tab-local subscription). */
export type OpenConnection = (options: SubscribeOptions, hooks: ConnectionHooks) => Subscription;

/** An error as it crosses tabs (structured clone keeps no class). */
interface ErrorData {
  code: string;
  message: string;
  status?: number;
}

/**
 * What tabs say to each other on the subscription's BroadcastChannel. Only the leader sends
 * `event`, `position`, `open`, `retry` and `failed`; any tab may send `hello` (the leader answers
 * with `open` and `position` when its stream is open). `open` names the connection (leader and
 * attempt), so the answer to one tab's `hello` is not a second open for the tabs that saw it.
 */
type TabMessage =
  | { kind: 'event'; event: RelayEvent }
  | { kind: 'position'; lastEventId: string }
  | { kind: 'open'; lastEventId: string | undefined; connection: string }
  | { kind: 'retry'; error: ErrorData; delayMs: number; attempt: number; everOpened: boolean }
  | { kind: 'failed'; error: ErrorData }
  | { kind: 'hello' };

/** Web Locks and BroadcastChannel, which sharing needs; where either is missing each tab connects. */
export function tabSharingAvailable(): boolean {
  return (
    typeof BroadcastChannel === 'function' &&
    typeof navigator !== 'undefined' &&
    typeof (navigator as Navigator | undefined)?.locks?.request === 'function'
  );
}


/**
 * A subscription shared by every tab of an origin that subscribes to the same stream URL. The
 * tab holding the Web Lock named after that URL is the leader: it opens the one connection and
 * posts every event, position and state change on a BroadcastChannel of the same name. The other
 * tabs wait in the lock's queue and deliver what the channel brings. When the leader's tab
 * closes (or it calls `close()`), the browser grants the lock to the next tab, which connects
 * with `Last-Event-ID` set to the last id it saw; all tabs see the same channel messages in the
 * same order, so that is the last id any tab saw. Every tab drops an event it already delivered
 * (same id, type and data), so a takeover that replays one shows it once.
 *
 * Guarantees: events reach each tab in the stream's order, each id once. A tab that does not take
 * its events cannot slow the others: past `maxBufferedEvents` waiting in it, it alone ends with
 * `CLIENT_ERR_TAB_BEHIND` (a leader then hands over).
 */
/**
 * The lock and channel name of a shared stream: its URL and the headers it is opened with (as
 * they are when the subscription starts), so that tabs holding different tokens (another
 * account, a narrower grant) never receive each other's events. The headers are hashed, not
 * spelled out: lock names show in the browser's tools.
 */
export function sharedStreamName(streamUrl: URL, headers: Readonly<Record<string, string>>): string {
  const entries = Object.entries(headers)
    .map(([name, value]) => [name.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return `sse-relay:${streamUrl.href}`;
  // FNV-1a (32 bits) twice, with two offsets: a name, not a secret, so no crypto is needed.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const char of JSON.stringify(entries)) {
    const code = char.charCodeAt(0);
    h1 = Math.imul(h1 ^ code, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ code, 0x811c9dc5) >>> 0;
  }
  return `sse-relay:${streamUrl.href}#${h1.toString(36)}${h2.toString(36)}`;
}

export class SharedSubscription implements Subscription {
  private readonly channel: BroadcastChannel;
  private readonly lockName: string;
  /** Aborts the lock request of a tab that closes while it waits to lead. */
  private readonly lockRequest = new AbortController();
  private readonly queue = new EventQueue<RelayEvent>();
  private readonly waiters: Waiter[] = [];
  private readonly seen = new SeenEvents();
  private readonly maxBuffered: number;
  private currentLastEventId: string | undefined;
  private state: 'open' | 'closed' | 'failed' = 'open';
  private failure: RelayClientError | undefined;
  private failureDelivered = false;
  private iterating = false;
  /** This tab has seen the shared stream open (so the next open is a reconnection to it). */
  private everOpened = false;
  /** Set while this tab leads: its connection, and how to end its turn. */
  private connection: Subscription | undefined;
  private connectionOpen = false;
  /** Names this tab's connections while it leads: `<leader>:<attempt>`. */
  private readonly leaderName = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  private connectionAttempt = 0;
  /** The last connection this tab reported open (`onOpen` once per connection). */
  private openConnectionName: string | undefined;
  private endLeadership: (() => void) | undefined;

  constructor(
    private readonly options: SubscribeOptions,
    streamUrl: URL,
    private readonly openConnection: OpenConnection,
  ) {
    this.currentLastEventId = options.lastEventId;
    this.maxBuffered = Math.max(1, options.maxBufferedEvents ?? 1000);
    this.lockName = sharedStreamName(streamUrl, resolveHeaders(options.headers));
    this.channel = new BroadcastChannel(this.lockName);
    const { signal } = options;
    if (signal?.aborted) {
      this.state = 'closed';
      this.channel.close();
      return;
    }
    signal?.addEventListener('abort', this.close, { once: true });
    this.channel.onmessage = (message: MessageEvent<TabMessage>) => this.receive(message.data);
    this.post({ kind: 'hello' });
    navigator.locks
      .request(this.lockName, { signal: this.lockRequest.signal }, () => this.lead())
      .catch(() => undefined); // aborted by close(): this tab no longer wants to lead
  }

  get lastEventId(): string | undefined {
    return this.currentLastEventId;
  }

  get closed(): boolean {
    return this.state !== 'open';
  }

  /** Shared subscriptions have no consumer (subscribe() refuses the combination). */
  ack(): Promise<void> {
    return Promise.reject(new RelayClientError('CLIENT_ERR_INVALID_OPTIONS', 'ack() needs a subscription with the consumer option'));
  }

  /** In a follower: detaches this tab. In the leader: closes its connection and hands over. */
  readonly close = (): void => {
    if (this.state === 'open') this.state = 'closed';
    this.queue.clear();
    this.shutdown();
  };

  [Symbol.asyncIterator](): AsyncIterator<RelayEvent> {
    if (this.iterating) throw new TypeError('A subscription can be iterated only once');
    this.iterating = true;
    return subscriptionIterator(() => this.next(), this.close);
  }

  /** Runs while this tab holds the lock; resolving it releases the lock to the next tab. */
  private lead(): Promise<void> {
    if (this.state !== 'open') return Promise.resolve();
    const turn = new Promise<void>((resolve) => (this.endLeadership = resolve));
    const { options } = this;
    this.connection = this.openConnection(
      {
        ...options,
        shareAcrossTabs: false,
        signal: undefined,
        lastEventId: this.currentLastEventId,
        onOpen: ({ lastEventId }) => {
          this.connectionOpen = true;
          const connection = `${this.leaderName}:${++this.connectionAttempt}`;
          this.post({ kind: 'open', lastEventId, connection });
          this.opened(lastEventId, connection);
        },
        onMessage: (event) => {
          // A repeat (after a takeover from an older position) is dropped here for every tab.
          if (!this.firstTime(event)) return;
          this.post({ kind: 'event', event });
          this.deliver(event);
        },
        onRetry: (info) => {
          this.connectionOpen = false;
          const error = errorData(info.error);
          this.post({ kind: 'retry', error, delayMs: info.delayMs, attempt: info.attempt, everOpened: info.everOpened });
          invoke(options.onRetry, { ...info, everOpened: this.everOpened || info.everOpened });
        },
        onError: (error) => {
          this.post({ kind: 'failed', error: errorData(error) });
          this.fail(error);
        },
      },
      {
        onPosition: (lastEventId) => {
          this.currentLastEventId = lastEventId;
          this.post({ kind: 'position', lastEventId });
        },
      },
    );
    return turn;
  }

  private receive(message: TabMessage): void {
    if (this.state !== 'open') return;
    switch (message.kind) {
      case 'hello':
        if (this.connection !== undefined && this.connectionOpen) {
          this.post({ kind: 'open', lastEventId: this.connection.lastEventId, connection: this.openConnectionName! });
          if (this.currentLastEventId !== undefined) this.post({ kind: 'position', lastEventId: this.currentLastEventId });
        }
        return;
      case 'event':
        if (this.firstTime(message.event)) this.deliver(message.event);
        return;
      case 'position':
        this.currentLastEventId = message.lastEventId;
        return;
      case 'open':
        this.opened(message.lastEventId, message.connection);
        return;
      case 'retry':
        invoke(this.options.onRetry, {
          error: errorFrom(message.error),
          delayMs: message.delayMs,
          attempt: message.attempt,
          everOpened: this.everOpened || message.everOpened,
        });
        return;
      case 'failed':
        this.fail(errorFrom(message.error));
        return;
    }
  }

  private opened(lastEventId: string | undefined, connection: string): void {
    if (connection === this.openConnectionName) return;
    this.openConnectionName = connection;
    const reconnect = this.everOpened;
    this.everOpened = true;
    invoke(this.options.onOpen, { reconnect, lastEventId } satisfies OpenInfo);
  }

  /** Records the event as seen and moves the position; false for a repeat. */
  private firstTime(event: RelayEvent): boolean {
    if (!this.seen.firstTime(event)) return false;
    if (event.id !== undefined) this.currentLastEventId = event.id;
    return true;
  }

  private deliver(event: RelayEvent): void {
    if (this.state !== 'open') return;
    invoke(this.options.onMessage, event);
    if (this.state !== 'open' || (this.options.onMessage !== undefined && !this.iterating)) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve({ done: false, value: event });
      return;
    }
    if (this.queue.size >= this.maxBuffered) {
      this.fail(new RelayClientError('CLIENT_ERR_TAB_BEHIND', `More than ${this.maxBuffered} events waited in this tab (maxBufferedEvents); a shared stream cannot wait for one tab`));
      return;
    }
    this.queue.push(event);
  }

  private next(): Promise<IteratorResult<RelayEvent>> {
    const event = this.queue.shift();
    if (event !== undefined) return Promise.resolve({ done: false, value: event });
    if (this.state === 'failed' && !this.failureDelivered) {
      this.failureDelivered = true;
      return Promise.reject(this.failure);
    }
    if (this.state !== 'open') return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private fail(error: RelayClientError): void {
    if (this.state !== 'open') return;
    this.state = 'failed';
    this.failure = error;
    if (!this.iterating && this.options.onError !== undefined) this.failureDelivered = true;
    this.shutdown();
    invoke(this.options.onError, error);
  }

  /** Leaves the channel and the lock queue; a leader closes its connection and hands over. */
  private shutdown(): void {
    this.options.signal?.removeEventListener('abort', this.close);
    this.channel.close();
    this.lockRequest.abort();
    this.connection?.close();
    this.connection = undefined;
    this.endLeadership?.();
    this.endLeadership = undefined;
    const unreported = this.state === 'failed' && !this.failureDelivered ? this.failure : undefined;
    if (endWaiters(this.waiters.splice(0), unreported)) this.failureDelivered = true;
  }

  private post(message: TabMessage): void {
    if (this.state === 'open') this.channel.postMessage(message);
  }
}

function errorData(error: RelayClientError): ErrorData {
  const data: ErrorData = { code: error.code, message: error.message };
  if (error.status !== undefined) data.status = error.status;
  return data;
}

function errorFrom(data: ErrorData): RelayClientError {
  return new RelayClientError(data.code, data.message, data.status === undefined ? undefined : { status: data.status });
}

/** Listener errors must not break the relay: report them the way EventTarget does. */
function invoke<A>(callback: ((arg: A) => void) | undefined, arg: A): void {
  if (callback === undefined) return;
  try {
    callback(arg);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
