/**
 * What the SQLite store's append costs by itself, without HTTP: process CPU per append with 1,
 * 4 and 50 concurrent appenders, each awaiting its append before the next one (as non-pipelined
 * publishers do), so 1 appender means one transaction per message and 50 let the group commit
 * share one.
 *
 *   node dist/bench/store-append.js [--appends 20000] [--topics 1000] [--fsync normal|full]
 *
 * A fresh database in a temporary directory, retention as `serve`'s defaults (1000 per topic,
 * 24 h), 100-byte messages round-robin over the topics (the `direct-1k` steps). Each
 * concurrency runs a warm-up of the same size first. Printed per concurrency: CPU µs per append
 * (user and system), appends/s and the commits (transactions) they took. CPU time, not
 * throughput, is the figure to compare on a shared machine; compare runs of the same moment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../src/store/sqlite-store.js';

interface Args {
  appends: number;
  topics: number;
  fsync: 'normal' | 'full';
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { appends: 20_000, topics: 1000, fsync: 'normal' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[++i];
    if (flag === '--appends' || flag === '--topics') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer`);
      args[flag === '--appends' ? 'appends' : 'topics'] = n;
    } else if (flag === '--fsync' && (value === 'normal' || value === 'full')) {
      args.fsync = value;
    } else {
      throw new Error(`unknown argument ${String(flag)} (usage: [--appends N] [--topics T] [--fsync normal|full])`);
    }
  }
  return args;
}

async function measure(store: SqliteStore, args: Args, appenders: number): Promise<string> {
  const data = 'x'.repeat(100);
  const run = async (): Promise<void> => {
    let next = 0;
    const appender = async (): Promise<void> => {
      while (next < args.appends) {
        const k = next++;
        await store.append({ topics: [`d${k % args.topics}`], data });
      }
    };
    await Promise.all(Array.from({ length: appenders }, appender));
  };
  await run();
  const commitsBefore = store.commitCount;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await run();
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  const per = (micros: number): string => (micros / args.appends).toFixed(1);
  return `${String(appenders).padStart(2)} appenders: ${per(cpu.user + cpu.system)} µs CPU per append (user ${per(cpu.user)}, system ${per(cpu.system)}), ${Math.round(args.appends / seconds)} appends/s, ${store.commitCount - commitsBefore} commits`;
}

const args = parseArgs(process.argv.slice(2));
const dataDir = mkdtempSync(path.join(tmpdir(), 'sse-relay-store-append-'));
try {
  console.log(`store-append: SQLite, fsync ${args.fsync}, ${args.appends} appends of 100 bytes over ${args.topics} topics per run`);
  for (const appenders of [1, 4, 50]) {
    const store = new SqliteStore({ dataDir: path.join(dataDir, String(appenders)), fsync: args.fsync, maxMessagesPerTopic: 1000, maxAgeMs: 86_400_000 });
    await store.open();
    try {
      console.log(`  ${await measure(store, args, appenders)}`);
    } finally {
      await store.close();
    }
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
