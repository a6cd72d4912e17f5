import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';
import { mercureUrl } from '../auth/tokens.js';

/** An OPTIONS request as a browser sends before a cross-origin request (fetch forbids OPTIONS headers like Origin). */
function preflight(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'OPTIONS', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('CORS allowlist', () => {
  let hub: TestHub;
  let wildcard: TestHub;
  let none: TestHub;
  const allowed = 'https://app.example.com';
  before(async () => {
    hub = await startHub({ corsOrigins: ['https://App.example.com/', 'null'] });
    wildcard = await startHub({ corsOrigins: ['*', allowed] });
    none = await startHub();
  });
  after(async () => {
    await hub.close();
    await wildcard.close();
    await none.close();
  });

  it('answers the preflight of an EventSource GET and of a POST with a token for a listed origin', async () => {
    for (const [method, requested] of [
      ['GET', 'last-event-id, cache-control'],
      ['POST', 'authorization, content-type'],
    ] as const) {
      const res = await preflight(`${hub.url}/.well-known/mercure`, {
        Origin: allowed,
        'Access-Control-Request-Method': method,
        'Access-Control-Request-Headers': `${requested}, x-evil`,
      });
      assert.equal(res.status, 204, method);
      assert.equal(res.headers['access-control-allow-origin'], allowed);
      assert.equal(res.headers['access-control-allow-credentials'], 'true');
      assert.match(String(res.headers['access-control-allow-methods']), new RegExp(method));
      assert.equal(res.headers['access-control-allow-headers'], requested);
      assert.match(String(res.headers.vary), /Origin/);
    }
  });

  it('refuses the preflight of an unlisted origin, and of the null origin, without any CORS header', async () => {
    for (const origin of ['https://evil.example.com', 'null', 'https://app.example.com.evil.com']) {
      const res = await preflight(`${hub.url}/.well-known/mercure`, { Origin: origin, 'Access-Control-Request-Method': 'POST' });
      assert.equal(res.status, 403, origin);
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
      assert.equal(res.headers['access-control-allow-credentials'], undefined, origin);
    }
  });

  it('adds the headers to actual responses, event streams included, and never reflects an unlisted origin', async () => {
    const stream = await openStream(mercureUrl(hub.url, [['match', 'cors']]), { Origin: allowed });
    try {
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['access-control-allow-origin'], allowed);
      assert.equal(stream.headers['access-control-allow-credentials'], 'true');
      assert.match(String(stream.headers['access-control-expose-headers']), /Mercure-Last-Event-ID/);
    } finally {
      stream.close();
    }
    const other = await fetch(`${hub.url}/messages/cors`, { headers: { Origin: 'https://evil.example.com' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    await other.body?.cancel();
    const listed = await fetch(`${hub.url}/messages/cors`, { headers: { Origin: allowed } });
    assert.equal(listed.headers.get('access-control-allow-origin'), allowed);
    assert.match(listed.headers.get('access-control-expose-headers') ?? '', /Link/);
    await listed.body?.cancel();
  });

  it('with *, allows other origins without credentials and never echoes them', async () => {
    const res = await preflight(`${wildcard.url}/.well-known/mercure`, { Origin: 'https://any.example', 'Access-Control-Request-Method': 'GET' });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    const listed = await preflight(`${wildcard.url}/.well-known/mercure`, { Origin: allowed, 'Access-Control-Request-Method': 'GET' });
    assert.equal(listed.headers['access-control-allow-origin'], allowed);
    assert.equal(listed.headers['access-control-allow-credentials'], 'true');
  });

  it('adds nothing when no origin is configured', async () => {
    const res = await fetch(`${none.url}/messages/cors`, { headers: { Origin: allowed } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    await res.body?.cancel();
    const pre = await preflight(`${none.url}/.well-known/mercure`, { Origin: allowed, 'Access-Control-Request-Method': 'POST' });
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
  });
});
