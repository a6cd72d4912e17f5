import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';

/** `/messages/:id` → `/messages/{id}` */
const toOpenApiPath = (url: string): string => url.replace(/:([A-Za-z_]+)/g, '{$1}');

describe('OpenAPI description', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  it('is served at /openapi.json and lists exactly the routes the server has', async () => {
    const res = await fetch(`${hub.url}/openapi.json`);
    assert.equal(res.status, 200);
    const doc = await res.json();
    assert.equal(doc.openapi, '3.1.0');
    const documented = new Set<string>();
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const method of Object.keys(methods)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const registered = new Set(hub.routes.map((r) => `${r.method} ${toOpenApiPath(r.url)}`));
    assert.deepEqual([...registered].filter((r) => !documented.has(r)), [], 'routes missing from the description');
    assert.deepEqual([...documented].filter((r) => !registered.has(r)), [], 'described routes the server does not have');
  });
});
