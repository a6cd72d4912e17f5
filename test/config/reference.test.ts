import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadServeOptions } from '../../src/config/load.js';
import { OPTION_SPECS } from '../../src/config/options.js';
import { renderErrorsReference, renderOptionsReference, replaceSection } from '../../src/config/reference.js';
import { ERROR_CODES, RelayError } from '../../src/hub/errors.js';

const readmePath = fileURLToPath(new URL('../../../README.md', import.meta.url));

describe('configuration and documentation', () => {
  it('the README reference sections match the schemas (run `npm run docs` after changing them)', async () => {
    const readme = await readFile(readmePath, 'utf8');
    let expected = replaceSection(readme, 'options', renderOptionsReference());
    expected = replaceSection(expected, 'errors', renderErrorsReference());
    assert.equal(readme, expected);
  });

  it('error codes are unique, prefixed and carry a 4xx/5xx status', () => {
    for (const [code, { status, message }] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^HUB_ERR_[A-Z_]+$/);
      assert.ok(status >= 400 && status < 600, code);
      assert.ok(message.length > 0, code);
    }
  });

  it('flags and environment variables are unique', () => {
    assert.equal(new Set(OPTION_SPECS.map((s) => s.flag)).size, OPTION_SPECS.length);
    assert.equal(new Set(OPTION_SPECS.map((s) => s.env)).size, OPTION_SPECS.length);
  });

  it('reads environment variables, lets flags win, and freezes the result', () => {
    const options = loadServeOptions({ env: { SSE_RELAY_PORT: '4000', SSE_RELAY_HOST: '::1' }, flags: { port: '5000' } });
    assert.equal(options.port, 5000);
    assert.equal(options.host, '::1');
    assert.ok(Object.isFrozen(options));
  });

  const invalid: [string, Record<string, string>, RegExp][] = [
    ['port', { port: '70000' }, /--port/],
    ['port (env)', {}, /SSE_RELAY_PORT/],
    ['store', { store: 'postgres' }, /--store.*sqlite, memory/],
    ['duration', { heartbeatInterval: 'soon' }, /--heartbeat-interval/],
    ['size', { maxBodySize: '12 parsecs' }, /--max-body-size/],
    ['fsync', { fsync: 'sometimes' }, /--fsync/],
  ];
  for (const [name, flags, message] of invalid) {
    it(`rejects an invalid ${name} naming the option`, () => {
      const env = name === 'port (env)' ? { SSE_RELAY_PORT: 'eighty' } : {};
      assert.throws(
        () => loadServeOptions({ env, flags }),
        (error: unknown) => error instanceof RelayError && error.code === 'HUB_ERR_CONFIG_INVALID' && message.test(error.message),
      );
    });
  }
});
