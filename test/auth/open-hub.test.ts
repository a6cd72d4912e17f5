import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { isLoopbackHost } from '../../src/auth/authorizer.js';
import { CLI_PATH } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';
import { MERCURE_SECRET, mercurePublish, mercureUrl } from './tokens.js';

describe('an open hub (no keys)', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub();
  });
  after(() => hub.close());

  it('lets anyone publish and subscribe, and ignores presented tokens it cannot check', async () => {
    const stream = await openStream(mercureUrl(hub.url, [['match', 'open']]), { Authorization: 'Bearer garbage' });
    try {
      assert.equal(stream.status, 200);
      const res = await mercurePublish(hub.url, [['topic', 'open'], ['data', 'x']], { Authorization: 'Bearer garbage' });
      assert.equal(res.status, 200);
      await stream.waitForCount(1);
    } finally {
      stream.close();
    }
  });

  it('delivers private updates to nobody (no token can prove a grant)', async () => {
    const stream = await openStream(mercureUrl(hub.url, [['match', 'private-open']]));
    try {
      assert.equal((await mercurePublish(hub.url, [['topic', 'private-open'], ['data', 'secret'], ['private', 'on']])).status, 200);
      assert.equal((await mercurePublish(hub.url, [['topic', 'private-open'], ['data', 'public']])).status, 200);
      await stream.waitFor((events) => events.some((e) => e.data === 'public'));
      assert.deepEqual(stream.events.map((e) => e.data), ['public']);
    } finally {
      stream.close();
    }
  });
});

describe('exposure rule', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', 'example.com', '128.0.0.1']) assert.ok(!isLoopbackHost(host), host);
  });

  it('refuses to listen on a non-loopback address without a publisher key', async () => {
    await assert.rejects(startHub({ host: '0.0.0.0' }), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HUB_ERR_CONFIG_INVALID');
      assert.match(error.message, /--insecure-open/);
      return true;
    });
  });

  it('listens there with --insecure-open, or with a publisher key', async () => {
    for (const overrides of [{ insecureOpen: true }, { publisherJwtKey: MERCURE_SECRET }]) {
      const hub = await startHub({ host: '0.0.0.0', ...overrides });
      try {
        const res = await fetch(`${hub.url}/healthz`);
        assert.equal(res.status, 200);
        await res.body?.cancel();
      } finally {
        await hub.close();
      }
    }
  });

  it('warns at start-up that the hub is open', async () => {
    const child = spawn(process.execPath, [CLI_PATH, 'serve', '--port', '0', '--store', 'memory', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no warning within 20 s: ${output}`)), 20_000);
        const onData = (chunk: Buffer): void => {
          output += chunk.toString('utf8');
          if (/No publisher key is set/.test(output)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    }
  });
});
