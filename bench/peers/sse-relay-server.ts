/**
 * Starts sse-relay in-process through its public entry points, for when the CLI is not built:
 * `node dist/bench/peers/sse-relay-server.js --port N --store memory|sqlite --data-dir D`.
 * Same options as `sse-relay serve` with logging off.
 */
import { serveOptions } from '../../src/config/load.js';
import type { ServeOptions } from '../../src/config/options.js';
import { startRelay } from '../../src/relay.js';
import { portArgument } from './args.js';

const argv = process.argv;
const flag = (name: string): string | undefined => {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 ? argv[index + 1] : undefined;
};
const store = flag('store') === 'memory' ? 'memory' : 'sqlite';
// Connection caps (where this version has them) are lifted: the bench opens 10,000 streams from
// one address and publishes without end on one keep-alive connection.
const limits = { maxConnections: 1_000_000, maxConnectionsPerIp: 1_000_000, maxRequestsPerSocket: 0 } as Partial<ServeOptions>;
const server = await startRelay(
  serveOptions({ ...limits, port: portArgument(), store, dataDir: flag('data-dir') ?? './data', logLevel: 'silent' }),
);
process.stderr.write(`sse-relay listening on ${server.url}\n`);
const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
