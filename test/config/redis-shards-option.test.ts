import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadServeOptions } from '../../src/config/load.js';
import { formatPosition, parsePosition } from '../../src/store/position-vector.js';
import { isReservedEventId } from '../../src/hub/message.js';

describe('--redis-shards', () => {
  it('defaults to 1 and reads the flag and SSE_RELAY_REDIS_SHARDS with a Redis store', () => {
    assert.equal(loadServeOptions({}).redisShards, 1);
    assert.equal(loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', redisShards: '4' } }).redisShards, 4);
    assert.equal(loadServeOptions({ env: { SSE_RELAY_STORE: 'redis-cluster://127.0.0.1:7000', SSE_RELAY_REDIS_SHARDS: '3' } }).redisShards, 3);
  });

  it('refuses shards with a store that is not Redis, with --subscriptions, and out of range', () => {
    for (const store of ['sqlite', 'memory']) {
      assert.throws(() => loadServeOptions({ flags: { store, redisShards: '2' } }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'HUB_ERR_CONFIG_INVALID');
        assert.match(error.message, /--redis-shards 2 needs a Redis store/);
        return true;
      });
    }
    assert.throws(() => loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', redisShards: '2', subscriptions: 'true' } }), /--subscriptions is not supported with --redis-shards/);
    assert.throws(() => loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', redisShards: '0' } }), /redis-shards/);
    // Capped (review item 7): 256 is accepted, 257 and 1024 are not.
    assert.equal(loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', redisShards: '256' } }).redisShards, 256);
    for (const n of ['257', '1024']) assert.throws(() => loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', redisShards: n } }), /redis-shards/, n);
  });
});

describe('position vectors (event ids of a sharded store)', () => {
  it('formats one shard as the decimal seq and several as v1.<shard>:<base36 seq>, and parses them back', () => {
    assert.equal(formatPosition([42], 1), '42');
    assert.equal(formatPosition([0], 1), 'earliest');
    assert.equal(formatPosition([0, 0, 0], 3), 'earliest');
    const id = formatPosition([1796307100799004, 0, 35], 3);
    assert.equal(id, `v1.0:${(1796307100799004).toString(36)}.2:z`);
    assert.deepEqual(parsePosition(id, 3), [1796307100799004, 0, 35]);
  });

  it('rejects malformed vectors and reserves the form against custom ids', () => {
    for (const id of ['v1.', 'v1.3:1', 'v1.1:1.0:1', 'v1.0:1.0:2', 'v1.0:0', 'v1.0:-1', 'v1.0:1x!', 'v2.0:1', '12']) {
      assert.equal(parsePosition(id, 3), undefined, id);
    }
    assert.equal(isReservedEventId('v1.0:abc', true), true);
    assert.equal(isReservedEventId('v7.anything', true), true);
    assert.equal(isReservedEventId('video-1', true), false);
    assert.equal(isReservedEventId('v1', true), false);
    // One shard: the form is the publisher's, as before sharding (review item 6).
    assert.equal(isReservedEventId('v1.0:abc'), false);
    assert.equal(isReservedEventId('v2.release-notes', false), false);
  });
});
