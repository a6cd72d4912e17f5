/**
 * Topic matchers: the rules a subscription (which topics does the client want?) and an
 * authorization grant (which topics may it use?) share. Kinds, as the Mercure protocol names
 * them: `exact` (string equality; `*` is the wildcard that matches every topic), `urlpattern`
 * (WHATWG URL Pattern) and, for legacy hub 0.x selectors, `uritemplate` (RFC 6570).
 *
 * Every kind matches in bounded time: exact lookups are set lookups, URI templates run as an
 * NFA (linear), URL patterns are refused when they could backtrack badly (see `url-pattern.ts`).
 */
import { TopicPattern } from './topic-pattern.js';

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
 * lookup whatever their number); the patterns are shared, interned by source (see
 * `topic-pattern.ts`). Identical selector sets have one {@link key}, by which the hub groups the
 * subscriptions that use them. (The sets themselves are not interned: the hub's group holds one
 * while it has subscriptions, and a cache of sets would keep up to 100 exact topics each alive
 * after their subscriptions ended.)
 */
export class TopicMatcherSet {
  private constructor(
    /** True when `*` is among the matchers. */
    readonly matchesEverything: boolean,
    /** The exact topics, for indexing a subscription by topic. */
    readonly exactTopics: ReadonlySet<string>,
    private readonly patterns: readonly TopicPattern[],
    /** Equal keys mean equal sets (order and duplicates do not count). */
    readonly key: string,
  ) {}

  /** An empty set: matches nothing. */
  static readonly NONE = new TopicMatcherSet(false, new Set(), [], '');
  /** Matches every topic. */
  static readonly ALL = new TopicMatcherSet(true, new Set(), [], '*');

  /**
   * Compiles matchers. `*` is recognised as the wildcard before the type is looked at (clients
   * send it with every kind). Relative URL patterns resolve against `baseUrl`. Throws
   * HUB_ERR_MATCHER_INVALID for a pattern that is invalid or too costly to evaluate.
   */
  static compile(specs: readonly MatcherSpec[], baseUrl?: string): TopicMatcherSet {
    let everything = false;
    const exact = new Set<string>();
    const patterns = new Map<string, TopicPattern>();
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
          const template = TopicPattern.uriTemplate(spec.match);
          if (template) patterns.set(template.key, template);
          else exact.add(spec.match);
          break;
        }
        case 'urlpattern': {
          const pattern = TopicPattern.urlPattern(spec.match, baseUrl);
          patterns.set(pattern.key, pattern);
          break;
        }
      }
    }
    // `*` matches everything whatever comes beside it.
    if (everything) return TopicMatcherSet.ALL;
    if (exact.size === 0 && patterns.size === 0) return TopicMatcherSet.NONE;
    // JSON: unambiguous whatever the sources contain.
    const key = JSON.stringify([...[...exact].map((t) => JSON.stringify(['exact', t])), ...patterns.keys()].sort());
    return new TopicMatcherSet(false, exact, [...patterns.values()], key);
  }

  /** URL patterns and URI templates in the set (what `--max-subscription-patterns` bounds). */
  get patternCount(): number {
    return this.patterns.length;
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

  /**
   * True when at least one matcher accepts at least one of `topics`. Each shared pattern
   * remembers its answer for the last `topics` array (see `TopicPattern.testAny`): callers must
   * not change an array after passing it (messages' topics never change).
   */
  testAny(topics: readonly string[]): boolean {
    if (this.matchesEverything) return true;
    for (const topic of topics) if (this.exactTopics.has(topic)) return true;
    for (const pattern of this.patterns) if (pattern.testAny(topics)) return true;
    return false;
  }

  /** True when every one of `topics` is accepted. */
  testEvery(topics: readonly string[]): boolean {
    for (const topic of topics) if (!this.test(topic)) return false;
    return true;
  }
}
