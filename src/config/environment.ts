import { RelayError } from '../hub/errors.js';
import { closestName } from './closest-name.js';
import { OPTION_SPECS } from './options.js';

/** Every environment variable of sse-relay starts with this. */
export const ENVIRONMENT_PREFIX = 'SSE_RELAY_';

/** `serve`'s config file (`--config`). */
export const CONFIG_FILE_VARIABLE = 'SSE_RELAY_CONFIG';
/** The hub's base URL for the client commands (`--url`). */
export const HUB_URL_VARIABLE = 'SSE_RELAY_URL';
/** The bearer token of the client commands (`--token`). */
export const TOKEN_VARIABLE = 'SSE_RELAY_TOKEN';

/** Variables read by the CLI rather than as options of `serve`: known, so never reported. */
const CLI_VARIABLES = [CONFIG_FILE_VARIABLE, HUB_URL_VARIABLE, TOKEN_VARIABLE];

/**
 * Throws HUB_ERR_CONFIG_INVALID for the first `SSE_RELAY_*` variable in `env` that no option
 * and no command reads (a typo such as `SSE_RELAY_PROT` would otherwise be silently ignored,
 * while an unknown config-file key is fatal), naming it and the closest known variable.
 */
export function assertKnownEnvironment(env: Readonly<Record<string, string | undefined>>): void {
  const known = new Set([...OPTION_SPECS.map((spec) => spec.env), ...CLI_VARIABLES]);
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENVIRONMENT_PREFIX) || known.has(name) || env[name] === undefined) continue;
    const suggestion = closestName(name, known);
    throw new RelayError(
      'HUB_ERR_CONFIG_INVALID',
      `Unknown environment variable ${name}${suggestion ? ` (did you mean ${suggestion}?)` : ''}; unset it, or see \`sse-relay serve --help\` for the known ones`,
    );
  }
}
