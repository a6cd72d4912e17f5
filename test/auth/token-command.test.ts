import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { runCli } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';
import { CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, MERCURE_SECRET, mercurePublish, mercureUrl } from './tokens.js';

async function mint(args: string[], input?: string): Promise<string> {
  const { code, stdout, stderr } = await runCli(['token', ...args], { input });
  assert.equal(code, 0, stderr);
  return stdout.trim();
}

describe('sse-relay token', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ publisherJwtKey: MERCURE_SECRET, jwtIssuer: CONFORMANCE_ISSUER, jwtAudience: CONFORMANCE_AUDIENCE });
  });
  after(() => hub.close());

  it('mints an RFC 9068 access token the hub accepts, granting exactly what it was asked', async () => {
    const token = await mint([
      '--key', MERCURE_SECRET, '--iss', CONFORMANCE_ISSUER, '--aud', CONFORMANCE_AUDIENCE,
      '--publish', 'https://example.com/a', '--publish', 'https://example.com/b',
      '--subscribe-urlpattern', 'https://example.com/users/:id', '--expires', '15m',
    ]);
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
    const claims = decodeJwt(token);
    assert.ok(typeof claims.exp === 'number' && claims.exp - Date.now() / 1000 <= 15 * 60 + 1);
    assert.deepEqual(claims.authorization_details, [
      { type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: [{ match: 'https://example.com/a' }, { match: 'https://example.com/b' }] },
      { type: 'https://mercure.rocks/authorization-detail', actions: ['subscribe'], topics: [{ match: 'https://example.com/users/:id', match_type: 'urlpattern' }] },
    ]);
    const auth = { Authorization: `Bearer ${token}` };
    assert.equal((await mercurePublish(hub.url, [['topic', 'https://example.com/b'], ['data', 'x']], auth)).status, 200);
    assert.equal((await mercurePublish(hub.url, [['topic', 'https://example.com/c'], ['data', 'x']], auth)).status, 403);
    const stream = await openStream(mercureUrl(hub.url, [['match', 'https://example.com/users/7']]), auth);
    try {
      assert.equal(stream.status, 200);
      await mercurePublish(hub.url, [['topic', 'https://example.com/users/7'], ['data', 'private'], ['private', 'on']], { Authorization: `Bearer ${await mint(['--key', MERCURE_SECRET, '--iss', CONFORMANCE_ISSUER, '--aud', CONFORMANCE_AUDIENCE, '--publish', '*'])}` });
      await stream.waitFor((events) => events.some((e) => e.data === 'private'));
    } finally {
      stream.close();
    }
  });

  it('mints a legacy token (mercure claim, key from stdin, no expiry)', async () => {
    const token = await mint(['--profile', 'legacy', '--key', '@-', '--publish', '*', '--subscribe', 'https://example.com/{id}', '--expires', '0'], `${MERCURE_SECRET}\n`);
    assert.equal(decodeProtectedHeader(token).typ, undefined);
    const claims = decodeJwt(token);
    assert.deepEqual(claims.mercure, { publish: ['*'], subscribe: ['https://example.com/{id}'] });
    assert.equal(claims.exp, undefined);
    assert.equal((await mercurePublish(hub.url, [['topic', 'anything'], ['data', 'x']], { Authorization: `Bearer ${token}` })).status, 200);
  });

  it('signs with a PEM private key for asymmetric algorithms', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const token = await mint(['--alg', 'ES256', '--key', pem, '--publish', '*']);
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
  });

  it('refuses contradictory options', async () => {
    for (const args of [
      ['--key', 'secret', '--expires', '0'],
      ['--key', 'secret', '--profile', 'legacy', '--publish-urlpattern', 'https://e.com/:x'],
      ['--alg', 'RS256', '--key', 'not-a-pem'],
      ['--publish', '*'],
    ]) {
      const { code, stderr } = await runCli(['token', ...args]);
      assert.notEqual(code, 0, args.join(' '));
      assert.ok(stderr.length > 0);
    }
  });
});
