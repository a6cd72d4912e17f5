import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadServeOptions } from '../../src/config/load.js';
import { RelayError } from '../../src/hub/errors.js';
import { runCli } from '../helpers/hub-process.js';

describe('configuration files and start-up validation', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sse-relay-config-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const write = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const rejects = (configFile: string, pattern: RegExp): void => {
    assert.throws(
      () => loadServeOptions({ configFile }),
      (e: unknown) => e instanceof RelayError && e.code === 'HUB_ERR_CONFIG_INVALID' && pattern.test(e.message),
    );
  };

  it('refuses --subscriptions with a redis-cluster:// store, whose nodes would each list only their own', () => {
    assert.throws(
      () => loadServeOptions({ flags: { store: 'redis-cluster://127.0.0.1:7000', subscriptions: 'true' } }),
      (e: unknown) => e instanceof RelayError && e.code === 'HUB_ERR_CONFIG_INVALID' && /--subscriptions is not supported with a redis-cluster:\/\/ store/.test(e.message),
    );
    assert.equal(loadServeOptions({ flags: { store: 'redis://127.0.0.1:6379', subscriptions: 'true' } }).subscriptions, true);
  });

  it('reads YAML with camelCase or kebab-case keys; env and flags override it', async () => {
    const path = await write('hub.yaml', 'port: 4100\ndata-dir: /tmp/relay\nretentionAge: 2h\ncorsOrigins:\n  - https://a.example\n  - https://b.example\nanonymous: true\n');
    const fromFile = loadServeOptions({ configFile: path });
    assert.equal(fromFile.port, 4100);
    assert.equal(fromFile.dataDir, '/tmp/relay');
    assert.equal(fromFile.retentionAge, 7_200_000);
    assert.deepEqual(fromFile.corsOrigins, ['https://a.example', 'https://b.example']);
    assert.equal(fromFile.anonymous, true);
    const overridden = loadServeOptions({ configFile: path, env: { SSE_RELAY_PORT: '4200' }, flags: { dataDir: '/srv' } });
    assert.equal(overridden.port, 4200);
    assert.equal(overridden.dataDir, '/srv');
  });

  it('reads JSON', async () => {
    const path = await write('hub.json', JSON.stringify({ store: 'memory', heartbeatInterval: '30s' }));
    const options = loadServeOptions({ configFile: path });
    assert.equal(options.store, 'memory');
    assert.equal(options.heartbeatInterval, 30_000);
  });

  it('rejects an unknown option naming it', async () => rejects(await write('unknown.yaml', 'prot: 3000\n'), /Unknown option "prot"/));
  it('rejects an invalid value naming the option and the file', async () =>
    rejects(await write('bad.yaml', 'port: high\n'), /"port" in .*bad\.yaml.*integer/));
  it('rejects a file that is not an object', async () => rejects(await write('list.yaml', '- 1\n- 2\n'), /must contain an object/));
  it('rejects unparseable YAML', async () => rejects(await write('broken.yaml', 'port: [1,\n'), /not valid JSON or YAML/));
  it('rejects a missing file', () => rejects(join(dir, 'absent.yaml'), /Cannot read config file/));

  it('sse-relay serve stops with exit code 1 and names a bad flag, env variable or option', async () => {
    const badFlag = await runCli(['serve', '--port', 'eighty']);
    assert.equal(badFlag.code, 1);
    assert.match(badFlag.stderr, /--port/);
    const badEnv = await runCli(['serve'], { env: { SSE_RELAY_MAX_BODY_SIZE: 'huge' } });
    assert.equal(badEnv.code, 1);
    assert.match(badEnv.stderr, /SSE_RELAY_MAX_BODY_SIZE/);
    const unknown = await runCli(['serve', '--no-such-option']);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /no-such-option/);
  });

  it('sse-relay serve --help lists every option with its default', async () => {
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--port', '--host', '--data-dir', '--store', '--retention-count', '--max-backlog', '--config']) {
      assert.ok(help.stdout.includes(flag), flag);
    }
    assert.match(help.stdout, /default: 3000/);
  });
});
