import { createRequire } from 'node:module';
import type * as IoRedis from 'ioredis';

let loaded: typeof IoRedis | undefined;

/**
 * The ioredis module, loaded on first use (a Redis store or the Mercure registry on Redis), not
 * when the server starts. Loading it declares `class VerbatimString extends String`
 * (ioredis/built/resp/verbatim-string.js), and subclassing String turns V8's `String.prototype`
 * into a dictionary-mode object for the rest of the process: every string method call in
 * optimized code (`charCodeAt`, `startsWith`, `slice`, `indexOf`…) then goes through the
 * generic LoadIC builtin instead of a constant. That was ~24k of ~92k instructions per
 * non-pipelined publish on the memory store (bench/callgrind-publish), which never uses Redis.
 * ioredis is CommonJS, so `require` loads it synchronously where a client is built.
 */
export function ioredis(): typeof IoRedis {
  return (loaded ??= createRequire(import.meta.url)('ioredis') as typeof IoRedis);
}
