/**
 * Who may publish and subscribe: the one authorization policy both APIs (`/messages/...` and
 * Mercure) apply.
 *
 * - **Open hub** (no publisher key, no JWKS URL): anyone may publish; presented tokens are not
 *   checked (there is nothing to check them with). Allowed only on a loopback address unless
 *   `--insecure-open`; the start-up log says so.
 * - **Publishing** with a publisher key: a token is required (401), valid (401 `invalid_token`)
 *   and must grant `publish` on every topic of the update (403 `insufficient_scope`).
 * - **Subscribing** with a subscriber key (or the publisher key when none is set): a token is
 *   required unless `--anonymous`. A valid token may open a Mercure subscription; the article's
 *   `/messages/subscribe/:id` also needs a `subscribe` grant on the id unless `--anonymous`.
 * - **Private updates** go only to subscribers whose token grants `subscribe` on at least one
 *   topic of the update (`--private-updates any-topic`, Mercure's rule, the default) or on every
 *   topic of it (`every-topic`); no token (anonymous, open hub) means public updates only. The
 *   check runs on every delivered message, live and replayed, against the token the subscription
 *   opened with, and on what `GET /messages/:id` counts.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ServeOptions } from '../config/options.js';
import { RelayError } from '../hub/errors.js';
import type { Message } from '../hub/message.js';
import { authorizationError, BearerChallenge, presentedToken } from './bearer.js';
import { grantsFromClaims, type Grants } from './grants.js';
import { TokenVerifier, type VerifierOptions } from './jwt.js';

/** Who is making a request, as far as authorization is concerned. */
export interface Principal {
  /** `open`: the role needs no token; `anonymous`: no token, allowed by `--anonymous`. */
  readonly kind: 'open' | 'anonymous' | 'token';
  /** The token's grants (kind `token` only). */
  readonly grants?: Grants | undefined;
  /** When the token expires, in milliseconds since the epoch (undefined: never). */
  readonly expiresAt?: number | undefined;
  /** The token's subject (`sub`), when it has one: who owns acknowledged consumers. */
  readonly subject?: string | undefined;
}

const OPEN: Principal = Object.freeze({ kind: 'open' });
const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous' });

/** The role a request acts in; each has its own key. */
export type Role = 'publisher' | 'subscriber';

/** Addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(?:\.\d{1,3}){3}$/.test(bare) || /^::ffff:127(?:\.\d{1,3}){3}$/.test(bare);
}

/** Applies the hub's authorization policy; built once from the options. */
export class Authorizer {
  private constructor(
    private readonly publisher: TokenVerifier | undefined,
    private readonly subscriber: TokenVerifier | undefined,
    private readonly anonymous: boolean,
    private readonly baseUrl: string | undefined,
    private readonly privateUpdates: ServeOptions['privateUpdates'],
  ) {}

  /**
   * Builds the policy from the options: reads and checks keys (HUB_ERR_CONFIG_INVALID on a bad
   * key) and refuses an open hub on a non-loopback address unless `--insecure-open`.
   */
  static create(options: ServeOptions): Authorizer {
    const verifierOptions: VerifierOptions = {
      algorithm: options.jwtAlgorithm,
      issuer: options.jwtIssuer,
      audience: options.jwtAudience,
    };
    const verifier = (key: string | undefined): TokenVerifier | undefined => {
      if (options.jwksUrl !== undefined) return TokenVerifier.fromJwks(options.jwksUrl, verifierOptions);
      return key === undefined ? undefined : TokenVerifier.fromKey(key, verifierOptions);
    };
    const publisher = verifier(options.publisherJwtKey);
    const subscriber = options.subscriberJwtKey === undefined ? publisher : verifier(options.subscriberJwtKey);
    if (publisher === undefined && !isLoopbackHost(options.host) && !options.insecureOpen) {
      throw new RelayError(
        'HUB_ERR_CONFIG_INVALID',
        `Refusing to listen on ${options.host} without a publisher key: anyone who can reach it could publish. Set --publisher-jwt-key (or --jwks-url), listen on 127.0.0.1, or pass --insecure-open`,
      );
    }
    return new Authorizer(publisher, subscriber, options.anonymous, options.publicUrl, options.privateUpdates);
  }

  /** True when publishing needs no token. */
  get publishOpen(): boolean {
    return this.publisher === undefined;
  }

  /** True when subscribing needs no token. */
  get subscribeOpen(): boolean {
    return this.subscriber === undefined || this.anonymous;
  }

  /** Lines for the start-up log about an unprotected hub. */
  startupWarnings(): string[] {
    const warnings: string[] = [];
    if (this.publisher === undefined) warnings.push('No publisher key is set: anyone who can reach the hub can publish (set --publisher-jwt-key).');
    if (this.subscriber === undefined) warnings.push('No subscriber key is set: anyone can subscribe; private updates reach nobody.');
    return warnings;
  }

  /**
   * Who the request is for `role`. Throws HUB_ERR_UNAUTHORIZED (401) when a token is required
   * and missing, HUB_ERR_TOKEN_INVALID (401) when the token is not valid.
   */
  async authenticate(role: Role, headers: IncomingHttpHeaders): Promise<Principal> {
    return this.authenticateNow(role, headers);
  }

  /**
   * {@link authenticate} without a promise when no token needs verifying (an open hub, an
   * anonymous subscriber, a missing token): the principal, or a promise of it when a token is
   * verified. Throws synchronously what `authenticate` rejects with in those cases. For the
   * publish path, where an open hub's publish would otherwise cost a promise turn for nothing.
   */
  authenticateNow(role: Role, headers: IncomingHttpHeaders): Principal | Promise<Principal> {
    const verifier = role === 'publisher' ? this.publisher : this.subscriber;
    if (verifier === undefined) return OPEN;
    const token = presentedToken(headers);
    if (token === undefined) {
      if (role === 'subscriber' && this.anonymous) return ANONYMOUS;
      throw authorizationError('HUB_ERR_UNAUTHORIZED', `A bearer token is required to ${role === 'publisher' ? 'publish' : 'subscribe'}`, new BearerChallenge());
    }
    return verifier.verify(token).then(({ profile, claims }): Principal => ({
      kind: 'token',
      grants: grantsFromClaims(profile, claims, this.baseUrl),
      expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : undefined,
      subject: typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined,
    }));
  }

  /** Throws HUB_ERR_FORBIDDEN (403) unless the principal may publish to every one of `topics`. */
  assertMayPublish(principal: Principal, topics: readonly string[]): void {
    if (principal.kind === 'open') return;
    if (principal.grants?.allowsEvery('publish', topics)) return;
    throw forbidden(topics.length === 1 ? 'The token does not allow publishing to this topic' : 'The token does not allow publishing to every topic of this update');
  }

  /**
   * For the article's API, where a subscription names one id: throws HUB_ERR_FORBIDDEN unless
   * the principal holds a `subscribe` grant on it (or anonymous subscribers are allowed).
   */
  assertMaySubscribe(principal: Principal, topic: string): void {
    if (principal.kind !== 'token' || this.anonymous) return;
    if (principal.grants?.allowsEvery('subscribe', [topic])) return;
    throw forbidden('The token does not allow subscribing to this id');
  }

  /** True when `message` may be delivered to the principal (the private-update rule). */
  mayReceive(principal: Principal, message: Message): boolean {
    if (!message.private) return true;
    const grants = principal.grants;
    if (grants === undefined) return false;
    return this.privateUpdates === 'any-topic' ? grants.allowsAny('subscribe', message.topics) : grants.allowsEvery('subscribe', message.topics);
  }

  /**
   * True when the principal may receive every message published to `topic`, private ones
   * included, whatever their other topics: under `any-topic`, a `subscribe` grant on `topic`
   * itself. Lets `GET /messages/:id` skip reading history to count what the caller may see.
   */
  mayReceiveAllOf(principal: Principal, topic: string): boolean {
    return this.privateUpdates === 'any-topic' && principal.grants !== undefined && principal.grants.allowsEvery('subscribe', [topic]);
  }
}

function forbidden(message: string): RelayError {
  return authorizationError('HUB_ERR_FORBIDDEN', message, new BearerChallenge('insufficient_scope', 'The token does not grant this operation'));
}
