import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const START_SCRIPT = fileURLToPath(new URL('../../../scripts/start.mjs', import.meta.url));

// `npm test` builds first, so dist/ is current here: `npm start` must not build again, must
// pass its arguments to `serve`, and SIGTERM must reach the hub itself.
test('npm start on a current build starts the hub at once, with the arguments after --', async () => {
  const child = spawn(process.execPath, [START_SCRIPT, '--port', '0', '--store', 'memory', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  // A failed wait must not leave the hub running: the test runner would wait for it forever.
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the hub did not start; stderr: ${stderr}`)), 15_000);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code}; stderr: ${stderr}`)));
  });
  try {
    await started;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  assert.doesNotMatch(stderr, /building/, 'dist/ is current: no rebuild');
  assert.doesNotMatch(stderr, /:3000\b/, '--port 0 reached serve');
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
