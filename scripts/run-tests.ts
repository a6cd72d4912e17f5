/**
 * Runs every compiled `*.test.js` under dist/test with Node's test runner, one file at a time.
 * Node 20 cannot take a glob, and given a directory it would also run every helper module that
 * lives under a `test` folder, so the files are listed here explicitly.
 * Extra arguments (e.g. a path prefix such as `dist/test/store`) narrow the selection.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function findTests(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await findTests(path)));
    else if (entry.name.endsWith('.test.js')) found.push(relative(root, path));
  }
  return found.sort();
}

const filters = process.argv.slice(2);
const files = (await findTests(join(root, 'dist/test'))).filter((f) => filters.length === 0 || filters.some((p) => f.startsWith(p)));
if (files.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { cwd: root, stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
