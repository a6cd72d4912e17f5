import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { closedPort } from '../helpers/ports.js';
import { isMessage, openStream } from '../helpers/sse-client.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TIMEOUT_MS = 15_000;

/** A running `sse-relay` child process whose output is collected as it comes. */
interface Cli {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>;
  /** Resolves once `predicate` holds on the output so far; rejects at the deadline or on exit. */
  waitFor(predicate: (cli: Cli) => boolean, what: string): Promise<void>;
}

const children = new Set<ChildProcess>();

function startCli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Cli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, SSE_RELAY_URL: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of listeners) listener();
  };
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        children.delete(child);
        resolve(code ?? signal ?? -1);
        notify();
      }),
    ),
    waitFor(predicate, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (predicate(cli)) finish();
          else if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`exited before ${what}`));
        };
        const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
        const finish = (error?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(new Error(`${error.message}\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`));
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    cli.stdout += chunk;
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    cli.stderr += chunk;
    notify();
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  return cli;
}

/** Runs a command to completion. */
async function runCli(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  const cli = startCli(args, options);
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    cli.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`sse-relay ${args.join(' ')} did not exit; stderr: ${cli.stderr}`)), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

/** Starts `sse-relay subscribe` and resolves once the hub has registered it. */
async function startSubscriber(args: string[]): Promise<Cli> {
  const cli = startCli(['subscribe', ...args]);
  await cli.waitFor((c) => c.stderr.includes('sse-relay: subscribed to'), 'the subscription to open');
  return cli;
}

/** `<local time> <message>`: something date-like (digits and a colon) before the message. */
function timedLine(message: string): RegExp {
  return new RegExp(`^(?=[^\\n]*\\d)(?=[^\\n]*:)[^\\n]+ ${message}$`, 'm');
}

describe('sse-relay CLI against a real hub', () => {
  let hub: TestHub;

  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await hub.close();
  });

  test('subscribe --consumer acknowledges what it printed: the next run resumes after it', async () => {
    const post = async (message: string): Promise<string> => {
      const res = await fetch(`${hub.url}/messages/cli-consumer`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: message });
      return ((await res.json()) as { id: string }).id;
    };
    const acked = async (): Promise<string> => ((await (await fetch(`${hub.url}/messages/cli-consumer/consumers/printer`)).json()) as { ackedId: string }).ackedId;
    const first = await startSubscriber(['cli-consumer', '--consumer', 'printer', '--url', hub.url]);
    await post('one');
    const two = await post('two');
    await first.waitFor((c) => timedLine('two').test(c.stdout), 'the second message');
    const deadline = Date.now() + TIMEOUT_MS;
    while ((await acked()) !== two) {
      assert.ok(Date.now() < deadline, 'the printed messages were acknowledged');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    first.child.kill('SIGINT');
    assert.equal(await first.exited, 0);

    await post('three');
    const second = await startSubscriber(['cli-consumer', '--consumer', 'printer', '--url', hub.url]);
    await second.waitFor((c) => timedLine('three').test(c.stdout), 'the message published while it was away');
    assert.doesNotMatch(second.stdout, /one|two/, 'acknowledged messages are not printed again');
    second.child.kill('SIGINT');
    assert.equal(await second.exited, 0);
  });

  test('two subscribers print a published message with the local time; SIGINT exits 0', async () => {
    const first = await startSubscriber(['demo', '--url', hub.url]);
    const second = await startSubscriber(['demo', '--url', hub.url]);

    const published = await runCli(['publish', 'demo', 'hello', '--url', hub.url]);
    assert.equal(published.code, 0, published.stderr);
    assert.match(published.stdout, /^\S+\n$/);

    for (const subscriber of [first, second]) {
      await subscriber.waitFor((c) => timedLine('hello').test(c.stdout), 'the message');
      assert.equal(subscriber.stdout.split('\n').filter(Boolean).length, 1, 'only the message goes to stdout');
      subscriber.child.kill('SIGINT');
      // Exiting on its own after SIGINT also shows that no socket or timer was left behind.
      assert.equal(await subscriber.exited, 0);
    }
  });

  test('publish reads the message from stdin; --json prints {time,id,event,data}', async () => {
    const subscriber = await startSubscriber(['stdin-demo', '--json', '--url', hub.url]);
    const published = await runCli(['publish', 'stdin-demo', '--event', 'note', '--url', hub.url], {
      input: 'from stdin\nsecond line 😀\n',
    });
    assert.equal(published.code, 0, published.stderr);
    const eventId = published.stdout.trim();

    await subscriber.waitFor((c) => c.stdout.endsWith('\n'), 'a JSON line');
    const line = JSON.parse(subscriber.stdout.split('\n')[0]!) as Record<string, unknown>;
    assert.deepEqual(
      { id: line.id, event: line.event, data: line.data },
      { id: eventId, event: 'note', data: 'from stdin\nsecond line 😀' },
    );
    assert.ok(!Number.isNaN(Date.parse(String(line.time))), `time ${String(line.time)}`);
    subscriber.child.kill('SIGINT');
    assert.equal(await subscriber.exited, 0);
  });

  test('continuation lines of a multi-line message are indented under its first line', async () => {
    const subscriber = await startSubscriber(['multi', '--url', hub.url]);
    const published = await runCli(['publish', 'multi', 'first\nsecond', '--url', hub.url]);
    assert.equal(published.code, 0, published.stderr);
    await subscriber.waitFor((c) => c.stdout.includes('second\n'), 'the second line');
    assert.match(subscriber.stdout, timedLine('first'));
    const [first, second] = subscriber.stdout.split('\n');
    const indent = first!.length - 'first'.length;
    assert.equal(second, `${' '.repeat(indent)}second`);
    subscriber.child.kill('SIGINT');
    assert.equal(await subscriber.exited, 0);
  });

  test('--url defaults to SSE_RELAY_URL', async () => {
    const published = await runCli(['publish', 'env-demo', 'via env'], { env: { SSE_RELAY_URL: hub.url } });
    assert.equal(published.code, 0, published.stderr);
  });

  test('publish to an unreachable hub exits 1 with a clear message', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const result = await runCli(['publish', 'demo', 'hello', '--url', url]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`Cannot reach the hub at ${url.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
    assert.match(result.stderr, /CLIENT_ERR_UNREACHABLE/);
  });

  test('subscribe started before its hub waits for it, says so, and then receives messages', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    const subscriber = startCli(['subscribe', 'early', '--url', url]);
    await subscriber.waitFor((c) => /Cannot reach the hub at .*\(CLIENT_ERR_UNREACHABLE\); the hub may not be up yet, retrying in/.test(c.stderr), 'the retry notice');
    assert.equal(subscriber.child.exitCode, null, 'still running');
    const lateHub = await startHub({ store: 'memory', port });
    try {
      await subscriber.waitFor((c) => c.stderr.includes('sse-relay: subscribed to "early"'), 'the subscription to open');
      const published = await runCli(['publish', 'early', 'worth the wait', '--url', url]);
      assert.equal(published.code, 0, published.stderr);
      await subscriber.waitFor((c) => timedLine('worth the wait').test(c.stdout), 'the message');
      subscriber.child.kill('SIGINT');
      assert.equal(await subscriber.exited, 0);
    } finally {
      await lateHub.close();
    }
  });

  test('an invalid id exits 1 showing the hub error code', async () => {
    const id = 'x'.repeat(300);
    const published = await runCli(['publish', id, 'hello', '--url', hub.url]);
    assert.equal(published.code, 1);
    assert.match(published.stderr, /HUB_ERR_TOPIC_INVALID/);
    assert.match(published.stderr, /HTTP 400/);

    const subscribed = await runCli(['subscribe', id, '--url', hub.url]);
    assert.equal(subscribed.code, 1);
    assert.match(subscribed.stderr, /HUB_ERR_TOPIC_INVALID/);
  });

  test('an empty message exits 1 with the hub error code', async () => {
    const result = await runCli(['publish', 'demo', '--url', hub.url], { input: '' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /HUB_ERR_MESSAGE_MISSING/);
  });

  test('--help lists the commands', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['serve', 'subscribe', 'publish']) assert.match(result.stdout, new RegExp(`^\\s+${command}\\b`, 'm'));
  });
});

describe('sse-relay publish --batch against a real hub', () => {
  let hub: TestHub;

  before(async () => {
    // No count retention, so every published line can be read back; a small body limit, so
    // one over-long line makes the hub refuse its whole chunk.
    hub = await startHub({ store: 'memory', retentionCount: 0, memoryMaxMessages: 100_000, maxBodySize: 64 * 1024 });
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await hub.close();
  });

  test('every line is one message, in order, in chunks of 1000; empty lines are skipped; CRLF is a line end', async () => {
    const lines = Array.from({ length: 2500 }, (_, i) => `line ${i + 1} é`);
    const input = lines.map((line, i) => (i === 10 ? `${line}\r\n\n` : i === 20 ? `${line}\n\r\n` : `${line}\n`)).join('');
    const published = await runCli(['publish', '--batch', 'batch-demo', '--event', 'row', '--url', hub.url], { input });
    assert.equal(published.code, 0, published.stderr);
    const ids = published.stdout.trim().split('\n');
    assert.equal(ids.length, 2500);
    assert.ok(ids.every((id, i) => i === 0 || BigInt(id) > BigInt(ids[i - 1]!)), 'ids increase in input order');

    const stream = await openStream(`${hub.url}/messages/subscribe/batch-demo?lastEventId=earliest`);
    try {
      await stream.waitFor((events) => events.filter(isMessage).length === 2500);
      const messages = stream.events.filter(isMessage);
      assert.deepEqual(messages.map((m) => m.data), lines);
      assert.deepEqual(messages.map((m) => m.id), ids);
      assert.ok(messages.every((m) => m.event === 'row'));
    } finally {
      stream.close();
    }
  });

  test('a refused chunk is not published, the chunks before it are, and nothing after it is sent: exit 1', async () => {
    const lines = Array.from({ length: 2500 }, (_, i) => (i === 1499 ? 'x'.repeat(70 * 1024) : `row ${i + 1}`));
    const published = await runCli(['publish', '--batch', 'batch-refused', '--url', hub.url], { input: `${lines.join('\n')}\n` });
    assert.equal(published.code, 1);
    assert.equal(published.stdout.trim().split('\n').length, 1000, 'the ids of the first chunk');
    assert.match(published.stderr, /lines 1001-2000/);
    assert.match(published.stderr, /HUB_ERR_BODY_TOO_LARGE/);
    assert.match(published.stderr, /nothing from line 1001 on was published/);
    const info = await (await fetch(`${hub.url}/messages/batch-refused`)).json() as { retained: number; lastId: string };
    assert.equal(info.retained, 1000);
    assert.equal(info.lastId, published.stdout.trim().split('\n').at(-1));
  });

  test('--batch with a message argument is a usage error (exit 2), and nothing is sent', async () => {
    const result = await runCli(['publish', '--batch', 'batch-usage', 'hello', '--url', hub.url], { input: 'a\n' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--batch reads the messages from stdin/);
    const info = await (await fetch(`${hub.url}/messages/batch-usage`)).json() as { retained: number };
    assert.equal(info.retained, 0);
  });
});
