import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadServeOptions } from '../../src/config/load.js';
import { RelayError } from '../../src/hub/errors.js';
import { parseClusterUrl } from '../../src/store/redis/cluster-url.js';
import { describeWhere } from '../../src/store/redis/connection.js';

describe('redis-cluster:// URLs', () => {
  it('reads seed nodes and credentials', () => {
    assert.deepEqual(parseClusterUrl('redis-cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002'), {
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    assert.deepEqual(parseClusterUrl('redis-cluster://app:p%40ss@redis-a:6379/'), {
      nodes: [{ host: 'redis-a', port: 6379 }],
      username: 'app',
      password: 'p@ss',
    });
    assert.deepEqual(parseClusterUrl('redis-cluster://:secret@redis-a:6379'), { nodes: [{ host: 'redis-a', port: 6379 }], username: undefined, password: 'secret' });
  });

  it('refuses a seed without a port, an empty list and a port out of range', () => {
    for (const url of ['redis-cluster://redis-a', 'redis-cluster://', 'redis-cluster://a:1,', 'redis-cluster://a:70000', 'redis-cluster://a:1/0']) {
      assert.throws(() => parseClusterUrl(url), /host:port/, url);
    }
  });

  it('is accepted by --store, and a bad one is refused without its password', () => {
    assert.equal(loadServeOptions({ env: {}, flags: { store: 'redis-cluster://127.0.0.1:7000,127.0.0.1:7001' } }).store, 'redis-cluster://127.0.0.1:7000,127.0.0.1:7001');
    assert.throws(
      () => loadServeOptions({ env: {}, flags: { store: 'redis-cluster://:hunter2@127.0.0.1' } }),
      (error: unknown) =>
        error instanceof RelayError && error.code === 'HUB_ERR_CONFIG_INVALID' && /--store.*redis-cluster:\/\/host:port/.test(error.message) && !error.message.includes('hunter2'),
    );
  });

  it('is shown in log lines as its seed nodes, without credentials', () => {
    assert.equal(describeWhere('redis-cluster://app:hunter2@10.0.0.1:7000,[::1]:7001'), 'redis-cluster://10.0.0.1:7000,[::1]:7001');
  });
});
