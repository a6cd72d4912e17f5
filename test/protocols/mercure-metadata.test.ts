import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accessToken, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, MERCURE_SECRET, mercurePublish, mercureUrl } from '../auth/tokens.js';
import { startHub, type TestHub } from '../helpers/hub.js';

const METADATA = '/.well-known/oauth-protected-resource/.well-known/mercure';

async function metadata(hub: TestHub): Promise<{ status: number; type: string | null; json: Record<string, unknown> }> {
  const res = await fetch(`${hub.url}${METADATA}`);
  return { status: res.status, type: res.headers.get('content-type'), json: (await res.json()) as Record<string, unknown> };
}

describe('Mercure protected resource metadata (RFC 9728)', () => {
  let configured: TestHub;
  let proxied: TestHub;
  let open: TestHub;
  before(async () => {
    configured = await startHub({
      publisherJwtKey: MERCURE_SECRET,
      jwtIssuer: CONFORMANCE_ISSUER,
      jwtAudience: CONFORMANCE_AUDIENCE,
      authorizationServers: ['https://auth.example.com'],
      subscriptions: true,
    });
    proxied = await startHub({ publisherJwtKey: MERCURE_SECRET, anonymous: true, publicUrl: 'https://example.com/' });
    open = await startHub();
  });
  after(async () => {
    await configured.close();
    await proxied.close();
    await open.close();
  });

  it('serves the document at the path derived from the hub URL: resource is --jwt-audience, with the configured servers and features', async () => {
    const { status, type, json } = await metadata(configured);
    assert.equal(status, 200);
    assert.match(type ?? '', /^application\/json/);
    assert.deepEqual(json, {
      resource: CONFORMANCE_AUDIENCE,
      authorization_servers: ['https://auth.example.com'],
      authorization_details_types_supported: ['https://mercure.rocks/authorization-detail'],
      bearer_methods_supported: ['header'],
      mercure_cookie: '__Secure-mercure_access_token',
      mercure_subscriptions: true,
    });
  });

  it('without --jwt-audience, resource is the public hub URL; authorization_servers and mercure_subscriptions are omitted', async () => {
    const { json } = await metadata(proxied);
    assert.deepEqual(json, {
      resource: 'https://example.com/.well-known/mercure',
      authorization_details_types_supported: ['https://mercure.rocks/authorization-detail'],
      bearer_methods_supported: ['header'],
      mercure_cookie: '__Secure-mercure_access_token',
    });
    // No --public-url: the origin the request reached the hub at.
    const bare = await metadata(open);
    assert.equal(bare.json.resource, `${open.url}/.well-known/mercure`);
    // An open hub ignores tokens: no bearer method, no cookie.
    assert.deepEqual(bare.json.bearer_methods_supported, []);
    assert.equal(bare.json.mercure_cookie, undefined);
  });

  it('points every Mercure 401 and 403 challenge at the document (resource_metadata)', async () => {
    const expected = `resource_metadata="${configured.url}${METADATA}"`;
    const noToken = await mercurePublish(configured.url, [['topic', 'https://example.com/a'], ['data', 'x']]);
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('www-authenticate'), `Bearer realm="sse-relay", ${expected}`);
    const invalid = await mercurePublish(configured.url, [['topic', 'https://example.com/a'], ['data', 'x']], { Authorization: 'Bearer x.y.z' });
    assert.equal(invalid.status, 401);
    assert.match(invalid.headers.get('www-authenticate') ?? '', /^Bearer realm="sse-relay", error="invalid_token"/);
    assert.ok(invalid.headers.get('www-authenticate')?.endsWith(`, ${expected}`));
    const scoped = await accessToken({ publish: [{ match: 'https://example.com/other' }] });
    const denied = await mercurePublish(configured.url, [['topic', 'https://example.com/a'], ['data', 'x']], { Authorization: `Bearer ${scoped}` });
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/);
    assert.ok(denied.headers.get('www-authenticate')?.endsWith(`, ${expected}`));
    const subscribe = await fetch(mercureUrl(configured.url, [['match', 'x']]));
    assert.equal(subscribe.status, 401);
    assert.equal(subscribe.headers.get('www-authenticate'), `Bearer realm="sse-relay", ${expected}`);
    await subscribe.body?.cancel();
    // Behind --public-url, the public URL.
    const proxiedDenied = await mercurePublish(proxied.url, [['topic', 'https://example.com/a'], ['data', 'x']]);
    assert.equal(proxiedDenied.headers.get('www-authenticate'), `Bearer realm="sse-relay", resource_metadata="https://example.com${METADATA}"`);
  });
});
