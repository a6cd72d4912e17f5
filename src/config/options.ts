/**
 * The hub's options: one table that is the schema. From it come the CLI flags of `serve`, the
 * environment variables, validation at start-up and the README's reference, so they cannot
 * drift apart. Values are parsed and checked once, then frozen and passed explicitly.
 */

import { MAX_SHARDS } from '../store/position-vector.js';
import { isClusterUrl, parseClusterUrl } from '../store/redis/cluster-url.js';
import { redactUrl } from './redact.js';

/** Every option of `sse-relay serve`, validated. */
export interface ServeOptions {
  readonly host: string;
  readonly port: number;
  /** `sqlite`, `memory`, a `redis://` / `rediss://` URL, or `redis-cluster://` seed nodes. */
  readonly store: 'sqlite' | 'memory' | `redis://${string}` | `rediss://${string}` | `redis-cluster://${string}`;
  readonly redisKeyPrefix: string;
  /** Shards of the Redis history (1: the single stream); only with a Redis store. */
  readonly redisShards: number;
  readonly dataDir: string;
  readonly fsync: 'normal' | 'full';
  readonly retentionCount: number;
  readonly retentionAge: number;
  readonly memoryMaxMessages: number;
  /** Messages one acknowledged consumer may hold unacknowledged. */
  readonly consumerMaxPending: number;
  /** How long a consumer without connection or acknowledgement is kept (ms; 0: forever). */
  readonly consumerTtl: number;
  readonly heartbeatInterval: number;
  readonly retry: number;
  readonly maxBodySize: number;
  readonly maxBacklog: number;
  /** What happens to a subscriber past `maxBacklog` unless it asks otherwise (`?slow=`). */
  readonly slowConsumerPolicy: SlowConsumerPolicy;
  readonly loopInterval: number;
  readonly shutdownTimeout: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly publisherJwtKey: string | undefined;
  readonly subscriberJwtKey: string | undefined;
  readonly jwtAlgorithm: string;
  readonly jwksUrl: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** Issuers of the authorization servers advertised in Mercure's protected resource metadata. */
  readonly authorizationServers: readonly string[];
  /** Mercure's active subscriptions: subscription events and the subscriptions API. */
  readonly subscriptions: boolean;
  readonly anonymous: boolean;
  /** Which grants a private update needs: Mercure's rule (`any-topic`) or ours (`every-topic`). */
  readonly privateUpdates: 'any-topic' | 'every-topic';
  /** Most URL-pattern and URI-template selectors one subscription may carry. */
  readonly maxSubscriptionPatterns: number;
  readonly insecureOpen: boolean;
  readonly corsOrigins: readonly string[];
  readonly publicUrl: string | undefined;
  readonly metricsToken: string | undefined;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly headersTimeout: number;
  readonly requestTimeout: number;
  readonly keepAliveTimeout: number;
  readonly maxRequestsPerSocket: number;
  readonly trustProxy: readonly string[];
}

/** The slow-consumer policies a subscriber may choose (`?slow=`), see README "Slow consumers". */
export const SLOW_CONSUMER_POLICIES = ['disconnect', 'skip', 'latest'] as const;
export type SlowConsumerPolicy = (typeof SLOW_CONSUMER_POLICIES)[number];

/** How one option is named, documented and parsed. */
export interface OptionSpec<K extends keyof ServeOptions = keyof ServeOptions> {
  readonly key: K;
  /** Long flag without dashes, kebab-case: `data-dir`. */
  readonly flag: string;
  /** Environment variable: `SSE_RELAY_` + the flag in upper snake case. */
  readonly env: string;
  /** Placeholder shown in help: `<ms>`; empty for a boolean switch. */
  readonly value: string;
  readonly description: string;
  /** Default, as it would be written on the command line. */
  readonly defaultText: string;
  /**
   * True when the value is or may contain a secret (a key, a token, a URL's password): it never
   * appears in a log line or an error message.
   */
  readonly secret: boolean;
  /** Parses a textual value; throws an Error whose message says what is expected. */
  parse(raw: string): ServeOptions[K];
}

const ENV_PREFIX = 'SSE_RELAY_';

function spec<K extends keyof ServeOptions>(
  key: K,
  value: string,
  defaultText: string,
  description: string,
  parse: (raw: string) => ServeOptions[K],
  { secret = false }: { secret?: boolean } = {},
): OptionSpec<K> {
  const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return { key, flag, env: ENV_PREFIX + flag.replace(/-/g, '_').toUpperCase(), value, defaultText, description, secret, parse };
}

function integer(min: number, max: number): (raw: string) => number {
  return (raw) => {
    if (!/^\d+$/.test(raw.trim())) throw new Error(`expected an integer from ${min} to ${max}, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `1500`, `1500ms`, `15s`, `5m`, `24h`, `7d` → milliseconds. */
export function parseDuration(raw: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!match) throw new Error(`expected a duration such as 1500, 15s, 5m, 24h or 7d, got "${raw}"`);
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!;
  if (!Number.isSafeInteger(ms)) throw new Error(`duration "${raw}" is too large`);
  return ms;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3 };

/** `1048576`, `512kb`, `1MiB` → bytes. */
export function parseSize(raw: string): number {
  const match = /^(\d+)\s*([a-z]+)?$/i.exec(raw.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? 'b').toLowerCase()];
  if (!match || unit === undefined) throw new Error(`expected a size such as 65536, 512KiB or 1MiB, got "${raw}"`);
  const bytes = Number(match[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error(`size "${raw}" is out of range`);
  return bytes;
}

function oneOf<T extends string>(...values: T[]): (raw: string) => T {
  return (raw) => {
    if (!(values as string[]).includes(raw)) throw new Error(`expected one of ${values.join(', ')}, got "${raw}"`);
    return raw as T;
  };
}

function boolean(raw: string): boolean {
  if (/^(true|1|yes|on)$/i.test(raw.trim())) return true;
  if (/^(false|0|no|off|)$/i.test(raw.trim())) return false;
  throw new Error(`expected true or false, got "${raw}"`);
}

/** An optional text value: the default (and an empty string) means "not set". */
function optionalText(raw: string): string | undefined {
  return raw.length === 0 ? undefined : raw;
}

function list(raw: string): readonly string[] {
  return Object.freeze(raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0));
}

function storeKind(raw: string): ServeOptions['store'] {
  if (raw === 'sqlite' || raw === 'memory') return raw;
  if (isClusterUrl(raw)) {
    try {
      parseClusterUrl(raw);
      return raw as ServeOptions['store'];
    } catch {
      throw new Error(`expected redis-cluster://host:port[,host:port...], got "${redactUrl(raw)}"`);
    }
  }
  if (/^rediss?:\/\/[^\s]+$/.test(raw)) {
    try {
      new URL(raw);
      return raw as ServeOptions['store'];
    } catch {
      // fall through to the error below
    }
  }
  // The URL may carry a password: the error shows it without.
  throw new Error(`expected sqlite, memory, a redis://host:port[/db] URL or redis-cluster://host:port[,host:port...], got "${redactUrl(raw)}"`);
}

function httpUrl(raw: string): string | undefined {
  if (raw.length === 0) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`expected an http(s) URL, got "${redactUrl(raw)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`expected an http(s) URL, got "${redactUrl(raw)}"`);
  return raw;
}

function nonEmpty(raw: string): string {
  if (raw.trim().length === 0) throw new Error('must not be empty');
  return raw;
}

/** The schema, in the order the help and the README list it. */
export const OPTION_SPECS: readonly OptionSpec[] = [
  spec('host', '<address>', '127.0.0.1', 'Address to listen on.', nonEmpty),
  spec('port', '<number>', '3000', 'TCP port to listen on (0 picks a free one).', integer(0, 65535)),
  spec('store', '<kind>', 'sqlite', 'Where messages are kept: `sqlite` (durable, in --data-dir), `memory` (ephemeral, bounded) `redis://host:port[/db]` (shared by several hub processes; also read from `REDIS_URL`) or `redis-cluster://host:port[,host:port...]` (seed nodes of a Redis Cluster).', storeKind, { secret: true }),
  spec('redisKeyPrefix', '<prefix>', 'sse-relay:', 'Prefix of every Redis key, so several hubs can share one Redis.', nonEmpty),
  spec('redisShards', '<n>', '1', 'With a Redis store: shards the history is split into by topic (`crc32(topic) mod n`, each under its own hash tag, so over the masters of a Redis Cluster); nodes read only the shards their subscribers need and event ids become position vectors (`v1.…`). 1: one stream, decimal ids. Fixed for a deployment; not with `?consumer=` or --subscriptions. At most 256: every shard is a read loop and connection pair per node, and each id carries a component per shard read. See "Scaling past one Redis".', integer(1, MAX_SHARDS)),
  spec('dataDir', '<path>', './data', 'Directory of the SQLite store.', nonEmpty),
  spec('fsync', '<mode>', 'normal', '`normal`: an acknowledged message survives a crash of the hub process; `full`: it also survives power loss (slower).', oneOf('normal', 'full')),
  spec('retentionCount', '<n>', '1000', 'Messages kept per topic for replay (0: no count limit).', integer(0, 1e9)),
  spec('retentionAge', '<duration>', '24h', 'How long messages are kept for replay (0: no age limit).', parseDuration),
  spec('memoryMaxMessages', '<n>', '10000', 'With `--store memory`: messages kept in all.', integer(1, 1e8)),
  spec('consumerMaxPending', '<n>', '10000', 'Messages an acknowledged consumer (`?consumer=`) may hold unacknowledged, kept past retention; past it its oldest are released and it gets a `gap` event.', integer(1, 1e7)),
  spec('consumerTtl', '<duration>', '7d', 'A consumer with no connection and no acknowledgement for this long is deleted with what it held (0: never).', parseDuration),
  spec('heartbeatInterval', '<duration>', '15s', 'Interval of comment heartbeats on idle streams (0 disables them).', parseDuration),
  spec('retry', '<duration>', '3000', 'Reconnection delay hint sent to clients as the SSE `retry` field.', parseDuration),
  spec('maxBodySize', '<size>', '1MiB', 'Largest accepted request body; larger ones get 413.', parseSize),
  spec('maxBacklog', '<size>', '256KiB', 'Bytes the hub may hold for one subscriber that does not read; past this it is disconnected as a slow consumer.', parseSize),
  spec('slowConsumerPolicy', '<policy>', 'disconnect', 'What happens to a subscriber past --max-backlog, unless it chooses with `?slow=`: `disconnect` it; `skip` the oldest queued messages and send a `gap` event; `latest`: keep only the newest queued message of each `key`, then skip.', oneOf(...SLOW_CONSUMER_POLICIES)),
  spec('loopInterval', '<duration>', '5s', 'Interval of the article\'s demo stream `GET /messages/sse/:id`.', parseDuration),
  spec('shutdownTimeout', '<duration>', '5s', 'On SIGINT/SIGTERM, how long to wait for open requests; past it every connection still open is closed and the process exits 1.', parseDuration),
  spec('logLevel', '<level>', 'info', 'Log level: fatal, error, warn, info, debug, trace or silent.', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')),
  spec('publisherJwtKey', '<key>', '', 'Key verifying publishers\' JWTs: an HMAC secret, a PEM public key, or `@path` to read it from a file. Unset: publishing needs no token.', optionalText, { secret: true }),
  spec('subscriberJwtKey', '<key>', '', 'Key verifying subscribers\' JWTs (same forms). Unset: the publisher key is used.', optionalText, { secret: true }),
  spec('jwtAlgorithm', '<alg>', 'HS256', 'The only JWT algorithm accepted (never taken from the token): HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512, EdDSA.', oneOf('HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA')),
  spec('jwksUrl', '<url>', '', 'A JWKS URL to fetch verification keys from (instead of the keys above).', httpUrl, { secret: true }),
  spec('jwtIssuer', '<iss>', '', 'Trusted issuer (`iss`) of RFC 9068 access tokens.', optionalText),
  spec('jwtAudience', '<aud>', '', 'This hub\'s resource identifier, the required audience (`aud`) of RFC 9068 access tokens.', optionalText),
  spec('authorizationServers', '<issuers>', '', 'Comma-separated issuer identifiers of the OAuth authorization servers that issue tokens for this hub, advertised as `authorization_servers` in its protected resource metadata (RFC 9728); empty: tokens are self-issued and the member is omitted.', list),
  spec('subscriptions', '', 'false', 'Mercure active subscriptions: publish a private `mercure` event when a subscription starts or ends and serve `/.well-known/mercure/subscriptions` (with the Redis store, the API lists the subscriptions of every node: see the Mercure section).', boolean),
  spec('anonymous', '', 'false', 'Allow subscribers without a token (public updates only).', boolean),
  spec('privateUpdates', '<rule>', 'any-topic', 'Who receives a private update: `any-topic` (Mercure\'s rule) a subscriber whose token grants `subscribe` on at least one of its topics; `every-topic` (stricter) only one granted every topic of the update.', oneOf('any-topic', 'every-topic')),
  spec('maxSubscriptionPatterns', '<n>', '32', 'Most URL-pattern and URI-template selectors (`match_urlpattern`, templated `topic`) in one subscription; more get 400 `HUB_ERR_MATCHER_LIMIT`. Exact topics and `*` do not count.', integer(0, 100)),
  spec('insecureOpen', '', 'false', 'Allow listening on a non-loopback address without a publisher key (anyone could publish).', boolean),
  spec('corsOrigins', '<origins>', '', 'Comma-separated origins allowed by CORS (credentials only for these) and, besides the hub\'s own, to publish with a token cookie; empty: no CORS headers.', list),
  spec('publicUrl', '<url>', '', 'The hub\'s public base URL (behind a proxy), used in Mercure discovery `Link` headers and as its own origin for cookie-authenticated publishes.', httpUrl),
  spec('metricsToken', '<token>', '', 'Bearer token required to read /metrics; unset: /metrics is open.', optionalText, { secret: true }),
  spec('maxConnections', '<n>', '20000', 'Open connections in all; past it new ones get 429 with Retry-After and are closed.', integer(1, 1e7)),
  spec('maxConnectionsPerIp', '<n>', '2000', 'Open connections per client address (see --trust-proxy); past it: 429.', integer(1, 1e7)),
  spec('headersTimeout', '<duration>', '10s', 'Time a client has to send its request headers (a slow-header client cannot hold a slot for long).', parseDuration),
  spec('requestTimeout', '<duration>', '30s', 'Time a client has to send a whole request, body included (event streams are not affected).', parseDuration),
  spec('keepAliveTimeout', '<duration>', '5s', 'How long an idle keep-alive connection (publishers) stays open.', parseDuration),
  spec('maxRequestsPerSocket', '<n>', '10000', 'Requests served on one keep-alive connection before it is closed (0: no limit).', integer(0, 1e9)),
  spec('trustProxy', '<addresses>', '', 'Comma-separated proxy addresses or CIDRs whose X-Forwarded-For is trusted for the client address; empty: the socket address is the client.', list),
];

/** The defaults, parsed from the same table. */
export const DEFAULT_SERVE_OPTIONS: ServeOptions = Object.freeze(
  Object.fromEntries(OPTION_SPECS.map((s) => [s.key, s.parse(s.defaultText)])) as unknown as ServeOptions,
);
