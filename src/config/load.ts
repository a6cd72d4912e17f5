import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { RelayError } from '../hub/errors.js';
import { closestName } from './closest-name.js';
import { assertKnownEnvironment } from './environment.js';
import { redactValue } from './redact.js';
import { DEFAULT_SERVE_OPTIONS, OPTION_SPECS, type OptionSpec, type ServeOptions } from './options.js';

/** Where option values come from; later sources win (environment, then flags). */
export interface OptionSources {
  /** A JSON or YAML file of options (keys: `dataDir` or `data-dir`); overridden by env and flags. */
  readonly configFile?: string | undefined;
  /** Environment variables, e.g. `process.env` (read here and nowhere else). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Textual values by option key, e.g. from parsed CLI flags. */
  readonly flags?: Readonly<Record<string, string | boolean | undefined>>;
}

/**
 * Builds the frozen options of `serve`: defaults, overridden by the config file, then by
 * environment variables, then by flags. An unknown or invalid option (config-file key or
 * `SSE_RELAY_*` variable) stops start-up with HUB_ERR_CONFIG_INVALID naming the option and
 * where it came from.
 */
export function loadServeOptions(sources: OptionSources): ServeOptions {
  if (sources.env !== undefined) assertKnownEnvironment(sources.env);
  const values: Record<string, unknown> = { ...DEFAULT_SERVE_OPTIONS };
  if (sources.configFile !== undefined) {
    for (const [spec, raw, origin] of readConfigFile(sources.configFile)) values[spec.key] = parseValue(spec, raw, origin);
  }
  for (const spec of OPTION_SPECS) {
    // REDIS_URL is the conventional name; the hub's own variable still wins over it.
    const envName = spec.key === 'store' && sources.env?.[spec.env] === undefined && sources.env?.REDIS_URL !== undefined ? 'REDIS_URL' : spec.env;
    const fromEnv = sources.env?.[envName];
    const fromFlag = sources.flags?.[spec.key];
    const [raw, origin] =
      fromFlag !== undefined ? [fromFlag, `--${spec.flag}`] : fromEnv !== undefined ? [fromEnv, envName] : [undefined, ''];
    if (raw === undefined) continue;
    values[spec.key] = parseValue(spec, String(raw), origin);
  }
  const options = Object.freeze(values) as unknown as ServeOptions;
  assertCompatible(options);
  return options;
}

/** Options that are valid alone but not together. */
function assertCompatible(options: ServeOptions): void {
  // The shared subscriptions registry runs on one Redis server; on a cluster each node would
  // list only its own subscriptions, which is the wrong answer, not a smaller one.
  if (options.subscriptions && options.store.startsWith('redis-cluster://')) {
    throw new RelayError('HUB_ERR_CONFIG_INVALID', '--subscriptions is not supported with a redis-cluster:// store yet (use redis:// for the shared subscription list)');
  }
  if (options.redisShards > 1) {
    if (!/^(redis|rediss|redis-cluster):\/\//.test(options.store)) {
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `--redis-shards ${options.redisShards} needs a Redis store (redis://, rediss:// or redis-cluster://); with --store ${options.store.includes('://') ? 'this store' : options.store} there is one shard`);
    }
    // The registry keeps one list in one Redis key space, announced on one stream.
    if (options.subscriptions) throw new RelayError('HUB_ERR_CONFIG_INVALID', '--subscriptions is not supported with --redis-shards above 1 yet');
  }
}

function parseValue(spec: OptionSpec, raw: string, origin: string): unknown {
  try {
    return spec.parse(raw);
  } catch (error) {
    const message = (error as Error).message;
    // Parsers that quote a secret option's value redact it themselves; this catches any that do not.
    throw new RelayError('HUB_ERR_CONFIG_INVALID', `Invalid value for ${origin}: ${spec.secret ? redactValue(message, raw) : message}`);
  }
}

/** Reads a JSON or YAML options file into (spec, textual value, origin) triples. */
function readConfigFile(path: string): [OptionSpec, string, string][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RelayError('HUB_ERR_CONFIG_INVALID', `Cannot read config file ${path}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both.
    document = parseYaml(text);
  } catch (error) {
    // Only the first line: the rest quotes the offending line of the file, which may hold a key.
    const where = (error as Error).message.split('\n')[0]!.replace(/:$/, '');
    throw new RelayError('HUB_ERR_CONFIG_INVALID', `Config file ${path} is not valid JSON or YAML: ${where}`);
  }
  if (document === null || document === undefined) return [];
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new RelayError('HUB_ERR_CONFIG_INVALID', `Config file ${path} must contain an object of options`);
  }
  const byName = new Map<string, OptionSpec>();
  for (const spec of OPTION_SPECS) {
    byName.set(spec.key, spec);
    byName.set(spec.flag, spec);
  }
  return Object.entries(document as Record<string, unknown>).map(([name, value]) => {
    const spec = byName.get(name);
    if (!spec) {
      const suggestion = closestName(name, byName.keys());
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `Unknown option "${name}" in config file ${path}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
    }
    const origin = `"${name}" in ${path}`;
    if (value !== null && typeof value === 'object') {
      if (!Array.isArray(value)) throw new RelayError('HUB_ERR_CONFIG_INVALID', `Invalid value for ${origin}: expected a scalar or a list`);
      return [spec, value.map(String).join(','), origin];
    }
    return [spec, value === null ? '' : String(value), origin];
  });
}

/** Merges programmatic overrides (already typed) onto defaults, for embedding and tests. */
export function serveOptions(overrides: Partial<ServeOptions> = {}): ServeOptions {
  return Object.freeze({ ...DEFAULT_SERVE_OPTIONS, ...overrides });
}
