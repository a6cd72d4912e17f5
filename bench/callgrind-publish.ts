/**
 * Instructions per non-pipelined publish (and its one delivery), counted by
 * `valgrind --tool=callgrind`: user-space instructions only, so the figure does not move with
 * the machine's load, as CPU time does on this shared machine. Issue 15's load: one subscriber
 * per id, keep-alive publishers with one request at a time each, 100-byte `text/plain` bodies.
 *
 *   node dist/bench/callgrind-publish.js [--store memory|sqlite] [--peer nchan]
 *        [--ids 50] [--connections 4] [--warmup 12000] [--publishes 1500] [--runs 1] [--top 25]
 *        [--no-names] [--keep]
 *
 * The server (sse-relay's CLI, or nginx with nchan in one process) runs under callgrind; the
 * load runs in this process. After the warm-up (JIT compilation done, caches filled) the
 * counters are zeroed (`callgrind_control -z`), the measured publishes are sent and delivered,
 * and the counters dumped (`-d`), one file per thread. Printed: instructions per publish on the
 * main thread and on all threads (V8's compiler and GC helpers included), and the top functions
 * by self and inclusive cost. V8's generated code is named through `node --perf-basic-prof`'s
 * map (`--no-names`: without it; the map makes every scavenge report each object it moves, a
 * few per cent more instructions). Kernel time (the syscalls: reads and writes on the sockets)
 * is not counted.
 *
 * The warm-up (12,000 publishes by default) has to reach the steady state the bench's timed
 * steps run in: the memory store full (10,000 messages by default, so every publish also
 * evicts one, a path that tiers up and deoptimizes `appendNow` once on its own) and V8's
 * optimizing compiler done with the hot path. After 3,000 publishes it was not: TurboFan was
 * still compiling a dozen hot functions (`--trace-opt`), ~85k instructions per publish on the
 * helper threads, and how far it had got depended on when those threads ran, so the main
 * thread's figure moved with the machine's load too; after 12,000 the helper threads run ~4k
 * per publish (scavenger and concurrent-marking helpers).
 *
 * Identical runs differ by up to ~10% on the main thread and more on all threads (when V8's
 * concurrent compiler and GC helpers get their turns under valgrind moves which tier runs and
 * when a collection falls): `--runs 3` prints the median and every run; compare medians.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mergeThreads, readCallgrindFile, topFunctions, type ThreadProfile } from './callgrind/callgrind-profile.js';
import { PerfMap } from './callgrind/perf-map.js';
import { SerialLoad } from './callgrind/serial-load.js';
import { freePort } from './peers/free-port.js';
import { nchanConfig, peerByName, RELAY_CLI_PATH, relayLimitFlags } from './peers/peers.js';
import { accepts } from './port-wait.js';

interface Args {
  store: 'memory' | 'sqlite';
  peer: 'sse-relay' | 'nchan';
  ids: number;
  connections: number;
  warmup: number;
  publishes: number;
  top: number;
  runs: number;
  /** Name V8's generated code (`--perf-basic-prof`); it also makes GC report every moved object. */
  names: boolean;
  keep: boolean;
}

const USAGE = 'usage: [--store memory|sqlite] [--peer nchan] [--ids N] [--connections N] [--warmup N] [--publishes N] [--runs N] [--top N] [--no-names] [--keep]';
/** Start-up under callgrind (the CLI's imports) takes 20–60 s here, minutes on a loaded machine. */
const START_DEADLINE_MS = 900_000;

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { store: 'memory', peer: 'sse-relay', ids: 50, connections: 4, warmup: 12_000, publishes: 1500, top: 25, runs: 1, names: true, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--keep' || flag === '--no-names') {
      if (flag === '--keep') args.keep = true;
      else args.names = false;
      continue;
    }
    const value = argv[++i];
    if (flag === '--store' && (value === 'memory' || value === 'sqlite')) args.store = value;
    else if (flag === '--peer' && (value === 'nchan' || value === 'sse-relay')) args.peer = value;
    else if (flag === '--ids' || flag === '--connections' || flag === '--warmup' || flag === '--publishes' || flag === '--top' || flag === '--runs') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} takes a positive integer`);
      args[flag.slice(2) as 'ids' | 'connections' | 'warmup' | 'publishes' | 'top' | 'runs'] = n;
    } else throw new Error(`unknown argument ${String(flag)} (${USAGE})`);
  }
  return args;
}

/** The server's command line, to run under valgrind; its routes. */
function serverCommand(args: Args, port: number, dir: string): { command: string[]; subscribePath: string; publishPath: string } {
  if (args.peer === 'nchan') {
    const nchan = peerByName('nchan')!;
    const problem = nchan.unavailable();
    if (problem) throw new Error(`nchan: ${problem}`);
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub), { recursive: true });
    // One process (no master): the one callgrind counts is the one serving.
    const conf = path.join(dir, 'nginx.conf');
    writeFileSync(conf, nchanConfig(port, dir).replace('master_process on;', 'master_process off;'));
    return { command: ['nginx', '-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], subscribePath: nchan.subscribePath, publishPath: nchan.publishPath };
  }
  const command = [
    process.execPath,
    ...(args.names ? ['--perf-basic-prof'] : []),
    RELAY_CLI_PATH,
    'serve',
    '--port',
    String(port),
    '--store',
    args.store,
    '--data-dir',
    path.join(dir, 'data'),
    '--log-level',
    'silent',
    // Under callgrind on a loaded machine a publisher can wait longer than the default 5 s
    // between two answers; the timer costs the same whatever its length.
    '--keep-alive-timeout',
    '600s',
    ...relayLimitFlags(),
  ];
  return { command, subscribePath: '/messages/subscribe/{id}', publishPath: '/messages/{id}' };
}

async function waitUntilListening(port: number, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited before listening:\n${readFileSync(log, 'utf8').slice(-2000)}`);
    if (await accepts(port)) return;
    if (Date.now() > deadline) throw new Error(`server did not listen within ${START_DEADLINE_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function callgrindControl(option: '-z' | '-d', pid: number): void {
  const result = spawnSync('callgrind_control', [option, String(pid)], { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0 || !/OK/.test(result.stdout)) throw new Error(`callgrind_control ${option} ${pid}: ${result.stdout}${result.stderr}`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const thousands = (n: number): string => `${(n / 1000).toFixed(1)}k`;

function printTop(title: string, profile: ThreadProfile, by: 'self' | 'inclusive', top: number, publishes: number, javascriptOnly = false): void {
  process.stdout.write(`\n${title}\n   share  instr/publish  function\n`);
  for (const cost of topFunctions(profile, by, top, javascriptOnly)) {
    const share = ((100 * cost[by]) / profile.total).toFixed(1).padStart(6);
    const perPublish = Math.round(cost[by] / publishes).toLocaleString('en-US').padStart(13);
    process.stdout.write(`  ${share}% ${perPublish}  ${cost.name.slice(0, 150)}\n`);
  }
}

/** One measurement: a fresh server under callgrind, its warm-up, its counted publishes. */
interface Measurement {
  readonly threads: readonly ThreadProfile[];
  readonly main: ThreadProfile;
  readonly all: ThreadProfile;
}

async function measure(args: Args): Promise<Measurement> {
  const dir = mkdtempSync(path.join(tmpdir(), 'callgrind-publish-'));
  const port = await freePort();
  const { command, subscribePath, publishPath } = serverCommand(args, port, dir);
  const out = path.join(dir, 'callgrind.out');
  const log = path.join(dir, 'server.log');
  const logFd = openSync(log, 'w');
  const valgrind = ['--tool=callgrind', '--separate-threads=yes', '--dump-instr=no', `--callgrind-out-file=${out}`];
  const child = spawn('valgrind', [...valgrind, ...command], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const pid = child.pid!;
  let load: SerialLoad | undefined;
  try {
    process.stderr.write(`starting ${serverName(args)} under callgrind (pid ${pid}, ${dir})\n`);
    await waitUntilListening(port, child, log);
    load = await SerialLoad.open({ port, subscribePath, publishPath }, args.ids, args.connections);
    process.stderr.write(`warm-up: ${args.warmup} publishes\n`);
    await load.run(args.warmup);
    callgrindControl('-z', pid);
    process.stderr.write(`measured: ${args.publishes} publishes\n`);
    await load.run(args.publishes);
    callgrindControl('-d', pid);
  } finally {
    load?.close();
    await stop(child);
  }

  const perfMap = PerfMap.ofProcess(pid);
  const threads = readdirSync(dir)
    .filter((name) => /^callgrind\.out\.1-\d+$/.test(name))
    .map((name) => readCallgrindFile(path.join(dir, name), perfMap))
    .filter((profile) => profile.total > 0)
    .sort((a, b) => a.thread - b.thread);
  const main = threads.find((t) => t.thread === 1);
  if (!main) throw new Error(`no dump of the main thread in ${dir}`);
  if (args.keep) process.stderr.write(`callgrind files kept in ${dir}\n`);
  else {
    rmSync(dir, { recursive: true, force: true });
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
  return { threads, main, all: mergeThreads(threads) };
}

function serverName(args: Args): string {
  return args.peer === 'nchan' ? 'nchan (nginx, one process)' : `sse-relay --store ${args.store}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const n = args.publishes;
  const runs: Measurement[] = [];
  for (let i = 0; i < args.runs; i++) runs.push(await measure(args));
  // The run of median main-thread cost is the one whose functions are shown.
  const byMain = [...runs].sort((a, b) => a.main.total - b.main.total);
  const median = byMain[(byMain.length - 1) >> 1]!;
  const sortedAll = runs.map((r) => r.all.total).sort((a, b) => a - b);
  const range = (values: number[]): string => (values.length > 1 ? ` (runs: ${values.map((v) => thousands(v / n)).join(', ')})` : '');
  process.stdout.write(
    `${serverName(args)}: ${args.ids} ids with one subscriber each, ${args.connections} keep-alive publishers one request at a time, ` +
      `100-byte bodies; ${n} publishes counted after ${args.warmup} of warm-up${args.names ? '' : ', without --perf-basic-prof'}\n` +
      `instructions per publish and its delivery${runs.length > 1 ? `, median of ${runs.length} runs` : ''}: ` +
      `main thread ${thousands(median.main.total / n)}${range(byMain.map((r) => r.main.total))}, ` +
      `all threads ${thousands(sortedAll[(sortedAll.length - 1) >> 1]! / n)}${range(sortedAll)}\n` +
      `per thread (run shown): ${median.threads.map((t) => `${t.thread}: ${thousands(t.total / n)}`).join(', ')}\n`,
  );
  printTop('main thread, by self cost', median.main, 'self', args.top, n);
  // Node's and V8's frames (the event loop, a call into JavaScript) include everything: the
  // inclusive view is of the JavaScript functions, where it tells which step costs what.
  if (args.peer === 'nchan') printTop('main thread, by inclusive cost', median.main, 'inclusive', args.top, n);
  else if (args.names) printTop('main thread, JavaScript functions by inclusive cost (cycles count a function once per call edge)', median.main, 'inclusive', args.top, n, true);
  if (median.threads.length > 1) printTop('all threads, by self cost', median.all, 'self', Math.min(args.top, 15), n);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
