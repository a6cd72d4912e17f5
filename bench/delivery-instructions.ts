/**
 * Instructions the server executes per delivery on a saturated fan-out, counted by callgrind
 * (load-independent, unlike CPU time on a shared machine): sse-relay with the memory store runs
 * under `valgrind --tool=callgrind`, `--subscribers` idle streams on one id are opened from this
 * process (not counted), and messages are published one after another on one keep-alive
 * connection, each as soon as the previous one was answered (the hub answers once it has
 * dispatched). Two runs with `--messages` and three times as many messages; the difference of
 * their instruction totals divided by the difference of their deliveries is the cost of one
 * delivery, start-up and connection set-up cancelled out.
 *
 * `node dist/bench/delivery-instructions.js [--dist DIR] [--subscribers 1000] [--messages 100]`
 * `--dist` is the build to measure (default: this one), e.g. another worktree's `dist/`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SubscriberPool } from './loadgen/subscribers.js';
import { freePort } from './peers/free-port.js';
import { waitForPort } from './port-wait.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
};
const dist = path.resolve(flag('dist', fileURLToPath(new URL('../', import.meta.url))));
const subscribers = Number(flag('subscribers', '1000'));
const messages = Number(flag('messages', '100'));

function publish(agent: http.Agent, port: number, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/messages/fan', agent, headers: { 'content-type': 'text/plain' } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`publish answered ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** One callgrind run publishing `count` messages; its instruction total and deliveries. */
async function run(count: number, workDir: string): Promise<{ instructions: number; deliveries: number }> {
  const port = await freePort();
  const out = path.join(workDir, `callgrind.${count}.out`);
  const server = spawn(
    'valgrind',
    ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, path.join(dist, 'bench/peers/sse-relay-server.js'), '--port', String(port), '--store', 'memory', '--data-dir', path.join(workDir, 'data')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  let deliveries = 0;
  try {
    await waitForPort(port, 1200, 250);
    const pool = new SubscriberPool([{ host: '127.0.0.1', port, path: (id) => `/messages/subscribe/${id}` }], ['fan'], subscribers);
    const { failed, firstError } = await pool.open(50, 600_000);
    // Under valgrind the hub's first-request sweep may cut a connection it was too slow to read:
    // the few that failed are left out of the count (they get no deliveries).
    if (failed > subscribers / 100) throw new Error(`${failed} subscriptions failed: ${firstError}`);
    const opened = subscribers - failed;
    const counters = pool.counters;
    const greetings = counters.otherEvents;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const body = 'x'.repeat(100);
    for (let i = 0; i < count; i++) {
      // Under valgrind the server can stall past its keep-alive timeout and reset the idle
      // connection just as the next publish goes out (before reading it): send it again.
      await publish(agent, port, body).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET') throw error;
        return publish(agent, port, body);
      });
    }
    while (counters.otherEvents - greetings < count * opened) await sleep(100);
    agent.destroy();
    pool.close();
    server.kill('SIGTERM');
    await exited;
    deliveries = count * opened;
  } finally {
    server.kill('SIGKILL');
  }
  const totals = /^(?:summary|totals): (\d+)/m.exec(readFileSync(out, 'latin1'));
  if (!totals) throw new Error(`no callgrind totals in ${out}: ${stderr.slice(-2000)}`);
  return { instructions: Number(totals[1]), deliveries };
}

const workDir = mkdtempSync(path.join(tmpdir(), 'delivery-instructions-'));
try {
  const small = await run(messages, workDir);
  const large = await run(messages * 3, workDir);
  const perDelivery = (large.instructions - small.instructions) / (large.deliveries - small.deliveries);
  console.log(`${dist}: ${subscribers} subscribers, ${messages} and ${messages * 3} messages`);
  console.log(`  instructions: ${small.instructions} and ${large.instructions}`);
  console.log(`  per delivery: ${perDelivery.toFixed(0)} instructions`);
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
