import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { CLI_PATH, runCli } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';

const KEY = 'cli-token-test-secret-of-enough-length';

/** `sse-relay token ...` printed on stdout, as a user would capture it with `$(...)`. */
async function mint(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(['token', '--key', KEY, ...args]);
  assert.equal(code, 0, stderr);
  return stdout.trim();
}

/** Runs `sse-relay subscribe`, resolves with its stdout once `message` was printed, then stops it. */
function subscribeUntil(args: string[], env: Record<string, string>, onOpen: () => Promise<void>, message: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'subscribe', ...args], { env: { ...process.env, SSE_RELAY_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let published = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no message; stdout: ${stdout}; stderr: ${stderr}`));
    }, 15_000);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (!published && stderr.includes('subscribed to')) {
        published = true;
        onOpen().catch(reject);
      }
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes(message)) child.kill('SIGINT');
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ stdout, stderr });
    });
  });
}

describe('publish and subscribe against a hub with keys (the README Mercure set-up)', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', publisherJwtKey: KEY });
  });
  after(() => hub.close());

  test('without a token: 401 with a message saying to pass --token, exit 1, no stack trace', async () => {
    for (const command of [['publish', 'keyed', 'hello'], ['subscribe', 'keyed']]) {
      const result = await runCli([...command, '--url', hub.url], { env: { SSE_RELAY_TOKEN: '' } });
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /HTTP 401/);
      assert.match(result.stderr, /needs a token: pass --token/);
      assert.doesNotMatch(result.stderr, /^\s+at /m);
    }
  });

  test('--token from `sse-relay token` publishes; a subscriber with a subscribe grant receives it', async () => {
    const publishToken = await mint(['--publish', 'keyed']);
    const subscribeToken = await mint(['--subscribe', 'keyed']);
    const { stdout } = await subscribeUntil(['keyed', '--url', hub.url, '--token', subscribeToken], {}, async () => {
      const published = await runCli(['publish', 'keyed', 'with a token', '--url', hub.url, '--token', publishToken]);
      assert.equal(published.code, 0, published.stderr);
    }, 'with a token');
    assert.match(stdout, / with a token\n/);
  });

  test('SSE_RELAY_TOKEN and --header work like --token', async () => {
    const token = await mint(['--publish', 'keyed', '--subscribe', 'keyed']);
    const viaEnv = await runCli(['publish', 'keyed', 'via env', '--url', hub.url], { env: { SSE_RELAY_TOKEN: token } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const viaHeader = await runCli(['publish', 'keyed', 'via header', '--url', hub.url, '--header', 'X-Trace: 1', '--header', `Authorization: Bearer ${token}`], { env: { SSE_RELAY_TOKEN: '' } });
    assert.equal(viaHeader.code, 0, viaHeader.stderr);
    const { stdout } = await subscribeUntil(['keyed', '--url', hub.url, '--last-event-id', 'earliest'], { SSE_RELAY_TOKEN: token }, async () => undefined, 'via header');
    assert.match(stdout, / via env\n[^\n]* via header\n/);
  });

  test('a token the hub rejects says so', async () => {
    const result = await runCli(['publish', 'keyed', 'hello', '--url', hub.url, '--token', 'not.a.jwt']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /HUB_ERR_TOKEN_INVALID.*HTTP 401.*rejected the token/);
  });
  test('token with no grant still prints the token but warns on stderr; with a grant it does not', async () => {
    const bare = await runCli(['token', '--key', KEY]);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'only the token on stdout');
    assert.match(bare.stderr, /^sse-relay: warning: this token grants nothing: it can neither publish nor subscribe/);
    const granted = await runCli(['token', '--key', KEY, '--publish', 'demo']);
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal(granted.stderr, '');
  });
});
