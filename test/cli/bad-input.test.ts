import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';

/** One line on stderr, a usage (2) or failure (1) exit code, and no stack trace. */
function assertCleanRefusal(result: { code: number | null; stdout: string; stderr: string }, args: string[]): void {
  const what = `sse-relay ${args.join(' ')}: ${result.stderr}`;
  assert.ok(result.code === 1 || result.code === 2, `exit code ${result.code} for ${what}`);
  assert.doesNotMatch(result.stderr, /^\s+at /m, what);
  assert.doesNotMatch(result.stderr, /node:internal|\.js:\d+/, what);
  assert.ok(result.stderr.trim().length > 0, what);
}

describe('bad input on every command: a one-line message, never a stack trace', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  test('subscribe', async () => {
    for (const args of [
      ['subscribe', 'demo', '--url', 'notaurl'],
      ['subscribe', 'demo', '--url', 'ftp://127.0.0.1:3000'],
      ['subscribe', ''],
      ['subscribe', 'demo', '--header', 'no colon'],
      ['subscribe', 'demo', '--header', 'Bad Name: x'],
      ['subscribe', 'demo', '--token', 'two\nlines'],
      ['subscribe'],
      ['subscribe', 'demo', '--no-such-flag'],
    ]) {
      const result = await runCli([...args, ...(args.includes('--url') ? [] : ['--url', hub.url])]);
      assertCleanRefusal(result, args);
    }
  });

  test('publish', async () => {
    for (const args of [
      ['publish', 'demo', 'x', '--url', 'notaurl'],
      ['publish', '', 'x'],
      ['publish', 'demo', 'x', '--header', 'nocolon'],
      ['publish', 'demo', 'x', '--event', 'a\nb'],
      ['publish'],
    ]) {
      const result = await runCli([...args, ...(args.includes('--url') ? [] : ['--url', hub.url])]);
      assertCleanRefusal(result, args);
    }
  });

  test('the empty id and an unusable URL are usage errors (exit 2) on both commands', async () => {
    for (const args of [['subscribe', ''], ['publish', '', 'x'], ['subscribe', 'demo', '--url', 'notaurl'], ['publish', 'demo', 'x', '--url', 'notaurl']]) {
      const result = await runCli(args.includes('--url') ? args : [...args, '--url', hub.url]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });

  test('a refused --header or --token is not echoed (it is often a secret)', async () => {
    for (const args of [
      ['publish', 'demo', 'x', '--header', 'Authorization Bearer s3cr3t-value'],
      ['subscribe', 'demo', '--header', 'Authorization: Bearer s3cr3t-value\u0001'],
      ['subscribe', 'demo', '--token', 's3cr3t-value\nsecond line'],
    ]) {
      const result = await runCli([...args, '--url', hub.url]);
      assert.equal(result.code, 2, result.stderr);
      assert.doesNotMatch(result.stderr, /s3cr3t/, result.stderr);
    }
  });

  test('token', async () => {
    for (const args of [
      ['token', '--key', 'k', '--publish', '*', '--expires', 'soon'],
      ['token', '--key', '@/nonexistent/key', '--publish', '*'],
      ['token', '--key', 'k', '--publish', '*', '--payload', '{not json'],
      ['token', '--key', 'k', '--alg', 'XX'],
      ['token', '--publish', '*'],
    ]) {
      assertCleanRefusal(await runCli(args), args);
    }
  });

  test('token without any grant warns on stderr, naming the flags that grant', async () => {
    const result = await runCli(['token', '--key', 'k']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'stdout is the token alone');
    assert.match(result.stderr, /warning: this token grants nothing.*--publish.*--subscribe/);
    const granted = await runCli(['token', '--key', 'k', '--subscribe', 'demo']);
    assert.equal(granted.stderr, '');
  });

  test('serve', async () => {
    for (const args of [
      ['serve', '--port', 'abc'],
      ['serve', '--store', 'bogus'],
      ['serve', '--config', '/nonexistent/hub.yaml'],
      ['serve', '--retention-age', 'forever'],
    ]) {
      assertCleanRefusal(await runCli(args), args);
    }
  });
});
