/**
 * Property: no topic selector a subscriber may send can make matching expensive (the
 * URL-pattern denial of service). URL patterns built from the grammar's most dangerous parts
 * are either refused when compiled or match a worst-case topic (256 characters, built to make
 * backtracking engines fail slowly) in a bounded time; URI templates always do. And the
 * compile step itself never throws anything but the documented refusal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RelayError } from '../../src/hub/errors.js';
import { TopicMatcherSet } from '../../src/hub/topic-matcher.js';
import { fuzz } from './arbitraries.js';

/** Per-match budget: the design bound is "well under a millisecond"; this leaves room for a busy CI machine. */
const BUDGET_MS = 25;

/** Pieces of URL-pattern syntax, weighted towards the ones that overlap and backtrack. */
const patternPiece = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('/', 'a', 'b', '.', '-', 'books', 'https://', 'example.com', ':', '?', '#', '=') },
  { weight: 4, arbitrary: fc.constantFrom('*', ':id', ':x', ':y*', ':z+', ':w?', '{a}*', '{/:p}+', '{:q}?', '(.*)', '(a*)', '([a-z]+)', '(\\\\d+)', '(.+)') },
  { weight: 2, arbitrary: fc.constantFrom('((a+)+)', '(a|aa)+', '(?=a)', '(a)\\\\1', '(?:a+)+', '(.*.*)', '([^/]*)*', '(a{1,99})', '{(.*)}*', '\\\\*') },
);
const urlPattern = fc.array(patternPiece, { minLength: 1, maxLength: 12 }).map((pieces) => pieces.join(''));

const templatePiece = fc.oneof(
  fc.constantFrom('/', 'a', 'books', 'https://example.com', '.', '-'),
  fc.constantFrom('{id}', '{+path}', '{/seg*}', '{?q,r}', '{#frag}', '{.ext}', '{;m}', '{&x}', '{a,b,c}', '{x:3}', '{+a}{+b}{+c}', '{'),
);
const uriTemplate = fc.array(templatePiece, { minLength: 1, maxLength: 10 }).map((pieces) => pieces.join(''));

/**
 * Topics that make a backtracking matcher work hardest: long runs of what wildcards eat,
 * failing at the end; as functions of a length, to grow them step by step.
 */
const hardTopics: ((n: number) => string)[] = [
  (n) => `https://example.com/${'a'.repeat(n - 21)}!`,
  (n) => `https://example.com/${'a/'.repeat((n - 21) >> 1)}!`,
  (n) => `https://example.com/books/${'a-'.repeat((n - 26) >> 1)}`,
  (n) => `/${'aa'.repeat((n - 1) >> 1)}`,
  (n) => 'a'.repeat(n),
  (n) => `https://example.com/${'1'.repeat(n - 21)}x`,
];

/**
 * The slowest match over the hard topics, grown from 32 to 256 characters (MAX_TOPIC_LENGTH):
 * an exponential pattern shows at a short length, before a single match could take minutes.
 */
function slowestMatchMs(set: TopicMatcherSet): number {
  let slowest = 0;
  for (const topic of hardTopics) {
    for (const length of [32, 64, 128, 256]) {
      // The best of three: one slow run can be a GC pause or a preempted core, three cannot.
      let best = Infinity;
      for (let i = 0; i < 3 && best > BUDGET_MS / 5; i++) {
        const started = performance.now();
        set.test(topic(length));
        best = Math.min(best, performance.now() - started);
      }
      slowest = Math.max(slowest, best);
      if (best > BUDGET_MS) return best;
    }
  }
  return slowest;
}

describe('fuzz: topic selectors cannot make matching expensive', () => {
  it('URL patterns: refused at compile time, or bounded at match time', async (t) => {
    const seen = { accepted: 0, refused: 0, slowest: 0 };
    await fuzz(
      'URL pattern cost',
      fc.property(urlPattern, fc.boolean(), (pattern, relative) => {
        let set: TopicMatcherSet;
        try {
          set = TopicMatcherSet.compile([{ type: 'urlpattern', match: relative ? `/${pattern}` : pattern }], 'https://example.com');
        } catch (error) {
          assert.ok(error instanceof RelayError && error.code === 'HUB_ERR_MATCHER_INVALID', `unexpected error ${String(error)}`);
          seen.refused++;
          return;
        }
        seen.accepted++;
        const ms = slowestMatchMs(set);
        seen.slowest = Math.max(seen.slowest, ms);
        assert.ok(ms < BUDGET_MS, `pattern ${JSON.stringify(pattern)} took ${ms.toFixed(1)} ms on a 256-character topic`);
      }),
      1500,
    );
    t.diagnostic(`${seen.accepted} patterns accepted, ${seen.refused} refused; slowest match ${seen.slowest.toFixed(2)} ms`);
    assert.ok(seen.accepted > 100 && seen.refused > 100, 'both outcomes exercised');
  });

  it('URI templates (hub 0.x selectors): always bounded', async (t) => {
    let slowest = 0;
    await fuzz(
      'URI template cost',
      fc.property(uriTemplate, (template) => {
        const set = TopicMatcherSet.compile([{ type: 'uritemplate', match: template }]);
        const ms = slowestMatchMs(set);
        slowest = Math.max(slowest, ms);
        assert.ok(ms < BUDGET_MS, `template ${JSON.stringify(template)} took ${ms.toFixed(1)} ms`);
      }),
      1000,
    );
    t.diagnostic(`slowest template match ${slowest.toFixed(2)} ms`);
  });
});
