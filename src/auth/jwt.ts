/**
 * JWT verification with jose, for one role (publishers or subscribers).
 *
 * The algorithm comes from configuration and is the only one accepted, whatever the token's
 * header says: `alg: none` and algorithm confusion (an RS256 public key used as an HS256
 * secret) are refused by jose's `algorithms` allowlist, and an HMAC algorithm configured with a
 * PEM key is refused at start-up.
 *
 * Two token profiles are accepted:
 * - **RFC 9068 access tokens** (`typ: at+jwt`), Mercure 1.x: `exp` is required; `iss` must be
 *   the configured issuer and `aud` must contain the configured audience, when configured.
 *   The audience comes from configuration, never from the request URL (hubs run behind
 *   proxies). Grants are in `authorization_details`.
 * - **legacy tokens** (any other `typ`, often no `typ` at all), hub 0.x: `exp`, `iss` and `aud`
 *   are optional, and checked when present. Grants are in the `mercure` claim.
 *
 * `exp` and `nbf` are checked by jose whenever present.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { RelayError } from '../hub/errors.js';
import { authorizationError, BearerChallenge, MAX_TOKEN_LENGTH } from './bearer.js';

/** Which claims carry the grants. */
export type TokenProfile = 'rfc9068' | 'legacy';

/** A token whose signature and time claims were checked. */
export interface VerifiedToken {
  readonly profile: TokenProfile;
  readonly claims: JWTPayload;
}

/** What a verifier checks besides the signature. */
export interface VerifierOptions {
  /** The only accepted `alg`. */
  readonly algorithm: string;
  /** Required `iss` (RFC 9068 tokens; legacy tokens only when they carry one). */
  readonly issuer: string | undefined;
  /** Required member of `aud` (same rule). */
  readonly audience: string | undefined;
}

const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'application/at+jwt']);

/**
 * Reads a key option: `@path` reads the file (a secret's trailing line break is dropped),
 * anything else is the key itself.
 */
export function readKeyOption(raw: string): string {
  if (!raw.startsWith('@')) return raw;
  try {
    return readFileSync(raw.slice(1), 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new RelayError('HUB_ERR_CONFIG_INVALID', `Cannot read the JWT key file ${raw.slice(1)}: ${(error as Error).message}`);
  }
}

/** Verifies tokens for one role with one key (or one JWKS). */
export class TokenVerifier {
  private constructor(
    private readonly key: Uint8Array | KeyObject | JWTVerifyGetKey,
    private readonly options: VerifierOptions,
  ) {}

  /** A verifier for a key given as configuration text (secret, PEM, or `@file`). */
  static fromKey(rawKey: string, options: VerifierOptions): TokenVerifier {
    const text = readKeyOption(rawKey);
    const isPem = text.includes('-----BEGIN');
    if (options.algorithm.startsWith('HS')) {
      if (isPem) {
        throw new RelayError('HUB_ERR_CONFIG_INVALID', `${options.algorithm} needs a shared secret, but the key is PEM: set --jwt-algorithm to the key's algorithm (RS256, ES256, ...)`);
      }
      if (text.length === 0) throw new RelayError('HUB_ERR_CONFIG_INVALID', 'The JWT secret is empty');
      // HMAC keys are raw UTF-8 strings, as Mercure and its clients use them.
      return new TokenVerifier(new TextEncoder().encode(text), options);
    }
    if (!isPem) {
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `${options.algorithm} needs a PEM public key (or @file), not a secret`);
    }
    let key: KeyObject;
    try {
      // Accepts SPKI and PKCS#1 public keys, certificates, and private keys (their public half).
      key = createPublicKey(text);
    } catch (error) {
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `Cannot read the PEM key: ${(error as Error).message}`);
    }
    const expected = options.algorithm.startsWith('ES') ? ['ec'] : options.algorithm === 'EdDSA' ? ['ed25519', 'ed448'] : ['rsa', 'rsa-pss'];
    if (!expected.includes(key.asymmetricKeyType ?? '')) {
      throw new RelayError('HUB_ERR_CONFIG_INVALID', `The PEM key is ${key.asymmetricKeyType ?? 'unknown'}, which cannot verify ${options.algorithm}`);
    }
    return new TokenVerifier(key, options);
  }

  /** A verifier fetching its keys from a JWKS URL (cached and refreshed by jose). */
  static fromJwks(url: string, options: VerifierOptions): TokenVerifier {
    return new TokenVerifier(createRemoteJWKSet(new URL(url), { timeoutDuration: 5000 }), options);
  }

  /**
   * Verifies `token`; throws HUB_ERR_TOKEN_INVALID (401, `invalid_token`) on any failure, its
   * message saying which check failed (never quoting the token or its claims).
   */
  async verify(token: string): Promise<VerifiedToken> {
    if (token.length === 0) throw invalidToken('it is empty');
    if (token.length > MAX_TOKEN_LENGTH) throw invalidToken(`it is longer than ${MAX_TOKEN_LENGTH} characters`);
    let claims: JWTPayload;
    let typ: string | undefined;
    try {
      const result = await jwtVerify(token, this.key as Uint8Array, { algorithms: [this.options.algorithm] });
      claims = result.payload;
      typ = result.protectedHeader.typ;
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw expiredToken();
      const reason = joseFailureReason(error, this.options.algorithm);
      if (reason !== undefined) throw invalidToken(reason);
      throw error;
    }
    const { issuer, audience } = this.options;
    const profile: TokenProfile = typ !== undefined && ACCESS_TOKEN_TYPES.has(typ.toLowerCase()) ? 'rfc9068' : 'legacy';
    if (profile === 'rfc9068') {
      if (typeof claims.exp !== 'number') throw invalidToken('it is an RFC 9068 access token (typ at+jwt) without the exp claim it requires');
      if (issuer !== undefined && claims.iss !== issuer) throw invalidToken(claims.iss === undefined ? 'it has no issuer (iss), and --jwt-issuer requires one' : WRONG_ISSUER);
      if (audience !== undefined && !audiences(claims.aud).includes(audience)) throw invalidToken(claims.aud === undefined ? 'it has no audience (aud), and --jwt-audience requires one' : WRONG_AUDIENCE);
    } else {
      if (issuer !== undefined && claims.iss !== undefined && claims.iss !== issuer) throw invalidToken(WRONG_ISSUER);
      if (audience !== undefined && claims.aud !== undefined && !audiences(claims.aud).includes(audience)) throw invalidToken(WRONG_AUDIENCE);
    }
    return { profile, claims };
  }
}

const WRONG_ISSUER = 'its issuer (iss) is not the one this hub trusts (--jwt-issuer)';
const WRONG_AUDIENCE = 'its audience (aud) does not include this hub (--jwt-audience)';

/** Why jose refused a token, in words; undefined for an error that is not about the token. */
function joseFailureReason(error: unknown, algorithm: string): string | undefined {
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "its signature does not verify with the hub's key";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return `it is not signed with ${algorithm}, the only algorithm this hub accepts (--jwt-algorithm)`;
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf' && error.reason === 'check_failed') return 'it is not valid yet (its nbf is in the future)';
    return `its ${error.claim} claim is malformed`;
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'no key of the JWKS (--jwks-url) matches it';
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return 'the hub could not get a key from its JWKS (--jwks-url) to verify it';
  }
  if (error instanceof joseErrors.JOSENotSupported) return 'it uses a JOSE feature this hub does not support (an unknown alg or crit header)';
  if (error instanceof joseErrors.JOSEError || error instanceof TypeError) return 'it is malformed (not a signed JWT: three base64url parts, a JSON header and JSON claims)';
  return undefined;
}

function audiences(aud: JWTPayload['aud']): readonly string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud : [];
}

/**
 * The answer to a bad token: `The access token is invalid: <reason>`, in the error's message
 * and the challenge's `error_description`. The reason names the check that failed (issuer,
 * audience, signature, algorithm, `exp`, `nbf`, form, grants) so the person holding the token
 * can fix it; it never quotes the token or its claims.
 */
export function invalidToken(reason: string): RelayError {
  const description = `The access token is invalid: ${reason}`;
  return authorizationError('HUB_ERR_TOKEN_INVALID', description, new BearerChallenge('invalid_token', description));
}

/** An expired token: clients that hold a refresh token know to use it. */
export function expiredToken(): RelayError {
  const description = 'The access token expired';
  return authorizationError('HUB_ERR_TOKEN_INVALID', description, new BearerChallenge('invalid_token', description));
}
