/**
 * What a verified token allows: topics it may publish to and subscribe to (private updates).
 *
 * - RFC 9068 tokens: the `authorization_details` claim (RFC 9396). Entries of type
 *   `https://mercure.rocks/authorization-detail` (or the short `mercure`) carry `actions`
 *   (`publish`, `subscribe`) and `topics`, an array of `{match, match_type?}` objects with
 *   `match_type` `exact` (default) or `urlpattern`; `{match: "*"}` is every topic. Entries of
 *   other types are ignored (a token may serve several resources); one malformed Mercure entry
 *   invalidates the whole token.
 * - legacy tokens: the `mercure` claim, `{publish: [...], subscribe: [...], payload}`, whose
 *   strings are hub 0.x topic selectors: `*`, exact topics or RFC 6570 URI templates.
 */
import type { JWTPayload } from 'jose';
import { RelayError } from '../hub/errors.js';
import { TopicMatcherSet, type MatcherSpec, type MatcherType } from '../hub/topic-matcher.js';
import type { TokenProfile } from './jwt.js';
import { invalidToken } from './jwt.js';

/** Mercure's RFC 9396 authorization detail types. */
export const AUTHORIZATION_DETAIL_TYPES: ReadonlySet<string> = new Set(['https://mercure.rocks/authorization-detail', 'mercure']);

/** Bounds on what one token may carry (matching cost grows with them). */
export const MAX_AUTHORIZATION_DETAILS = 100;
export const MAX_DETAIL_TOPICS = 100;
export const MAX_LEGACY_SELECTORS = 1000;

/** An action a grant allows. */
export type Action = 'publish' | 'subscribe';

/** The topics a token may publish to and receive private updates of. */
export class Grants {
  constructor(
    readonly publish: TopicMatcherSet,
    readonly subscribe: TopicMatcherSet,
    /** The subscriber's `payload`, if the token carries one (kept for subscription events). */
    readonly payload?: unknown,
    /**
     * RFC 9068 tokens: the `payload` of each `subscribe` detail carrying one, with that detail's
     * topics, in token order.
     */
    private readonly payloads?: readonly { readonly topics: TopicMatcherSet; readonly payload: unknown }[],
  ) {}

  /**
   * The payload of a subscription with matcher `match` (Mercure's "Payloads"): that of the first
   * `subscribe` detail whose topics match `match` read as a topic (`*` matches every one);
   * for a legacy token, its one `mercure.payload`.
   */
  payloadFor(match: string): unknown {
    if (this.payloads === undefined) return this.payload;
    return this.payloads.find((entry) => entry.topics.testAny([match]))?.payload;
  }

  /** True when the token grants `action` on at least one of `topics`. */
  allowsAny(action: Action, topics: readonly string[]): boolean {
    return (action === 'publish' ? this.publish : this.subscribe).testAny(topics);
  }

  /** True when the token grants `action` on every one of `topics`. */
  allowsEvery(action: Action, topics: readonly string[]): boolean {
    return (action === 'publish' ? this.publish : this.subscribe).testEvery(topics);
  }
}

/**
 * Reads the grants of a verified token. Relative URL patterns resolve against `baseUrl`.
 * Throws HUB_ERR_TOKEN_INVALID when the grant claims are malformed.
 */
export function grantsFromClaims(profile: TokenProfile, claims: JWTPayload, baseUrl?: string): Grants {
  try {
    return profile === 'rfc9068' ? fromAuthorizationDetails(claims.authorization_details, baseUrl) : fromMercureClaim(claims.mercure);
  } catch (error) {
    // An invalid URL pattern in a grant is a bad token, not a bad request.
    if (error instanceof RelayError && error.code === 'HUB_ERR_MATCHER_INVALID') throw invalidToken('a URL pattern of its grants is not one this hub accepts (see HUB_ERR_MATCHER_INVALID)');
    throw error;
  }
}

function fromAuthorizationDetails(details: unknown, baseUrl: string | undefined): Grants {
  if (details === undefined) return new Grants(TopicMatcherSet.NONE, TopicMatcherSet.NONE);
  if (!Array.isArray(details) || details.length > MAX_AUTHORIZATION_DETAILS) throw invalidToken(`its authorization_details is not an array of at most ${MAX_AUTHORIZATION_DETAILS} entries`);
  const publish: MatcherSpec[] = [];
  const subscribe: MatcherSpec[] = [];
  const payloads: { topics: TopicMatcherSet; payload: unknown }[] = [];
  for (const detail of details) {
    if (!isObject(detail)) throw invalidToken('an entry of its authorization_details is not an object');
    if (typeof detail.type !== 'string' || !AUTHORIZATION_DETAIL_TYPES.has(detail.type)) continue;
    const { actions, topics } = detail;
    if (!Array.isArray(actions) || actions.length === 0 || !actions.every((a) => a === 'publish' || a === 'subscribe')) throw invalidToken('a Mercure authorization detail has actions other than a non-empty list of publish and subscribe');
    if (!Array.isArray(topics) || topics.length === 0 || topics.length > MAX_DETAIL_TOPICS) throw invalidToken(`a Mercure authorization detail has no topics, or more than ${MAX_DETAIL_TOPICS}`);
    const specs = topics.map((topic): MatcherSpec => {
      // Bare strings are refused: a matcher is always an object in this profile.
      if (!isObject(topic) || typeof topic.match !== 'string' || topic.match.length === 0) throw invalidToken('a topic of a Mercure authorization detail is not an object with a non-empty match');
      const type = topic.match_type ?? 'exact';
      if (type !== 'exact' && type !== 'urlpattern') throw invalidToken('a topic of a Mercure authorization detail has a match_type other than exact and urlpattern');
      return { type: type as MatcherType, match: topic.match };
    });
    if (actions.includes('publish')) publish.push(...specs);
    if (actions.includes('subscribe')) {
      subscribe.push(...specs);
      if (detail.payload !== undefined) payloads.push({ topics: TopicMatcherSet.compile(specs, baseUrl), payload: detail.payload });
    }
  }
  return new Grants(TopicMatcherSet.compile(publish, baseUrl), TopicMatcherSet.compile(subscribe, baseUrl), payloads[0]?.payload, payloads);
}

function fromMercureClaim(claim: unknown): Grants {
  if (claim === undefined) return new Grants(TopicMatcherSet.NONE, TopicMatcherSet.NONE);
  if (!isObject(claim)) throw invalidToken('its mercure claim is not an object');
  const selectors = (value: unknown): TopicMatcherSet => {
    if (value === undefined || value === null) return TopicMatcherSet.NONE;
    if (!Array.isArray(value) || value.length > MAX_LEGACY_SELECTORS || !value.every((s) => typeof s === 'string')) throw invalidToken(`its mercure.publish or mercure.subscribe is not a list of at most ${MAX_LEGACY_SELECTORS} strings`);
    return TopicMatcherSet.compile(value.map((match: string): MatcherSpec => ({ type: 'uritemplate', match })));
  };
  return new Grants(selectors(claim.publish), selectors(claim.subscribe), claim.payload);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
