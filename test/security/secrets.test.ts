/**
 * Secrets never reach the output: store URL passwords, JWT keys and the metrics token appear in
 * no log line, no error message, no `/stats` and no `/metrics`, whether Redis is there, is
 * unreachable, or the option holding the secret is malformed. The real CLI runs against a real
 * password-protected redis-server; everything it writes is captured.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { legacyToken } from '../auth/tokens.js';
import { runCli, spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { closedPort } from '../helpers/ports.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { eventually } from '../helpers/sse-client.js';

// Distinct, greppable and long enough that no other text contains them by chance.
const REDIS_PASSWORD = `redispw${randomBytes(12).toString('hex')}`;
const JWT_KEY = `jwtkey${randomBytes(16).toString('hex')}`;
const METRICS_TOKEN = `metricstok${randomBytes(12).toString('hex')}`;
const SECRETS = [REDIS_PASSWORD, JWT_KEY, METRICS_TOKEN];

/** Fails naming the line and the secret it holds; percent-encoded forms count too. */
function assertNoSecret(what: string, text: string): void {
  for (const secret of SECRETS) {
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      const line = text.split('\n').find((l) => l.includes(form));
      assert.equal(line, undefined, `${what} contains a secret: ${line}`);
    }
  }
}


/** GETs and POSTs what a client or a scraper would, returning every answer as text. */
async function exercise(hub: HubProcess, token: string): Promise<string> {
  const answers: string[] = [];
  const record = async (label: string, res: Response): Promise<void> => {
    const headers: string[] = [];
    res.headers.forEach((value, name) => headers.push(`${name}: ${value}`));
    answers.push(`${label} ${res.status} ${headers.join('; ')} ${await res.text()}`);
  };
  const json = { 'content-type': 'application/json' };
  await record('publish', await fetch(`${hub.url}/messages/secrets`, { method: 'POST', body: '{"message":"m"}', headers: { ...json, Authorization: `Bearer ${token}` } }));
  const wrongKey = await legacyToken({ publish: ['*'] }, {}, { key: 'not-the-key' });
  await record('publish with a wrong key', await fetch(`${hub.url}/messages/secrets`, { method: 'POST', body: '{"message":"m"}', headers: { ...json, Authorization: `Bearer ${wrongKey}` } }));
  await record('stats', await fetch(`${hub.url}/stats`));
  await record('metrics', await fetch(`${hub.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } }));
  await record('metrics without token', await fetch(`${hub.url}/metrics`));
  await record('readyz', await fetch(`${hub.url}/readyz`));
  return answers.join('\n');
}

async function stop(hub: HubProcess): Promise<void> {
  hub.child.kill('SIGTERM');
  await hub.exited;
}

describe('secrets in logs, errors, /stats and /metrics', () => {
  let redis: TestRedis;
  let dir: string;
  let token: string;
  before(async () => {
    redis = await startRedis({ password: REDIS_PASSWORD });
    dir = await mkdtemp(join(tmpdir(), 'sse-relay-secrets-'));
    token = await legacyToken({ publish: ['*'], subscribe: ['*'] }, {}, { key: JWT_KEY });
  });
  after(async () => {
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a hub on a password-protected Redis with a JWT key and a metrics token, logging at trace, shows none of them', async () => {
    assert.ok(redis.url.includes(REDIS_PASSWORD), 'the hub is given the password in the URL');
    const hub = await spawnHub([
      '--store', redis.url,
      '--redis-key-prefix', `secrets-${process.pid}:`,
      '--publisher-jwt-key', JWT_KEY,
      '--metrics-token', METRICS_TOKEN,
      '--log-level', 'trace',
    ]);
    let answers: string;
    try {
      answers = await exercise(hub, token);
      assert.match(answers, /^publish 200 /m, answers);
      assert.match(answers, /^metrics 200 /m, answers);
    } finally {
      await stop(hub);
    }
    // Not vacuous: the hub did log, and said which Redis it uses.
    assert.match(hub.stdout(), /sse-relay listening/);
    assert.ok(hub.stdout().includes(`127.0.0.1:${redis.port}`), hub.stdout());
    assertNoSecret('stdout', hub.stdout());
    assertNoSecret('stderr', hub.stderr());
    assertNoSecret('the answers', answers);
  });

  it('with Redis unreachable at start (a password in the URL), says so clearly without the password', async () => {
    const port = await closedPort();
    const hub = await spawnHub(['--store', `redis://:${REDIS_PASSWORD}@127.0.0.1:${port}`, '--publisher-jwt-key', JWT_KEY, '--log-level', 'info']);
    let answers: string;
    try {
      await eventually(() => /unreachable/.test(hub.stdout()), 10_000, 'the unreachable-Redis log line');
      answers = await exercise(hub, token);
      assert.match(answers, /^publish 503 .*unreachable/m, answers);
      assert.match(answers, /^readyz 503 /m, answers);
    } finally {
      await stop(hub);
    }
    assert.ok(hub.stdout().includes(`127.0.0.1:${port}`), `the log names where Redis was expected: ${hub.stdout()}`);
    assertNoSecret('stdout', hub.stdout());
    assertNoSecret('stderr', hub.stderr());
    assertNoSecret('the answers', answers);
  });

  it('refuses malformed option values that hold a secret, and a wrong Redis password, without echoing the secret', async () => {
    const yaml = join(dir, 'broken.yaml');
    // An unclosed flow sequence: YAML's error quotes the offending line, secret and all.
    await writeFile(yaml, `logLevel: info\npublisherJwtKey: [${JWT_KEY}\n`);
    const cases: { args: string[]; env?: Record<string, string>; expect: RegExp; code?: RegExp }[] = [
      // Well-formed, but Redis refuses the password (it contains the real one, so it is caught too).
      { args: ['--store', `redis://:${REDIS_PASSWORD}x@127.0.0.1:${redis.port}`], expect: new RegExp(`127\\.0\\.0\\.1:${redis.port}.*WRONGPASS`), code: /HUB_ERR_STORE_OPEN/ },
      { args: ['--store', `redis://:${REDIS_PASSWORD}@127.0.0.1:99999`], expect: /--store.*127\.0\.0\.1:99999/ },
      { args: ['--store', `redis://admin:${REDIS_PASSWORD}@bad host/0`], expect: /--store/ },
      { args: [], env: { REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:99999` }, expect: /REDIS_URL/ },
      { args: [], env: { SSE_RELAY_STORE: `redis://:${REDIS_PASSWORD}@[::1` }, expect: /SSE_RELAY_STORE/ },
      { args: ['--jwks-url', `ftp://user:${REDIS_PASSWORD}@keys.example/jwks.json`], expect: /--jwks-url.*keys\.example/ },
      { args: ['--config', yaml], expect: /broken\.yaml.*line \d+/ },
      { args: ['--jwt-algorithm', 'RS256', '--publisher-jwt-key', JWT_KEY], expect: /PEM public key/ },
      { args: ['--jwt-algorithm', 'RS256', '--publisher-jwt-key', `-----BEGIN PUBLIC KEY-----\n${JWT_KEY}\n-----END PUBLIC KEY-----`], expect: /PEM key/ },
    ];
    for (const { args, env, expect, code = /HUB_ERR_CONFIG_INVALID/ } of cases) {
      const result = await runCli(['serve', '--port', '0', '--data-dir', dir, ...args], { env });
      const what = `serve ${args.join(' ')} ${JSON.stringify(env ?? {})}`;
      assert.equal(result.code, 1, `${what} must refuse to start: ${result.stderr}`);
      assert.match(result.stderr, code, `${what}: ${result.stderr}`);
      assert.match(result.stderr, expect, `${what}: the error still says what is wrong: ${result.stderr}`);
      assertNoSecret(`${what} stderr`, result.stderr);
      assertNoSecret(`${what} stdout`, result.stdout);
    }
  });
});
