import { RelayError } from '../hub/errors.js';
import { DEFAULT_SERVE_OPTIONS, OPTION_SPECS, type ServeOptions } from './options.js';

/** Where option values come from; later sources win (environment, then flags). */
export interface OptionSources {
  /** Environment variables, e.g. `process.env` (read here and nowhere else). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Textual values by option key, e.g. from parsed CLI flags. */
  readonly flags?: Readonly<Record<string, string | boolean | undefined>>;
}

/**
 * Builds the frozen options of `serve`: defaults, overridden by environment variables, then by
 * flags. An invalid value stops start-up with HUB_ERR_CONFIG_INVALID naming the option.
 */
export function loadServeOptions(sources: OptionSources): ServeOptions {
  const values: Record<string, unknown> = { ...DEFAULT_SERVE_OPTIONS };
  for (const spec of OPTION_SPECS) {
    // REDIS_URL is the conventional name; the hub's own variable still wins over it.
    const fromEnv = sources.env?.[spec.env] ?? (spec.key === 'store' ? sources.env?.REDIS_URL : undefined);
    const fromFlag = sources.flags?.[spec.key];
    const [raw, origin] =
      fromFlag !== undefined ? [fromFlag, `--${spec.flag}`] : fromEnv !== undefined ? [fromEnv, spec.env] : [undefined, ''];
    if (raw === undefined) continue;
    try {
      values[spec.key] = spec.parse(String(raw));
    } catch (error) {
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `Invalid value for ${origin}: ${(error as Error).message}`);
    }
  }
  return Object.freeze(values) as unknown as ServeOptions;
}

/** Merges programmatic overrides (already typed) onto defaults, for embedding and tests. */
export function serveOptions(overrides: Partial<ServeOptions> = {}): ServeOptions {
  return Object.freeze({ ...DEFAULT_SERVE_OPTIONS, ...overrides });
}
