import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { serveOptions } from '../../src/config/load.js';
import type { ServeOptions } from '../../src/config/options.js';
import type { RelayServer } from '../../src/http/server.js';
import { startRelay } from '../../src/relay.js';

/** A hub listening on a free loopback port, with its own temporary data directory. */
export interface TestHub extends RelayServer {
  readonly dataDir: string;
}

/**
 * Starts a real hub (Fastify on 127.0.0.1, port 0 unless given) on the default SQLite store in
 * a fresh temporary directory. `close()` stops it and removes the directory.
 */
export async function startHub(overrides: Partial<ServeOptions> = {}): Promise<TestHub> {
  const dataDir = overrides.dataDir ?? (await mkdtemp(join(tmpdir(), 'sse-relay-test-')));
  let server: RelayServer;
  try {
    server = await startRelay(
      serveOptions({ host: '127.0.0.1', port: 0, logLevel: 'silent', store: (process.env.TEST_STORE as ServeOptions['store'] | undefined) ?? 'sqlite', redisKeyPrefix: `test-${basename(dataDir)}:`, ...overrides, dataDir }),
    );
  } catch (error) {
    if (overrides.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    ...server,
    dataDir,
    async close() {
      const outcome = await server.close();
      if (overrides.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
      return outcome;
    },
  };
}
