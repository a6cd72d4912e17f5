/**
 * A Content-Type is looked up in the table of accepted media types: names that an ordinary
 * object inherits (`toString`, `constructor`, `__proto__`, …) are not media types, and must be
 * refused with 415 like any other unknown type, on the lean path as on Fastify's route (a cookie
 * sends the request to Fastify), never stored as `[object Object]` or answered with a 500.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { rawExchange, requestBytes } from '../fuzz/raw-http.js';

const INHERITED_NAMES = ['toString', 'toLocaleString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf'];

describe('Content-Type names inherited by plain objects', () => {
  let hub: TestHub;
  let port: number;
  before(async () => {
    hub = await startHub({ store: 'memory' });
    port = Number(new URL(hub.url).port);
  });
  after(() => hub?.close());

  for (const viaFastify of [false, true]) {
    it(`are refused with 415 and store nothing (${viaFastify ? "Fastify's route" : 'lean path'})`, async () => {
      for (const name of INHERITED_NAMES) {
        const headers: Record<string, string> = { 'Content-Type': name };
        if (viaFastify) headers['Cookie'] = 'unrelated=1';
        const res = await rawExchange(port, requestBytes({ method: 'POST', target: `/messages/inherited-${viaFastify}`, body: 'hello', headers }));
        assert.equal(res.status, 415, `Content-Type: ${name} → ${res.status}`);
      }
      const stats = await fetch(`${hub.url}/messages/inherited-${viaFastify}`);
      assert.equal(((await stats.json()) as { retained: number }).retained, 0, 'nothing was stored');
    });
  }
});
