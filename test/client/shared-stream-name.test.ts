import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedStreamName } from '../../src/client/shared-subscription.js';

describe('shareAcrossTabs: which tabs share one stream', () => {
  const url = new URL('http://hub.example/messages/subscribe/orders');

  it('tabs with different tokens never share (nor see each other\'s events)', () => {
    const alice = sharedStreamName(url, { Authorization: 'Bearer token-of-alice' });
    const bob = sharedStreamName(url, { Authorization: 'Bearer token-of-bob' });
    assert.notEqual(alice, bob);
    assert.notEqual(alice, sharedStreamName(url, {}), 'nor with a tab without a token');
    assert.doesNotMatch(alice, /token-of-alice/, 'the token is not spelled out in the lock name');
  });

  it('tabs with the same URL and headers share, whatever the order and case of header names', () => {
    assert.equal(
      sharedStreamName(url, { Authorization: 'Bearer t', 'X-Tenant': 'a' }),
      sharedStreamName(url, { 'x-tenant': 'a', authorization: 'Bearer t' }),
    );
    assert.equal(sharedStreamName(url, {}), 'sse-relay:http://hub.example/messages/subscribe/orders');
    assert.notEqual(sharedStreamName(url, {}), sharedStreamName(new URL('http://hub.example/messages/subscribe/other'), {}));
  });
});
