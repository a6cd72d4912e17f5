import type { MatcherFilter, SubscriptionDocument } from './subscription-document.js';

/** What a shared registry tells the node that announces subscription events. */
export interface RegistryListener {
  /** Subscriptions of a node taken for dead, which this node took over: to announce as ended. */
  orphaned(documents: readonly SubscriptionDocument[]): void;
  /**
   * This node's own subscriptions, written again after another node had taken this one for
   * dead (and announced them ended): to announce as active again.
   */
  reinstated(documents: readonly SubscriptionDocument[]): void;
}

/**
 * Where the active subscriptions are kept, for the subscriptions API to list. Guarantees every
 * implementation keeps:
 *
 * - **Visible before announced.** `add` and `remove` resolve once every node's `list` and `get`
 *   reflect the change (or the change failed and was logged by the caller): the caller
 *   publishes the subscription event after that, so a client that lists, then subscribes to
 *   the events from a cursor read before the list, misses no change.
 * - **Bounded answers.** `list` returns at most `limit` documents.
 * - **Crashed nodes** (shared registries): a node that stops heartbeating is left out of
 *   `list` and `get` within a bound the implementation states, and one surviving node is
 *   told, through {@link RegistryListener.orphaned}, to announce its subscriptions ended.
 */
export interface SubscriptionRegistry {
  /**
   * True when, at shutdown, the subscriptions still open are handed to the other nodes (which
   * announce them ended) instead of being removed here: the hub cannot publish any more then.
   */
  readonly handsOverAtShutdown: boolean;
  /** Sets the one listener of a shared registry (a local one never calls it). */
  setListener(listener: RegistryListener): void;
  /** Starts (connects, heartbeats); never rejects: a shared store that is away is retried. */
  open(): Promise<void>;
  add(documents: readonly SubscriptionDocument[]): Promise<void>;
  remove(documents: readonly SubscriptionDocument[]): Promise<void>;
  /** Every active subscription, or those of one matcher; at most `limit`. */
  list(matcher: MatcherFilter | undefined, limit: number): Promise<SubscriptionDocument[]>;
  /** One active subscription by its id (its topic). */
  get(id: string): Promise<SubscriptionDocument | undefined>;
  close(): Promise<void>;
}

function matcherKey(matchType: string, match: string): string {
  return `${matchType}\n${match}`;
}

/** The subscriptions of this process only: for the memory and SQLite stores (one hub process). */
export class LocalSubscriptionRegistry implements SubscriptionRegistry {
  readonly handsOverAtShutdown = false;
  /** Every open subscription by id (its topic). */
  private readonly documents = new Map<string, SubscriptionDocument>();
  /** The same, by matcher (`match_type` LF `match`): one matcher's collection without a scan. */
  private readonly byMatcher = new Map<string, Map<string, SubscriptionDocument>>();

  setListener(): void {}

  async open(): Promise<void> {}

  async add(documents: readonly SubscriptionDocument[]): Promise<void> {
    for (const document of documents) {
      this.documents.set(document.id, document);
      const key = matcherKey(document.match_type, document.match);
      let group = this.byMatcher.get(key);
      if (group === undefined) this.byMatcher.set(key, (group = new Map()));
      group.set(document.id, document);
    }
  }

  async remove(documents: readonly SubscriptionDocument[]): Promise<void> {
    for (const document of documents) {
      this.documents.delete(document.id);
      const key = matcherKey(document.match_type, document.match);
      const group = this.byMatcher.get(key);
      group?.delete(document.id);
      if (group?.size === 0) this.byMatcher.delete(key);
    }
  }

  async list(matcher: MatcherFilter | undefined, limit: number): Promise<SubscriptionDocument[]> {
    const source = matcher === undefined ? this.documents : this.byMatcher.get(matcherKey(matcher.matchType, matcher.match));
    const listed: SubscriptionDocument[] = [];
    if (source === undefined) return listed;
    for (const document of source.values()) {
      if (listed.length === limit) break;
      listed.push(document);
    }
    return listed;
  }

  async get(id: string): Promise<SubscriptionDocument | undefined> {
    return this.documents.get(id);
  }

  async close(): Promise<void> {}
}
