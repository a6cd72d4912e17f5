import { hostname } from 'node:os';
import type { ServeOptions } from '../../config/options.js';
import type { RedisStoreLog } from './connection.js';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;

/**
 * The Redis store's log lines, in the shape of the hub's own (pino JSON on stdout), so that
 * connection losses and retries show up next to the request errors. The store is built before
 * the HTTP server and its logger exist; this is the stand-in until it can be handed that one.
 */
export function redisStoreLog(level: ServeOptions['logLevel'], write: (line: string) => void = (line) => process.stdout.write(line)): RedisStoreLog {
  const threshold = LEVELS[level];
  const host = hostname();
  return (lineLevel, msg, details) => {
    const value = LEVELS[lineLevel];
    if (value < threshold) return;
    write(`${JSON.stringify({ level: value, time: Date.now(), pid: process.pid, hostname: host, component: 'redis-store', ...details, msg })}\n`);
  };
}
