import { MERCURE_PATH } from './discovery.js';

/** The subscriptions API, and the topic prefix of subscription events. */
export const SUBSCRIPTIONS_PATH = `${MERCURE_PATH}/subscriptions`;

/** Mercure's subscription document (spec "Subscription Events"). */
export interface SubscriptionDocument {
  readonly id: string;
  readonly type: 'subscription';
  readonly match_type: string;
  readonly match: string;
  readonly subscriber: string;
  readonly active: boolean;
  readonly payload?: unknown;
}

/** One matcher's collection: `match_type` and `match` as the API path names them. */
export interface MatcherFilter {
  readonly matchType: string;
  readonly match: string;
}

/**
 * RFC 6570 simple expansion of one variable: every character outside `unreserved` is
 * percent-encoded, once, `%` included (`encodeURIComponent` leaves `!'()*`, which are reserved).
 */
export function expandVariable(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `/.well-known/mercure/subscriptions/{match_type}/{match}`, expanded: the id of one matcher's collection. */
export function matcherCollectionId({ matchType, match }: MatcherFilter): string {
  return `${SUBSCRIPTIONS_PATH}/${expandVariable(matchType)}/${expandVariable(match)}`;
}

/** `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`, expanded. */
export function subscriptionTopic(matchType: string, match: string, subscriber: string): string {
  return `${matcherCollectionId({ matchType, match })}/${expandVariable(subscriber)}`;
}
