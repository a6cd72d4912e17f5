import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, SignJWT, UnsecuredJWT } from 'jose';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';
import { accessToken, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, legacyToken, MERCURE_SECRET, mercurePublish, mercureUrl } from './tokens.js';

const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });
const now = (): number => Math.floor(Date.now() / 1000);
const INVALID_TOKEN = /^Bearer realm="sse-relay", error="invalid_token"/;

/** Asserts that publishing and subscribing with `token` both answer 401 invalid_token. */
async function assertInvalid(hub: TestHub, token: string, what: string): Promise<void> {
  const published = await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(token));
  assert.equal(published.status, 401, `${what} (publish): ${published.text}`);
  assert.match(published.headers.get('www-authenticate') ?? '', INVALID_TOKEN, what);
  const subscribed = await fetch(mercureUrl(hub.url, [['match', 'x']]), { headers: bearer(token) });
  assert.equal(subscribed.status, 401, `${what} (subscribe)`);
  assert.match(subscribed.headers.get('www-authenticate') ?? '', INVALID_TOKEN, what);
  await subscribed.body?.cancel();
  const article = await fetch(`${hub.url}/messages/x`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain', ...bearer(token) } });
  assert.equal(article.status, 401, `${what} (/messages)`);
  assert.equal(((await article.json()) as { error: { code: string } }).error.code, 'HUB_ERR_TOKEN_INVALID');
}

describe('token failures: 401 with an RFC 6750 invalid_token challenge', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, jwtIssuer: CONFORMANCE_ISSUER, jwtAudience: CONFORMANCE_AUDIENCE });
  });
  after(() => hub.close());

  const everything = { publish: [{ match: '*' }], subscribe: [{ match: '*' }] };

  it('accepts a valid token (the baseline every failure below departs from)', async () => {
    const res = await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(await accessToken(everything)));
    assert.equal(res.status, 200, res.text);
  });

  it('refuses expired, not-yet-valid, wrong issuer, wrong audience and missing exp', async () => {
    await assertInvalid(hub, await accessToken(everything, { exp: now() - 10 }), 'expired');
    await assertInvalid(hub, await accessToken(everything, { nbf: now() + 3600 }), 'not yet valid');
    await assertInvalid(hub, await accessToken(everything, { iss: 'https://evil.example' }), 'wrong issuer');
    await assertInvalid(hub, await accessToken(everything, { aud: 'https://other.example/.well-known/mercure' }), 'wrong audience');
    await assertInvalid(hub, await accessToken(everything, { aud: undefined }), 'no audience');
    await assertInvalid(hub, await accessToken(everything, { exp: undefined }), 'RFC 9068 token without exp');
    await assertInvalid(hub, await legacyToken({ publish: ['*'] }, { exp: now() - 10 }), 'expired legacy token');
    await assertInvalid(hub, await legacyToken({ publish: ['*'] }, { iss: 'https://evil.example' }), 'legacy token from another issuer');
    // An audience array containing the hub's is fine.
    const many = await accessToken(everything, { aud: ['https://api.example', CONFORMANCE_AUDIENCE] });
    assert.equal((await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(many))).status, 200);
  });

  it('says "expired" for an expired token, and which check failed for the others (token-reasons.test.ts has each)', async () => {
    const res = await mercurePublish(hub.url, [['topic', 'x']], bearer(await accessToken(everything, { exp: now() - 10 })));
    assert.match(res.headers.get('www-authenticate') ?? '', /error_description="The access token expired"/);
    const other = await mercurePublish(hub.url, [['topic', 'x']], bearer(await accessToken(everything, { iss: 'x' })));
    assert.match(other.headers.get('www-authenticate') ?? '', /error_description="The access token is invalid: its issuer \(iss\) is not the one this hub trusts/);
  });

  it('refuses a bad signature, alg none, a different algorithm and garbage', async () => {
    await assertInvalid(hub, await accessToken(everything, {}, { key: 'another-secret-of-decent-length!!' }), 'bad signature');
    await assertInvalid(hub, new UnsecuredJWT({ mercure: { publish: ['*'], subscribe: ['*'] } }).encode(), 'alg none');
    await assertInvalid(hub, await legacyToken({ publish: ['*'] }, {}, { alg: 'HS512' }), 'HS512 when HS256 is configured');
    await assertInvalid(hub, 'not-a-jwt', 'garbage');
    await assertInvalid(hub, 'a.b.c', 'three garbage parts');
    const res = await mercurePublish(hub.url, [['topic', 'x']], { Authorization: 'Bearer' });
    assert.equal(res.status, 401, 'empty bearer');
  });

  it('refuses malformed Mercure authorization details, but ignores other detail types', async () => {
    const malformed: unknown[] = [
      'not an array',
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: ['*'] }],
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [] }],
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['delete'], topics: [{ match: '*' }] }],
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [{ match: '*', match_type: 'regexp' }] }],
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [{ match_type: 'exact' }] }],
      [{ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [null] }],
      [{ type: 'mercure', actions: ['publish'], topics: [{ match: 'https://example.com/*a*a*a*b', match_type: 'urlpattern' }] }],
    ];
    for (const details of malformed) await assertInvalid(hub, await accessToken({ details }), JSON.stringify(details));
    const foreign = await accessToken({
      details: [
        { type: 'tenant', topics: 'acme', actions: { read: true } },
        { type: 'mercure', actions: ['publish'], topics: [{ match: 'x' }] },
      ],
    });
    assert.equal((await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(foreign))).status, 200);
    await assertInvalid(hub, await legacyToken({ publish: 'not-a-list' } as never), 'legacy claim that is not a list');
  });

  it('checks a token presented in a cookie the same way', async () => {
    const expired = await accessToken(everything, { exp: now() - 10 });
    const res = await fetch(mercureUrl(hub.url, [['match', 'x']]), { headers: { Cookie: `__Secure-mercure_access_token=${expired}` } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', INVALID_TOKEN);
    await res.body?.cancel();
  });
});

describe('asymmetric keys, key files and JWKS', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPublicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sse-relay-keys-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('verifies RS256 with a PEM public key and refuses algorithm confusion', async () => {
    const keyFile = join(dir, 'publisher.pem');
    await writeFile(keyFile, rsaPublicPem);
    const hub = await startHub({ publisherJwtKey: `@${keyFile}`, jwtAlgorithm: 'RS256' });
    try {
      const good = await legacyToken({ publish: ['*'] }, {}, { alg: 'RS256', key: rsa.privateKey as unknown as CryptoKey });
      assert.equal((await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(good))).status, 200);
      // The classic confusion: HS256 "signed" with the public key as the HMAC secret.
      const confused = await legacyToken({ publish: ['*'] }, {}, { alg: 'HS256', key: rsaPublicPem });
      await assertInvalid(hub, confused, 'HS256 token signed with the RS256 public key');
      const ps256 = await legacyToken({ publish: ['*'] }, {}, { alg: 'PS256', key: rsa.privateKey as unknown as CryptoKey });
      await assertInvalid(hub, ps256, 'PS256 with the right key but the wrong algorithm');
    } finally {
      await hub.close();
    }
  });

  it('refuses to start with a key that does not fit the algorithm', async () => {
    await assert.rejects(startHub({ publisherJwtKey: rsaPublicPem, jwtAlgorithm: 'HS256' }), { code: 'HUB_ERR_CONFIG_INVALID' });
    await assert.rejects(startHub({ publisherJwtKey: 'a-shared-secret', jwtAlgorithm: 'RS256' }), { code: 'HUB_ERR_CONFIG_INVALID' });
    await assert.rejects(startHub({ publisherJwtKey: rsaPublicPem, jwtAlgorithm: 'ES256' }), { code: 'HUB_ERR_CONFIG_INVALID' });
    await assert.rejects(startHub({ publisherJwtKey: `@${join(dir, 'missing.pem')}` }), { code: 'HUB_ERR_CONFIG_INVALID' });
  });

  it('reads an HMAC secret from @file (without its trailing newline) and a separate subscriber key', async () => {
    const file = join(dir, 'secret.txt');
    await writeFile(file, `${MERCURE_SECRET}\n`);
    const hub = await startHub({ publisherJwtKey: `@${file}`, subscriberJwtKey: 'the-subscriber-secret' });
    try {
      const publisher = await legacyToken({ publish: ['*'] });
      assert.equal((await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(publisher))).status, 200);
      const wrongKey = await openStream(mercureUrl(hub.url, [['match', 'x']]), bearer(await legacyToken({ subscribe: ['*'] })));
      assert.equal(wrongKey.status, 401);
      wrongKey.close();
      const rightKey = await openStream(mercureUrl(hub.url, [['match', 'x']]), bearer(await legacyToken({ subscribe: ['*'] }, {}, { key: 'the-subscriber-secret' })));
      assert.equal(rightKey.status, 200);
      rightKey.close();
    } finally {
      await hub.close();
    }
  });

  it('fetches keys from a JWKS URL and picks them by kid', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    let fetched = 0;
    const jwks: Server = createServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const address = jwks.address() as { port: number };
    const hub = await startHub({ jwksUrl: `http://127.0.0.1:${address.port}/jwks.json`, jwtAlgorithm: 'ES256' });
    try {
      const sign = (key: unknown, kid: string): Promise<string> =>
        new SignJWT({ mercure: { publish: ['*'] } }).setProtectedHeader({ alg: 'ES256', kid }).sign(key as CryptoKey);
      assert.equal((await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], bearer(await sign(ec.privateKey, 'k1')))).status, 200);
      await assertInvalid(hub, await sign(other.privateKey, 'k1'), 'JWKS: wrong key under a known kid');
      await assertInvalid(hub, await sign(other.privateKey, 'unknown'), 'JWKS: unknown kid');
      assert.ok(fetched >= 1);
    } finally {
      await hub.close();
      await new Promise((resolve) => jwks.close(resolve));
    }
  });
});
