/**
 * A hub on the memory store leaves V8's `String.prototype` with fast properties. Subclassing
 * String anywhere in the process (ioredis declares `class VerbatimString extends String`) turns
 * it into a dictionary for good, after which every string method call in optimized code goes
 * through the generic LoadIC builtin: a quarter of the instructions of a publish on the memory
 * store (see src/store/redis/ioredis.ts). V8's `%HasFastProperties` needs
 * `--allow-natives-syntax`, so the hub runs in a child process: started, one publish served and
 * delivered over real sockets, then the prototype inspected.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const helpers = new URL('../helpers/', import.meta.url).href;

const CHILD = `
const { startHub } = await import(${JSON.stringify(`${helpers}hub.js`)});
const { openStream, publish } = await import(${JSON.stringify(`${helpers}sse-client.js`)});
const hub = await startHub({ store: 'memory' });
const stream = await openStream(hub.url + '/messages/subscribe/fast');
await publish(hub.url, 'fast', 'hello');
await stream.waitFor((events) => events.some((e) => e.data === 'hello'));
stream.close();
await hub.close();
process.stdout.write(JSON.stringify({ fast: %HasFastProperties(String.prototype) }));
`;

test('a memory-store hub keeps String.prototype in fast mode (nothing subclasses String)', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', CHILD], { timeout: 60_000 });
  assert.deepEqual(JSON.parse(stdout), { fast: true });
});
