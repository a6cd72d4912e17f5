import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TopicMatcherSet } from '../../src/hub/topic-matcher.js';
import { UriTemplate } from '../../src/hub/uri-template.js';
import { BoundedUrlPattern, overlapDegree, UrlPatternRejected } from '../../src/hub/url-pattern.js';
import { isReservedTopic } from '../../src/protocols/mercure/publish.js';
import { readSubscription } from '../../src/protocols/mercure/subscribe.js';

describe('RFC 6570 URI templates, matched backwards in linear time', () => {
  const cases: [string, string, boolean][] = [
    ['https://example.com/books/{id}', 'https://example.com/books/42', true],
    ['https://example.com/books/{id}', 'https://example.com/books/', true],
    ['https://example.com/books/{id}', 'https://example.com/books/4/2', false],
    ['https://example.com/books/{id}', 'https://example.com/book/42', false],
    ['https://example.com/books/{id}.jsonld', 'https://example.com/books/1.jsonld', true],
    ['https://example.com/{+path}', 'https://example.com/a/b/c?d', true],
    ['https://example.com{/path*}', 'https://example.com/a/b/c', true],
    ['https://example.com{/path*}', 'https://example.com', true],
    ['https://example.com{/a}', 'https://example.com/x/y', false],
    ['https://example.com/search{?q,lang}', 'https://example.com/search?q=cat&lang=en', true],
    ['https://example.com/search{?q}', 'https://example.com/search#x', false],
    ['https://example.com/x{#frag}', 'https://example.com/x#a/b', true],
    ['https://example.com/{a}{b}', 'https://example.com/ab', true],
    ['https://example.com/{var:3}', 'https://example.com/abcdef', true],
    ['https://example.com/{x,y}', 'https://example.com/1,2', true],
    ['{id}', 'plain-topic', true],
    ['{id}', 'with/slash', false],
    ['https://example.com/caf\u00e9/{id}', 'https://example.com/caf\u00e9/1', true],
  ];
  for (const [template, topic, expected] of cases) {
    it(`${template} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      const compiled = UriTemplate.parse(template);
      assert.ok(compiled, 'compiles');
      assert.equal(compiled.matches(topic), expected);
    });
  }

  it('is not a template without a valid expression (then the selector is an exact topic)', () => {
    for (const text of ['https://example.com/books/1', 'a{b', 'a}b', 'a{}b', 'a{=x}', 'a{x y}', 'will-not-match}']) {
      assert.equal(UriTemplate.parse(text), undefined, text);
    }
    const set = TopicMatcherSet.compile([{ type: 'uritemplate', match: 'will-not-match}' }]);
    assert.ok(set.exactOnly);
    assert.ok(set.test('will-not-match}'));
  });

  it('stays fast on templates that make backtracking engines explode', () => {
    const template = UriTemplate.parse(`https://example.com/${'{a}'.repeat(50)}x`)!;
    const started = performance.now();
    assert.equal(template.matches(`https://example.com/${'a'.repeat(230)}`), false);
    assert.ok(performance.now() - started < 100, `${performance.now() - started} ms`);
  });
});

describe('URL patterns with a bounded evaluation cost', () => {
  it('counts overlapping parts', () => {
    assert.equal(overlapDegree('https://example.com/books/:id'), 1);
    assert.equal(overlapDegree('https://example.com/users/:id/books/:book'), 1);
    assert.equal(overlapDegree('https://example.com/*'), 1);
    assert.equal(overlapDegree('https://example.com/:a-:b'), 2);
    assert.equal(overlapDegree('https://example.com/files/:path+'), 1);
    assert.equal(overlapDegree('https://example.com/feed/:type(news|alerts)'), 1);
    assert.equal(overlapDegree('https://example.com/:id(\\d+)/*'), 2);
    assert.equal(overlapDegree('/.well-known/mercure/subscriptions{/:matchType}?{/:match}?{/:subscriber}?'), 1);
    assert.equal(overlapDegree('https://example.com/*a*a*b'), 3);
    assert.equal(overlapDegree('https://example.com/\\*literal'), 0);
  });

  it('rejects dangerous regular expressions before compiling them', () => {
    for (const pattern of ['https://e.com/:x((?:a+)+)', 'https://e.com/:x((?:ab)*c)', 'https://e.com/:x(a(?=b))', 'https://e.com/:x((?:a)\\1)', 'https://e.com/:x(a+)+']) {
      assert.throws(() => BoundedUrlPattern.compile(pattern, undefined), UrlPatternRejected, pattern);
    }
  });

  it('matches the most expensive accepted shape in well under a millisecond per topic', () => {
    const pattern = BoundedUrlPattern.compile('https://example.com/*a*b', undefined);
    const topic = `https://example.com/${'a'.repeat(230)}`;
    const started = performance.now();
    for (let i = 0; i < 20; i++) assert.equal(pattern.test(topic), false);
    assert.ok((performance.now() - started) / 20 < 5, `${(performance.now() - started) / 20} ms per match`);
  });

  it('resolves relative patterns against the public URL, and refuses them without one', () => {
    const pattern = BoundedUrlPattern.compile('/books/:id', 'https://example.com');
    assert.ok(pattern.test('https://example.com/books/1'));
    assert.throws(() => BoundedUrlPattern.compile('/books/:id', undefined), UrlPatternRejected);
  });
});

describe('Mercure request details', () => {
  it('reads selectors and the cursor with the right precedence', () => {
    const both = readSubscription('/.well-known/mercure?match=a&topic=b&match_urlpattern=https://e.com/:x&last_event_id=q&lastEventID=l', { 'last-event-id': 'h' });
    assert.deepEqual(both.matchers.map((m) => m.type), ['exact', 'uritemplate', 'urlpattern']);
    assert.equal(both.lastEventId, 'h');
    assert.equal(readSubscription('/?match=a&last_event_id=q&lastEventID=l', {}).lastEventId, 'q');
    assert.equal(readSubscription('/?match=a&lastEventID=l&Last-Event-ID=d', {}).lastEventId, 'l');
    assert.equal(readSubscription('/?match=a&Last-Event-ID=d', {}).lastEventId, 'd');
    assert.equal(readSubscription('/?match=a', { 'last-event-id': '  ' }).lastEventId, undefined);
  });

  it('recognises the reserved namespace however it is spelled', () => {
    for (const topic of ['/.well-known/mercure', '/.well-known/mercure/subscriptions', 'https://hub.example/.well-known/mercure/x', '/a/../.well-known/mercure', '/%2e%2E/.well-known/mercure', '/.WELL-KNOWN/Mercure', '/.well-known%2fmercure', '/.well-known/%252E%252E/.well-known/mercure', '\\.well-known\\mercure']) {
      assert.ok(isReservedTopic(topic), topic);
    }
    for (const topic of ['demo', 'https://example.com/books/1', '/.well-known/mercurial', 'urn:x:/.well-known/mercure-not', '/well-known/mercure']) {
      assert.ok(!isReservedTopic(topic), topic);
    }
  });
});
