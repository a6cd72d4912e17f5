/**
 * URL Pattern matchers (WHATWG URL Pattern standard, `urlpattern-polyfill` on Node 20), with a
 * bound on what one match may cost.
 *
 * The polyfill, like browsers, compiles each URL component of a pattern into a JavaScript
 * regular expression and runs it on V8's backtracking engine. Wildcards and groups whose
 * matches can overlap make a failing match cost O(n^k) for k such parts (measured on this
 * machine against a 220-character topic: `/*a*a*b`, 2 wildcards: 0.3 ms; 3: 20 ms; 4: 1 s),
 * and a custom regular expression such as `:x((?:a+)+)b` is exponential (2.5 s for 26
 * characters). A subscriber could make every publish that expensive. There is no way to
 * interrupt a running regular expression in JavaScript, and RE2 needs a native build, so
 * patterns are checked before they are compiled instead:
 *
 * - custom regular expressions may not contain lookaround, back-references, or a quantified
 *   group (nested quantifiers);
 * - repetition must be unambiguous (found by `test/fuzz/matchers.test.ts`, each of these took
 *   seconds to minutes on one topic): a repeated name follows a `/` (`/:path+`, not `.:z+`), a
 *   repeated regular expression has no alternation (`(a|aa)+`), and a repeated group holds only
 *   literal text and `/`-delimited names (`{/:segment}+`, not `{(.*)}*`);
 * - the "overlap degree" of a pattern, an upper bound on the k above, is at most
 *   {@link MAX_OVERLAP}: every full wildcard (`*`, a `*`/`+` repeated group) and every
 *   quantifier inside a custom regular expression counts 1; on top of that, groups that match
 *   within one path segment (`:id`) only overlap with groups in the same `/`-separated segment,
 *   so the busiest segment counts too.
 *
 * With topics at most 256 characters long (`MAX_TOPIC_LENGTH`), degree 2 bounds a failing match
 * at roughly 256^2 / 2 backtracking steps: well under a millisecond. The bound is conservative:
 * `https://*.example.com/*` counts 2 although its wildcards sit in different components.
 */
import { URLPattern } from 'urlpattern-polyfill/urlpattern';

/** Longest accepted pattern, in characters. */
export const MAX_URL_PATTERN_LENGTH = 1024;
/** Highest accepted overlap degree (see the module comment). */
export const MAX_OVERLAP = 2;

/** Why a pattern was refused (the caller wraps it into its protocol's error). */
export class UrlPatternRejected extends Error {}

/** A URL with a scheme (RFC 3986 §3.1); anything else is a relative reference. */
const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** A compiled URL pattern whose evaluation cost is bounded. */
export class BoundedUrlPattern {
  private constructor(
    readonly source: string,
    private readonly pattern: URLPattern,
    private readonly baseUrl: string | undefined,
  ) {}

  /**
   * Checks and compiles `source`. Relative patterns (`/books/:id`) are resolved against
   * `baseUrl`; without one they are refused. Throws {@link UrlPatternRejected}.
   */
  static compile(source: string, baseUrl: string | undefined): BoundedUrlPattern {
    if (source.length > MAX_URL_PATTERN_LENGTH) throw new UrlPatternRejected(`URL patterns are limited to ${MAX_URL_PATTERN_LENGTH} characters`);
    const degree = overlapDegree(source);
    if (degree > MAX_OVERLAP) {
      throw new UrlPatternRejected(`The URL pattern has too many overlapping wildcards or quantifiers (${degree}, at most ${MAX_OVERLAP}) and could be slow to match`);
    }
    let pattern: URLPattern;
    try {
      pattern = baseUrl === undefined ? new URLPattern(source) : new URLPattern(source, baseUrl);
    } catch (error) {
      throw new UrlPatternRejected(`Invalid URL pattern: ${(error as Error).message}`);
    }
    return new BoundedUrlPattern(source, pattern, baseUrl);
  }

  /**
   * True when `topic`, read as a URL, matches. A relative topic (the hub's own subscription
   * events, `/.well-known/mercure/subscriptions/...`) is resolved against `baseUrl`, as Mercure
   * asks; without one, and for topics that are not URLs, it never matches.
   */
  test(topic: string): boolean {
    try {
      // Only relative topics pay for the resolution.
      return this.baseUrl !== undefined && !ABSOLUTE_URL.test(topic) ? this.pattern.test(topic, this.baseUrl) : this.pattern.test(topic);
    } catch {
      return false;
    }
  }
}

type Token =
  | { kind: 'char'; value: string }
  | { kind: 'name' }
  | { kind: 'regexp'; value: string }
  | { kind: 'asterisk' }
  | { kind: 'modifier'; value: '?' | '*' | '+' }
  | { kind: 'open' }
  | { kind: 'close' };

const NAME_START = /[A-Za-z_$]/;
const NAME_PART = /[A-Za-z0-9_$]/;

/**
 * Tokenises a pattern string the way the URL Pattern tokenizer does (names, regexp groups,
 * wildcards, modifiers, escapes, braces), across all components at once: exact component
 * boundaries do not matter for an upper bound.
 */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const previousTakesModifier = (): boolean => {
    const last = tokens[tokens.length - 1];
    return last !== undefined && (last.kind === 'name' || last.kind === 'regexp' || last.kind === 'asterisk' || last.kind === 'close');
  };
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '\\') {
      tokens.push({ kind: 'char', value: source[i + 1] ?? '' });
      i += 2;
    } else if (ch === '{') {
      tokens.push({ kind: 'open' });
      i++;
    } else if (ch === '}') {
      tokens.push({ kind: 'close' });
      i++;
    } else if (ch === ':' && NAME_START.test(source[i + 1] ?? '')) {
      i += 2;
      while (i < source.length && NAME_PART.test(source[i]!)) i++;
      tokens.push({ kind: 'name' });
    } else if (ch === '(') {
      let depth = 1;
      let j = i + 1;
      while (j < source.length && depth > 0) {
        if (source[j] === '\\') j++;
        else if (source[j] === '(') depth++;
        else if (source[j] === ')') depth--;
        j++;
      }
      if (depth !== 0) throw new UrlPatternRejected('Invalid URL pattern: unbalanced regular expression group');
      const value = source.slice(i + 1, j - 1);
      // `:name(regexp)`: the regexp replaces the name's default segment group.
      if (tokens[tokens.length - 1]?.kind === 'name') tokens.pop();
      tokens.push({ kind: 'regexp', value });
      i = j;
    } else if ((ch === '*' || ch === '+' || ch === '?') && previousTakesModifier()) {
      tokens.push({ kind: 'modifier', value: ch });
      i++;
    } else if (ch === '*') {
      tokens.push({ kind: 'asterisk' });
      i++;
    } else {
      tokens.push({ kind: 'char', value: ch });
      i++;
    }
  }
  return tokens;
}

// Lookahead/lookbehind and named or numbered back-references.
const UNSAFE_REGEXP = /\(\?<?[=!]|\\[1-9]|\\k</;
// A quantifier right after a group: a quantified group, the cause of exponential backtracking.
const QUANTIFIED_GROUP = /\)(?:[*+?]|\{\d)/;
const QUANTIFIER = /(?<!\\)(?:[*+?]|\{\d+(?:,\d*)?\})/g;

/**
 * A repeated group is a quantifier around its content: if that content can itself match text
 * of varying length in more than one way (a wildcard, a regular expression, a name that is
 * not anchored by a `/` it cannot match), the repetition nests quantifiers and a failing match
 * backtracks exponentially (`{(.*)}*` took 87 s on a 256-character topic). Literal content and
 * `/`-delimited names (`{/:segment}+`) repeat unambiguously.
 */
function assertUnambiguousRepetition(inner: readonly Token[]): void {
  for (let k = 0; k < inner.length; k++) {
    const token = inner[k]!;
    if (token.kind === 'asterisk' || token.kind === 'regexp' || token.kind === 'modifier' || (token.kind === 'name' && !isSlash(inner[k - 1]))) {
      throw new UrlPatternRejected('URL patterns may only repeat a group of literal text and "/"-delimited names ({/:segment}+), not wildcards or regular expressions');
    }
  }
}

function isSlash(token: Token | undefined): boolean {
  return token?.kind === 'char' && token.value === '/';
}

/** Upper bound on how many parts of a match can overlap (see the module comment). */
export function overlapDegree(source: string): number {
  const tokens = tokenize(source);
  let wildcards = 0;
  let segment = 0;
  let busiestSegment = 0;
  let groupStart = -1;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const modifier = tokens[i + 1]?.kind === 'modifier' ? (tokens[i + 1] as { value: string }).value : undefined;
    const repeated = modifier === '*' || modifier === '+';
    switch (token.kind) {
      case 'char':
        if (token.value === '/') {
          busiestSegment = Math.max(busiestSegment, segment);
          segment = 0;
        }
        break;
      case 'asterisk':
        wildcards++;
        break;
      case 'name':
        if (repeated) {
          // `/:path+` repeats `/segment`; without the `/` the segments' boundaries are
          // ambiguous (nested quantifiers: `.:z+b` took 1.5 s on a 48-character topic).
          if (!isSlash(tokens[i - 1])) throw new UrlPatternRejected('A repeated name (:name+ or :name*) must follow a "/"');
          wildcards++;
        } else segment++;
        break;
      case 'regexp': {
        // Characters inside a class are literal, and `(?:` opens a group: neither is a quantifier.
        const body = token.value.replace(/\[(?:\\.|[^\]\\])*\]/g, 'C').replace(/\(\?:/g, '(');
        if (UNSAFE_REGEXP.test(body)) throw new UrlPatternRejected('URL patterns may not use lookaround or back-references');
        if (QUANTIFIED_GROUP.test(body)) throw new UrlPatternRejected('URL patterns may not quantify groups inside a regular expression');
        const quantifiers = body.match(QUANTIFIER)?.length ?? 0;
        if (repeated && quantifiers > 0) throw new UrlPatternRejected('URL patterns may not repeat a group that contains a quantifier');
        // Overlapping alternatives under repetition backtrack exponentially: `(a|aa)+`.
        if (repeated && body.includes('|')) throw new UrlPatternRejected('URL patterns may not repeat a group that contains an alternation');
        if (quantifiers > 0) wildcards += quantifiers;
        else if (repeated) wildcards++;
        else segment++;
        break;
      }
      case 'close':
        // `{...}*` / `{...}+` repeats a group: it can span segments like a wildcard.
        if (repeated) {
          assertUnambiguousRepetition(tokens.slice(groupStart + 1, i));
          wildcards++;
        }
        break;
      case 'open':
        groupStart = i;
        break;
      default:
        break;
    }
  }
  busiestSegment = Math.max(busiestSegment, segment);
  return wildcards + busiestSegment;
}
