/**
 * `import 'sse-relay'` as a user's program does it (by package name, through `exports`): it
 * resolves, starts a hub with the options of `serve`, takes a store built by the caller, and
 * its errors are the hub's error types. `npm pack` ships the entry point and its types.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { isMessage, openStream, publish } from '../helpers/sse-client.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
type Package = typeof import('../../src/index.js');

describe("the package entry point ('sse-relay')", () => {
  let relay: Package;
  let dataDir: string;
  before(async () => {
    relay = (await import('sse-relay' as string)) as Package;
    dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-entry-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('exports the hub, its stores, its options and its error types', () => {
    for (const name of ['startRelay', 'openRelayCore', 'serveOptions', 'loadServeOptions', 'Hub', 'MemoryStore', 'SqliteStore', 'RedisStore', 'createStore', 'RelayError', 'isRelayError', 'ERROR_CODES', 'DEFAULT_SERVE_OPTIONS'] as const) {
      assert.ok(relay[name] !== undefined, `exports ${name}`);
    }
  });

  it('starts a hub with the options of serve that both APIs answer on, and stops it', async () => {
    const server = await relay.startRelay({ port: 0, store: 'memory', logLevel: 'silent' });
    try {
      const stream = await openStream(`${server.url}/messages/subscribe/embedded`);
      await publish(server.url, 'embedded', 'hello from an embedded hub');
      await stream.waitFor((events) => events.some(isMessage));
      assert.deepEqual(stream.events.filter(isMessage).map((e) => e.data), ['hello from an embedded hub']);
      const mercure = await fetch(`${server.url}/.well-known/mercure`, { method: 'POST', body: new URLSearchParams({ topic: 'https://example.com/x', data: 'y' }) });
      assert.equal(mercure.status, 200);
      stream.close();
    } finally {
      assert.deepEqual(await server.close(), { forced: false, cutConnections: 0 });
    }
  });

  it('takes a store the caller built, and publishing through the Hub reaches HTTP subscribers', async () => {
    const store = new relay.SqliteStore({ dataDir, fsync: 'normal', maxMessagesPerTopic: 100, maxAgeMs: 0 });
    const server = await relay.startRelay({ port: 0, logLevel: 'silent' }, { store });
    try {
      const stream = await openStream(`${server.url}/messages/subscribe/from-code`);
      await server.hub.publish({ topics: ['from-code'], data: 'published in process' });
      await stream.waitFor((events) => events.some(isMessage));
      assert.deepEqual(stream.events.filter(isMessage).map((e) => e.data), ['published in process']);
      stream.close();
    } finally {
      await server.close();
    }
    // The caller's store was the one used: the message is in its directory.
    const again = await relay.startRelay({ port: 0, logLevel: 'silent', dataDir });
    try {
      const replay = await openStream(`${again.url}/messages/subscribe/from-code`, { 'Last-Event-ID': 'earliest' });
      await replay.waitFor((events) => events.some(isMessage));
      assert.deepEqual(replay.events.filter(isMessage).map((e) => e.data), ['published in process']);
      replay.close();
    } finally {
      await again.close();
    }
  });

  it('rejects bad options with a RelayError that has a code, and frees the port when listening fails', async () => {
    await assert.rejects(relay.startRelay({ store: 'bogus' as never, logLevel: 'silent' }), (error: unknown) => relay.isRelayError(error) && error.code === 'HUB_ERR_CONFIG_INVALID');
    const first = await relay.startRelay({ port: 0, store: 'memory', logLevel: 'silent' });
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(relay.startRelay({ port, store: 'memory', logLevel: 'silent' }), (error: unknown) => (error as NodeJS.ErrnoException).code === 'EADDRINUSE');
    } finally {
      await first.close();
    }
  });

  it('is shipped by npm pack with its type declarations', async () => {
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
    const files = new Set((JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    for (const path of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/cli/main.js']) assert.ok(files.has(path), `the package contains ${path}`);
  });
});
