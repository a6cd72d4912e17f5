import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';

describe('a wrong method on an existing route', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  it('answers 405 with Allow, not 404', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/messages/abc', 'POST, GET, HEAD'],
      ['DELETE', '/messages/subscribe/abc', 'GET, HEAD'],
      ['PUT', '/.well-known/mercure', 'GET, HEAD, POST, QUERY'],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const res = await fetch(`${hub.url}${path}`, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
      const json = (await res.json()) as { error: { code: string } };
      assert.equal(json.error.code, 'HUB_ERR_METHOD_NOT_ALLOWED');
    }
  });

  it('still answers 404 for a path no route has', async () => {
    const res = await fetch(`${hub.url}/nowhere/at/all`, { method: 'PUT' });
    assert.equal(res.status, 404);
  });
});
