#!/usr/bin/env node
/**
 * `npm start [-- serve options]`: starts the hub from dist/, building first only when dist is
 * missing or older than its sources. A full build (tsc, then esbuild for the console) takes
 * 10-20 s; most starts need none. Plain JavaScript, because it must run before anything is
 * compiled (a fresh clone has no dist/).
 *
 * "Current" means: both last outputs of the build, dist/src/cli/main.js (tsc) and
 * dist/web/console.js (esbuild, which runs only when tsc succeeded), are newer than every
 * file under src/ and web/ and the build's own configuration. A failed build leaves the
 * console bundle old, so the next start builds again and shows the error again.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = ['src', 'web', 'scripts/build-web.ts', 'tsconfig.json', 'package.json'];
const OUTPUTS = ['dist/src/cli/main.js', 'dist/web/console.js'];

/** Newest modification time under `path` (a file or a directory), 0 when absent. */
function newestMtime(path) {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return 0;
  }
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs; // a deleted file shows as a newer directory
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Oldest modification time of the outputs; 0 when one is missing. */
function oldestOutputMtime() {
  let oldest = Infinity;
  for (const output of OUTPUTS) {
    try {
      oldest = Math.min(oldest, statSync(join(root, output)).mtimeMs);
    } catch {
      return 0;
    }
  }
  return oldest;
}

function run(args, what) {
  const { status, error } = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (error !== undefined || status !== 0) {
    process.stderr.write(`sse-relay: ${what} failed${error ? `: ${error.message}` : ''}; not starting\n`);
    process.exit(status || 1);
  }
}

const newestSource = Math.max(...SOURCES.map((source) => newestMtime(join(root, source))));
if (newestSource > oldestOutputMtime()) {
  process.stderr.write('sse-relay: dist/ is missing or older than the sources: building (npm run build)...\n');
  run([createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], 'tsc');
  run(['dist/scripts/build-web.js'], 'building the web console');
}

// In this process rather than a child, so signals (Ctrl-C, a supervisor's SIGTERM) reach the
// hub directly and its exit code is npm's.
process.argv.splice(2, 0, 'serve');
await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
