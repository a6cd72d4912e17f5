import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { SignJWT, type JWTPayload } from 'jose';
import { parseDuration } from '../config/options.js';
import { USAGE_EXIT_CODE } from './usage-error.js';

/** Options of `sse-relay token`, as commander parses them. */
export interface TokenCommandOptions {
  key: string;
  alg: string;
  profile: 'rfc9068' | 'legacy';
  publish?: string[];
  subscribe?: string[];
  publishUrlpattern?: string[];
  subscribeUrlpattern?: string[];
  iss?: string;
  aud?: string;
  sub?: string;
  expires: string;
  payload?: string;
}

const ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const DETAIL_TYPE = 'https://mercure.rocks/authorization-detail';

/**
 * `sse-relay token`: mints a JWT for development and tests, like Mercure's `mercure-token`.
 * `rfc9068` (default) makes an access token (`typ: at+jwt`, `authorization_details`); `legacy`
 * makes a hub 0.x token (`mercure` claim), which older clients and libraries expect.
 */
export function registerTokenCommand(program: Command): void {
  program
    .command('token')
    .description('Mint a JWT granting publish/subscribe on topics (for development).')
    .requiredOption('--key <key>', 'signing key: an HMAC secret, a PEM private key, @path to read it from a file, or @- for stdin')
    .addOption(new Option('--alg <alg>', 'signing algorithm (the hub accepts only its --jwt-algorithm)').choices(ALGORITHMS).default('HS256'))
    .addOption(new Option('--profile <profile>', 'rfc9068: access token with authorization_details; legacy: hub 0.x `mercure` claim').choices(['rfc9068', 'legacy']).default('rfc9068'))
    .option('--publish <topics...>', 'topics the token may publish to (* for all); repeatable')
    .option('--subscribe <topics...>', 'topics whose private updates the token may receive (* for all); repeatable')
    .option('--publish-urlpattern <patterns...>', 'URL patterns the token may publish to (rfc9068 only)')
    .option('--subscribe-urlpattern <patterns...>', 'URL patterns the token may receive private updates of (rfc9068 only)')
    .option('--iss <issuer>', 'issuer (`iss`), the hub\'s --jwt-issuer')
    .option('--aud <audience>', 'audience (`aud`), the hub\'s --jwt-audience')
    .option('--sub <subject>', 'subject (`sub`)')
    .option('--expires <duration>', 'lifetime such as 15m, 1h, 7d; 0 for no expiry (legacy profile only)', '1h')
    .option('--payload <json>', 'JSON attached to the subscribe grant (subscription metadata)')
    .action(async (options: TokenCommandOptions) => {
      let token: string;
      try {
        token = await mintToken(options);
      } catch (error) {
        // Everything mintToken refuses is the command line's fault (a bad duration, key or file).
        process.stderr.write(`sse-relay: ${(error as Error).message}\n`);
        process.exitCode = USAGE_EXIT_CODE;
        return;
      }
      if (!grantsAnything(options)) process.stderr.write(`sse-relay: warning: ${NO_GRANT_WARNING}\n`);
      process.stdout.write(`${token}\n`);
    });
}

/**
 * Warned about rather than refused: a token without grants is still a valid token, which a hub
 * without --anonymous asks of Mercure subscribers to public updates. It is also what a user
 * who forgot --publish gets, and then a 403 far from the cause, hence the warning (on stderr,
 * so `TOKEN=$(sse-relay token ...)` still captures only the token).
 */
const NO_GRANT_WARNING =
  'this token grants nothing: it can neither publish nor subscribe to an id (add --publish, --subscribe, --publish-urlpattern or --subscribe-urlpattern; * for every topic)';

function grantsAnything(options: TokenCommandOptions): boolean {
  return [options.publish, options.subscribe, options.publishUrlpattern, options.subscribeUrlpattern].some((list) => (list?.length ?? 0) > 0);
}

/** Builds and signs the token described by the options. */
export async function mintToken(options: TokenCommandOptions, readStdin: () => string = () => readFileSync(0, 'utf8')): Promise<string> {
  const keyText = options.key === '@-' ? readStdin().replace(/\r?\n$/, '') : options.key.startsWith('@') ? readFileSync(options.key.slice(1), 'utf8').replace(/\r?\n$/, '') : options.key;
  let key: Uint8Array | KeyObject;
  if (options.alg.startsWith('HS')) {
    if (keyText.includes('-----BEGIN')) throw new Error(`${options.alg} signs with a shared secret, not a PEM key`);
    key = new TextEncoder().encode(keyText);
  } else {
    try {
      key = createPrivateKey(keyText);
    } catch (error) {
      throw new Error(`${options.alg} needs a PEM private key: ${(error as Error).message}`);
    }
  }

  const lifetime = parseDuration(options.expires);
  const now = Math.floor(Date.now() / 1000);
  let payload: unknown;
  if (options.payload !== undefined) {
    try {
      payload = JSON.parse(options.payload);
    } catch {
      throw new Error('--payload must be JSON');
    }
  }

  const claims: JWTPayload = {};
  const header: { alg: string; typ?: string } = { alg: options.alg };
  if (options.profile === 'legacy') {
    if (options.publishUrlpattern || options.subscribeUrlpattern) throw new Error('URL patterns need the rfc9068 profile (legacy grants are URI templates: use --publish/--subscribe)');
    claims.mercure = {
      ...(options.publish ? { publish: options.publish } : {}),
      ...(options.subscribe ? { subscribe: options.subscribe } : {}),
      ...(payload !== undefined ? { payload } : {}),
    };
  } else {
    if (lifetime === 0) throw new Error('RFC 9068 access tokens must expire: give --expires a duration');
    header.typ = 'at+jwt';
    const topics = (exact: string[] | undefined, patterns: string[] | undefined): { match: string; match_type?: string }[] => [
      ...(exact ?? []).map((match) => ({ match })),
      ...(patterns ?? []).map((match) => ({ match, match_type: 'urlpattern' })),
    ];
    const details: Record<string, unknown>[] = [];
    const publish = topics(options.publish, options.publishUrlpattern);
    const subscribe = topics(options.subscribe, options.subscribeUrlpattern);
    if (publish.length > 0) details.push({ type: DETAIL_TYPE, actions: ['publish'], topics: publish });
    if (subscribe.length > 0) details.push({ type: DETAIL_TYPE, actions: ['subscribe'], topics: subscribe, ...(payload !== undefined ? { payload } : {}) });
    claims.authorization_details = details;
    // RFC 9068 asks issuers for these; the hub does not need them, validators elsewhere may.
    claims.client_id = 'sse-relay-token';
    claims.jti = randomUUID();
    claims.iat = now;
  }
  if (options.iss !== undefined) claims.iss = options.iss;
  if (options.aud !== undefined) claims.aud = options.aud;
  if (options.sub !== undefined) claims.sub = options.sub;
  if (lifetime > 0) claims.exp = now + Math.ceil(lifetime / 1000);
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}
