/**
 * Compiled topic patterns (URL Patterns, URI templates), interned by their source so that every
 * subscription and grant using the same pattern shares one compiled copy, and its results.
 *
 * Why: with N subscribers sharing P patterns, testing each subscriber's own copy made a publish
 * cost N × P evaluations (500 × 20 URI templates: 134 ms per publish, 33× the same fan-out on
 * exact topics, `bench/pattern-cost.ts`). Shared, a pattern is evaluated at most once per
 * published topic: results are remembered for the message being dispatched (by the identity of
 * its topics array, which every subscriber's test receives) and, across publishes, in a bounded
 * LRU of (pattern, topic) results, as Mercure's hub caches its topic-selector matches.
 *
 * Interning is process-wide: a compiled pattern depends only on its kind, source and base URL,
 * so hubs in one process (tests, embedding) can share it. Both caches are bounded; a pattern
 * evicted from the intern table stays valid for whoever holds it, and is compiled again for the
 * next one who asks (correct, just shared less).
 */
import { RelayError } from './errors.js';
import { LruCache } from './lru-cache.js';
import { UriTemplate } from './uri-template.js';
import { BoundedUrlPattern, UrlPatternRejected } from './url-pattern.js';

/**
 * Distinct compiled patterns kept for sharing beyond those in use (a compiled URL pattern is a
 * few KiB: this bounds what patterns nobody uses any more can hold).
 */
const MAX_INTERNED_PATTERNS = 1_000;
/** (pattern, topic) results remembered across publishes. */
const MAX_CACHED_RESULTS = 10_000;

const interned = new LruCache<string, TopicPattern>(MAX_INTERNED_PATTERNS);
const results = new LruCache<string, boolean>(MAX_CACHED_RESULTS);
let nextId = 0;

/** One compiled pattern, shared by everything that uses its source. */
export class TopicPattern {
  /** A short prefix for result-cache keys (cheaper to concatenate than the source). */
  private readonly id = (nextId++).toString(36);
  private lastTopics: readonly string[] | undefined;
  private lastResult = false;

  private constructor(
    /** Kind, base URL and source (as JSON): equal keys mean equal patterns. */
    readonly key: string,
    private readonly matcher: { test(topic: string): boolean },
  ) {}

  /**
   * The shared compiled pattern for a URI template, or undefined when the template has no
   * (valid) expression and so is a plain topic, as in Mercure 0.x.
   */
  static uriTemplate(source: string): TopicPattern | undefined {
    const key = JSON.stringify(['uritemplate', source]);
    const known = interned.get(key);
    if (known) return known;
    const template = UriTemplate.parse(source);
    if (!template) return undefined;
    const pattern = new TopicPattern(key, { test: (topic) => template.matches(topic) });
    interned.set(key, pattern);
    return pattern;
  }

  /** The shared compiled URL pattern. Throws HUB_ERR_MATCHER_INVALID (refusals are not cached). */
  static urlPattern(source: string, baseUrl: string | undefined): TopicPattern {
    const key = JSON.stringify(['urlpattern', baseUrl ?? null, source]);
    const known = interned.get(key);
    if (known) return known;
    let compiled: BoundedUrlPattern;
    try {
      compiled = BoundedUrlPattern.compile(source, baseUrl);
    } catch (error) {
      if (error instanceof UrlPatternRejected) throw new RelayError('HUB_ERR_MATCHER_INVALID', error.message);
      throw error;
    }
    const pattern = new TopicPattern(key, compiled);
    interned.set(key, pattern);
    return pattern;
  }

  /** True when the pattern matches `topic` (cached across publishes). */
  test(topic: string): boolean {
    const cacheKey = `${this.id}\u0000${topic}`;
    const cached = results.get(cacheKey);
    if (cached !== undefined) return cached;
    const result = this.matcher.test(topic);
    results.set(cacheKey, result);
    return result;
  }

  /**
   * True when the pattern matches one of `topics`. Every subscriber's test during one dispatch
   * gets the same (immutable) topics array of the message, so the answer for it is remembered.
   */
  testAny(topics: readonly string[]): boolean {
    if (topics === this.lastTopics) return this.lastResult;
    let result = false;
    for (const topic of topics) {
      if (this.test(topic)) {
        result = true;
        break;
      }
    }
    this.lastTopics = topics;
    this.lastResult = result;
    return result;
  }
}
