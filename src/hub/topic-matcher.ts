/**
 * Topic matchers: the rules a subscription (which topics does the client want?) and an
 * authorization grant (which topics may it use?) share. Kinds, as the Mercure protocol names
 * them: `exact` (string equality; `*` is the wildcard that matches every topic), `urlpattern`
 * (WHATWG URL Pattern) and, for legacy hub 0.x selectors, `uritemplate` (RFC 6570).
 *
 * Every kind matches in bounded time: exact lookups are set lookups, URI templates run as an
 * NFA (linear), URL patterns are refused when they could backtrack badly (see `url-pattern.ts`).
 */
import { RelayError } from './errors.js';
import { UriTemplate } from './uri-template.js';
import { BoundedUrlPattern, UrlPatternRejected } from './url-pattern.js';

/** How a matcher compares topics. */
export type MatcherType = 'exact' | 'urlpattern' | 'uritemplate';

/** One selector or grant entry, as received. */
export interface MatcherSpec {
  readonly type: MatcherType;
  readonly match: string;
}

/** The wildcard selector: every topic. */
export const WILDCARD = '*';

/**
 * A compiled set of matchers, tested as a logical OR. Exact matchers are kept in a set (one
 * lookup whatever their number); the others are tested one by one.
 */
export class TopicMatcherSet {
  private constructor(
    /** True when `*` is among the matchers. */
    readonly matchesEverything: boolean,
    /** The exact topics, for indexing a subscription by topic. */
    readonly exactTopics: ReadonlySet<string>,
    private readonly patterns: readonly { test(topic: string): boolean }[],
  ) {}

  /** An empty set: matches nothing. */
  static readonly NONE = new TopicMatcherSet(false, new Set(), []);
  /** Matches every topic. */
  static readonly ALL = new TopicMatcherSet(true, new Set(), []);

  /**
   * Compiles matchers. `*` is recognised as the wildcard before the type is looked at (clients
   * send it with every kind). Relative URL patterns resolve against `baseUrl`. Throws
   * HUB_ERR_MATCHER_INVALID for a pattern that is invalid or too costly to evaluate.
   */
  static compile(specs: readonly MatcherSpec[], baseUrl?: string): TopicMatcherSet {
    let everything = false;
    const exact = new Set<string>();
    const patterns: { test(topic: string): boolean }[] = [];
    for (const spec of specs) {
      if (spec.match === WILDCARD) {
        everything = true;
        continue;
      }
      switch (spec.type) {
        case 'exact':
          exact.add(spec.match);
          break;
        case 'uritemplate': {
          // A selector with no (valid) expression is a plain topic, as in Mercure 0.x.
          const template = UriTemplate.parse(spec.match);
          if (template) patterns.push({ test: (topic) => template.matches(topic) });
          else exact.add(spec.match);
          break;
        }
        case 'urlpattern':
          try {
            patterns.push(BoundedUrlPattern.compile(spec.match, baseUrl));
          } catch (error) {
            if (error instanceof UrlPatternRejected) throw new RelayError('HUB_ERR_MATCHER_INVALID', error.message);
            throw error;
          }
          break;
      }
    }
    return new TopicMatcherSet(everything, exact, patterns);
  }

  /** True when only exact topics are matched (the subscription can be indexed by topic). */
  get exactOnly(): boolean {
    return !this.matchesEverything && this.patterns.length === 0;
  }

  /** True when at least one matcher accepts `topic`. */
  test(topic: string): boolean {
    if (this.matchesEverything || this.exactTopics.has(topic)) return true;
    for (const pattern of this.patterns) if (pattern.test(topic)) return true;
    return false;
  }

  /** True when at least one matcher accepts at least one of `topics`. */
  testAny(topics: readonly string[]): boolean {
    for (const topic of topics) if (this.test(topic)) return true;
    return false;
  }

  /** True when every one of `topics` is accepted. */
  testEvery(topics: readonly string[]): boolean {
    for (const topic of topics) if (!this.test(topic)) return false;
    return true;
  }
}
