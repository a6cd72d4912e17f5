import type { Message } from '../hub/message.js';
import type { SubscriptionSelector } from '../hub/subscription.js';
import type { TopicMatcherSet } from '../hub/topic-matcher.js';
import type { Authorizer, Principal } from './authorizer.js';

/** The APIs a subscription comes from (a label of the subscription metrics). */
export const SUBSCRIPTION_APIS = ['messages', 'mercure'] as const;

/**
 * What one subscriber receives: its topics (indexed by the hub) or a set of matchers (Mercure
 * patterns, which the hub tests once per message for all subscriptions sharing them), and the
 * private-update check against its token.
 *
 * A class rather than an object with an `accepts` closure: the hub holds one selector per open
 * subscription, and a closure plus its context cost about 110 bytes more per idle connection
 * (heap snapshots at 5,000 streams), which is what limits how many subscribers a process holds.
 */
export class AuthorizedSelector implements SubscriptionSelector {
  constructor(
    readonly api: (typeof SUBSCRIPTION_APIS)[number],
    /** Exact topics to index the subscription by; undefined: every topic (then `filter`). */
    readonly topics: readonly string[] | undefined,
    private readonly authorizer: Authorizer,
    private readonly principal: Principal,
    /**
     * With `topics` undefined, the matchers (identical sets share a key), which the hub tests
     * once per message for all the subscriptions with that key; undefined: every topic.
     */
    readonly filter?: TopicMatcherSet | undefined,
  ) {}

  accepts(message: Message): boolean {
    return this.authorizer.mayReceive(this.principal, message);
  }
}
