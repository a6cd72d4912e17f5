import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real `redis-server` child process on a loopback port, for tests. */
export interface TestRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`, or `redis://:<password>@127.0.0.1:<port>` with a password. */
  readonly url: string;
  /** True between a successful start and a stop/kill. */
  readonly running: boolean;
  /** Kills the server at once (SIGKILL): what a crash looks like to the hub. */
  kill(): Promise<void>;
  /** Starts it again on the same port (same data directory, so with `aof` nothing acknowledged is lost). */
  restart(): Promise<void>;
  /** Kills it and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

export interface TestRedisOptions {
  /**
   * `none` (default): nothing on disk, a restart comes back empty. `aof`: append-only file with
   * `appendfsync always`, so a SIGKILL loses nothing Redis acknowledged.
   */
  readonly persistence?: 'none' | 'aof';
  /** A fixed port; default: a free one. */
  readonly port?: number;
  /** A password clients must give (`requirepass`); default: none. */
  readonly password?: string;
  /** More `redis-server` arguments (e.g. cluster mode), after the others. */
  readonly args?: readonly string[];
}

let installChecked = false;

/**
 * Makes sure `redis-server` exists, installing Debian's package once when it does not (as the
 * README's test command promises on a fresh machine). Throws when that is impossible: Redis
 * tests fail rather than skip.
 */
export function ensureRedisServer(): void {
  if (installChecked) return;
  if (spawnSync('redis-server', ['--version']).status === 0) {
    installChecked = true;
    return;
  }
  const install = (): number | null =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status;
  if (install() !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'inherit' });
    install();
  }
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new Error('redis-server is missing and `apt-get install -y redis-server` did not provide it');
  }
  installChecked = true;
}

/** A port that was free a moment ago (the server binding it next may still race; start retries). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts `redis-server` and resolves once it accepts connections. Its data directory is the
 * server's working directory, so relative paths in `args` (a cluster config file) land there.
 */
export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  ensureRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'sse-relay-redis-'));
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;

  const args = (): string[] => [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--daemonize', 'no',
    '--protected-mode', 'no',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
    ...(options.persistence === 'aof' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.args ?? []),
  ];

  const launch = (): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const proc = spawn('redis-server', args(), { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`redis-server did not start within 10 s: ${output}`));
      }, 10_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer);
          proc.stdout!.off('data', onData);
          proc.stdout!.resume();
          resolve(proc);
        }
      };
      proc.stdout!.on('data', onData);
      proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${output}`));
      });
    });

  const start = async (fixedPort: boolean): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        child = await launch();
        return;
      } catch (error) {
        // Another process took the port between freePort() and the bind: pick another.
        if (fixedPort || attempt >= 5 || !/Address already in use/.test(String(error))) throw error;
        port = await freePort();
      }
    }
  };

  // A test process that ends without stop() (a failed before hook, a helper used outside
  // hooks) must not leave a server behind: exit handlers run synchronously, kill() is.
  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  };

  await start(options.port !== undefined);
  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://${options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`}127.0.0.1:${port}`;
    },
    get running() {
      return child !== undefined;
    },
    kill,
    async restart() {
      await kill();
      await start(true);
    },
    async stop() {
      await kill();
      process.off('exit', killOnExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
