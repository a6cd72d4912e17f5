/**
 * A refused token says why, on both APIs (the JSON error of /messages, the plain-text body and
 * `error_description` of Mercure) and in the hub's log at info level, never quoting the token.
 * The hub runs as a child process so its real log lines are read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UnsecuredJWT } from 'jose';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { eventually } from '../helpers/sse-client.js';
import { accessToken, CONFORMANCE_AUDIENCE, CONFORMANCE_ISSUER, legacyToken, MERCURE_SECRET, mercurePublish, mercureUrl } from './tokens.js';

const now = (): number => Math.floor(Date.now() / 1000);
const everything = { publish: [{ match: '*' }], subscribe: [{ match: '*' }] };

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  code?: string;
  suppressed?: number;
}

describe('token failures say why', () => {
  let hub: HubProcess;
  before(async () => {
    hub = await spawnHub(['--store', 'memory', '--log-level', 'info', '--publisher-jwt-key', MERCURE_SECRET, '--jwt-issuer', CONFORMANCE_ISSUER, '--jwt-audience', CONFORMANCE_AUDIENCE]);
  });
  after(async () => {
    hub.child.kill('SIGTERM');
    await hub.exited;
  });

  const refusedLines = (): LogLine[] =>
    hub
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line.msg === 'access token refused');

  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['expired', () => accessToken(everything, { exp: now() - 10 }), /^The access token expired$/],
    ['not yet valid', () => accessToken(everything, { nbf: now() + 3600 }), /invalid: it is not valid yet \(its nbf is in the future\)$/],
    ['wrong issuer', () => accessToken(everything, { iss: 'https://evil.example' }), /invalid: its issuer \(iss\) is not the one this hub trusts \(--jwt-issuer\)$/],
    ['no issuer', () => accessToken(everything, { iss: undefined }), /invalid: it has no issuer \(iss\), and --jwt-issuer requires one$/],
    ['wrong audience', () => accessToken(everything, { aud: 'https://other.example/.well-known/mercure' }), /invalid: its audience \(aud\) does not include this hub \(--jwt-audience\)$/],
    ['legacy token of another issuer', () => legacyToken({ publish: ['*'] }, { iss: 'https://evil.example' }), /invalid: its issuer \(iss\) is not the one/],
    ['missing exp on an RFC 9068 token', () => accessToken(everything, { exp: undefined }), /invalid: it is an RFC 9068 access token \(typ at\+jwt\) without the exp claim it requires$/],
    ['bad signature', () => accessToken(everything, {}, { key: 'another-secret-of-decent-length!!' }), /invalid: its signature does not verify with the hub's key$/],
    ['algorithm not allowed', () => legacyToken({ publish: ['*'] }, {}, { alg: 'HS512' }), /invalid: it is not signed with HS256, the only algorithm this hub accepts \(--jwt-algorithm\)$/],
    ['alg none', async () => new UnsecuredJWT({ mercure: { publish: ['*'] } }).encode(), /invalid: it is not signed with HS256/],
    ['malformed', async () => 'not-a-jwt', /invalid: it is malformed \(not a signed JWT/],
    ['malformed parts', async () => 'eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln', /invalid: it is malformed|invalid: its signature/],
    ['malformed grants', () => accessToken({ details: 'not an array' }), /invalid: its authorization_details is not an array/],
  ];

  for (const [what, makeToken, reason] of cases) {
    it(`${what}: /messages and Mercure both say so, and the log says so at info level`, async () => {
      const token = await makeToken();
      const headers = { Authorization: `Bearer ${token}` };
      const before = refusedLines().length;

      const article = await fetch(`${hub.url}/messages/x`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain', ...headers } });
      assert.equal(article.status, 401);
      const { error } = (await article.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'HUB_ERR_TOKEN_INVALID');
      assert.match(error.message, reason);

      const subscribed = await fetch(`${hub.url}/messages/subscribe/x`, { headers });
      assert.equal(subscribed.status, 401);
      assert.match(((await subscribed.json()) as { error: { message: string } }).error.message, reason);

      const published = await mercurePublish(hub.url, [['topic', 'x'], ['data', 'x']], headers);
      assert.equal(published.status, 401);
      assert.match(published.text.trim(), reason);
      const challenge = /error_description="([^"]*)"/.exec(published.headers.get('www-authenticate') ?? '')?.[1];
      assert.match(challenge ?? '', reason);

      const mercureStream = await fetch(mercureUrl(hub.url, [['match', 'x']]), { headers });
      assert.equal(mercureStream.status, 401);
      assert.match((await mercureStream.text()).trim(), reason);

      await eventually(() => refusedLines().length >= before + 4, 5000, 'four log lines');
      for (const line of refusedLines().slice(before)) {
        assert.equal(line.level, 30, 'info');
        assert.equal(line.code, 'HUB_ERR_TOKEN_INVALID');
        assert.match(line.reason ?? '', reason);
      }
      // The token never reaches the log, whole or any of its three parts.
      for (const part of [token, ...token.split('.').filter((p) => p.length > 8)]) assert.ok(!hub.stdout().includes(part), `the log quotes ${what}'s token`);
    });
  }

  it('a flood of refused tokens is capped in the log, and a summary line counts what it left out', async () => {
    const lines = (): LogLine[] =>
      hub
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as LogLine);
    const accounted = (): number =>
      lines().reduce((sum, line) => sum + (line.msg === 'access token refused' ? 1 : line.msg.startsWith('access token refused: ') ? (line.suppressed ?? 0) : 0), 0);
    const before = accounted();
    const fullBefore = refusedLines().length;
    const flood = 400;
    const headers = { Authorization: 'Bearer not-a-jwt', 'content-type': 'text/plain' };
    for (let i = 0; i < flood; i++) {
      const res = await fetch(`${hub.url}/messages/flood`, { method: 'POST', body: 'x', headers });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
    }
    // Every refusal is either a line of its own or counted in a summary, once its window ends.
    await eventually(() => accounted() - before === flood, 15_000, 'the summary line of the flood');
    const full = refusedLines().length - fullBefore;
    assert.ok(full <= 200, `${full} of ${flood} refusals logged in full: at most 100 per 10 s window`);
    const summary = lines().find((line) => line.msg.startsWith('access token refused: '));
    assert.equal(summary?.level, 30, 'the summary is logged at the level of the lines it stands for');
    assert.match(summary!.msg, /\d+ more lines like this were not logged in the last 10 s$/);
  });
});
