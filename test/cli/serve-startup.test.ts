/**
 * `sse-relay serve` as a child process: what a person sees when it starts, and when it cannot.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, spawnHub } from '../helpers/hub-process.js';

/** `serve` on a free port; the hub must stop by itself (it cannot start). */
function failingServe(args: string[], env: Record<string, string> = {}) {
  return runCli(['serve', '--port', '0', '--log-level', 'silent', ...args], { env, timeoutMs: 15_000 });
}

describe('sse-relay serve start-up', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sse-relay-startup-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('logs "listening" once: one JSON log line on stdout, one line for a person on stderr', async () => {
    const hub = await spawnHub(['--log-level', 'info', '--data-dir', join(dir, 'data')]);
    hub.child.kill('SIGTERM');
    assert.equal(await hub.exited, 0);
    const logLines = hub.stdout().split('\n').filter((line) => /listening/i.test(line));
    assert.equal(logLines.length, 1, hub.stdout());
    assert.equal((JSON.parse(logLines[0]!) as { url?: string }).url, hub.url);
    assert.deepEqual(hub.stderr().split('\n').filter((line) => /listening/i.test(line)), [`sse-relay listening on ${hub.url}`]);
  });

  const unusable: Array<[string, () => Promise<string>, RegExp]> = [
    ['a directory that cannot be created (/proc)', async () => '/proc/sse-relay-nope', /cannot create the data directory \/proc\/sse-relay-nope: the file system of \/proc does not allow creating directories/],
    ['a directory whose parent cannot be created', async () => '/proc/sse-relay-nope/deeper', /cannot create the data directory \/proc\/sse-relay-nope\/deeper/],
    ['an existing directory the hub cannot write to', async () => '/proc/self', /the data directory \/proc\/self is not writable \(permission denied\)/],
    [
      'a regular file',
      async () => {
        const file = join(dir, 'a-file');
        await writeFile(file, 'not a directory');
        return file;
      },
      /the data directory \S+a-file exists and is not a directory/,
    ],
    [
      'a path under a regular file',
      async () => {
        const file = join(dir, 'another-file');
        await writeFile(file, 'not a directory');
        return join(file, 'data');
      },
      /a parent of the data directory \S+another-file\/data is not a directory/,
    ],
  ];
  for (const [what, path, reason] of unusable) {
    test(`--data-dir naming ${what}: exits 1 at once with one line naming the path and the reason`, async () => {
      const dataDir = await path();
      const result = await failingServe(['--data-dir', dataDir]);
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, '');
      const lines = result.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, reason);
      assert.match(lines[0]!, /\(HUB_ERR_STORE_OPEN\)$/);
    });
  }

  test('an unknown SSE_RELAY_* variable is fatal, named, with the closest known one', async () => {
    const result = await failingServe(['--store', 'memory'], { SSE_RELAY_PROT: '3001' });
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr,
      'sse-relay: Unknown environment variable SSE_RELAY_PROT (did you mean SSE_RELAY_PORT?); unset it, or see `sse-relay serve --help` for the known ones (HUB_ERR_CONFIG_INVALID)\n',
    );
    const far = await failingServe(['--store', 'memory'], { SSE_RELAY_SOMETHING_ELSE_ENTIRELY: '1' });
    assert.equal(far.code, 1);
    assert.match(far.stderr, /Unknown environment variable SSE_RELAY_SOMETHING_ELSE_ENTIRELY; unset it/);
  });

  test('an unknown config-file key is reported the same way, with the closest known key', async () => {
    const file = join(dir, 'hub.yaml');
    await writeFile(file, 'prot: 3001\n');
    const result = await failingServe(['--config', file]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /Unknown option "prot" in config file \S+hub\.yaml \(did you mean "port"\?\) \(HUB_ERR_CONFIG_INVALID\)/);
  });

  test('the variables the CLI itself reads are known to serve', async () => {
    const hub = await spawnHub(['--store', 'memory'], { SSE_RELAY_TOKEN: 'x.y.z', SSE_RELAY_URL: 'http://127.0.0.1:1', SSE_RELAY_CONFIG: '' });
    hub.child.kill('SIGTERM');
    assert.equal(await hub.exited, 0);
  });
});
