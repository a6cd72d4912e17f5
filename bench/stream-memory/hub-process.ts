/**
 * The hub side of `bench/stream-memory`: sse-relay with the memory store in this process, run
 * with `--expose-gc` as a child with an IPC channel, so the driver can ask it for a collected
 * heap figure and a heap snapshot at the moments it chooses.
 *
 * Messages: `{ measure: true }` answers `{ heapUsed }` after a full collection;
 * `{ snapshot: path }` writes a heap snapshot there and answers `{ written: path }`.
 */
import { writeHeapSnapshot } from 'node:v8';
import { serveOptions } from '../../src/config/load.js';
import type { ServeOptions } from '../../src/config/options.js';
import { startRelay } from '../../src/relay.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc || !process.send) throw new Error('run by bench/stream-memory with --expose-gc and an IPC channel');

// Caps lifted as in the bench: 10,000 streams come from one address.
const limits = { maxConnections: 1_000_000, maxConnectionsPerIp: 1_000_000, maxRequestsPerSocket: 0 } as Partial<ServeOptions>;
const server = await startRelay(serveOptions({ ...limits, port: 0, host: '127.0.0.1', store: 'memory', logLevel: 'silent' }));

process.on('message', (request: { measure?: boolean; snapshot?: string; stop?: boolean }) => {
  if (request.stop) {
    void server.close().then(() => process.exit(0));
    return;
  }
  gc();
  gc();
  if (request.snapshot) {
    writeHeapSnapshot(request.snapshot);
    process.send!({ written: request.snapshot });
    return;
  }
  process.send!({ heapUsed: process.memoryUsage().heapUsed });
});
process.send({ url: server.url });
