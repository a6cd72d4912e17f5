import { SignJWT, type JWTPayload } from 'jose';

/** The HMAC key of Mercure's documentation and conformance suite. */
export const MERCURE_SECRET = '!ChangeThisMercureHubJWTSecretKey!';
/** What Mercure's conformance token carries as issuer and audience. */
export const CONFORMANCE_ISSUER = 'https://localhost';
export const CONFORMANCE_AUDIENCE = 'https://localhost/.well-known/mercure';

/**
 * Mercure's conformance suite publisher token, verbatim: header `{"alg":"HS256"}` only, payload
 * `{"mercure":{"publish":["*"],"subscribe":["*"]}}`, no exp, iss or aud.
 */
export const CONFORMANCE_LEGACY_TOKEN =
  'eyJhbGciOiJIUzI1NiJ9.eyJtZXJjdXJlIjp7InB1Ymxpc2giOlsiKiJdLCJzdWJzY3JpYmUiOlsiKiJdfX0.bVXdlWXwfw9ySx7-iV5OpUSHo34RkjUdVzDLBcc6l_g';

/**
 * Mercure 1.x's conformance token, verbatim: `typ: at+jwt`, iss `https://localhost`, aud
 * `https://localhost/.well-known/mercure`, exp 2100-01-01, publish and subscribe on `*`.
 */
export const CONFORMANCE_ACCESS_TOKEN =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJhdWQiOiJodHRwczovL2xvY2FsaG9zdC8ud2VsbC1rbm93bi9tZXJjdXJlIiwiaXNzIjoiaHR0cHM6Ly9sb2NhbGhvc3QiLCJhdXRob3JpemF0aW9uX2RldGFpbHMiOlt7InR5cGUiOiJodHRwczovL21lcmN1cmUucm9ja3MvYXV0aG9yaXphdGlvbi1kZXRhaWwiLCJhY3Rpb25zIjpbInB1Ymxpc2giXSwidG9waWNzIjpbeyJtYXRjaCI6IioifV19LHsidHlwZSI6Imh0dHBzOi8vbWVyY3VyZS5yb2Nrcy9hdXRob3JpemF0aW9uLWRldGFpbCIsImFjdGlvbnMiOlsic3Vic2NyaWJlIl0sInRvcGljcyI6W3sibWF0Y2giOiIqIn1dfV0sImV4cCI6NDEwMjQ0NDgwMH0.z_S8IP5WZsCK8h3pcq0PB5zvJE0OdTrGA70khAYJQy4';

/** One matcher of an authorization detail. */
export interface Matcher {
  match: string;
  match_type?: string;
}

interface SignOptions {
  key?: string | Uint8Array | CryptoKey;
  alg?: string;
  header?: Record<string, unknown>;
}

async function sign(payload: JWTPayload, options: SignOptions): Promise<string> {
  const key = options.key ?? MERCURE_SECRET;
  const secret = typeof key === 'string' ? new TextEncoder().encode(key) : key;
  return new SignJWT(payload).setProtectedHeader({ alg: options.alg ?? 'HS256', ...options.header } as { alg: string }).sign(secret);
}

/** A hub 0.x token: the `mercure` claim, header `{"alg": ...}` only unless told. */
export function legacyToken(mercure: { publish?: unknown; subscribe?: unknown; payload?: unknown } | undefined, claims: JWTPayload = {}, options: SignOptions = {}): Promise<string> {
  return sign(mercure === undefined ? claims : { mercure, ...claims }, options);
}

/** An RFC 9068 access token (`typ: at+jwt`) with Mercure authorization details. */
export function accessToken(
  grants: { publish?: Matcher[]; subscribe?: Matcher[]; details?: unknown },
  claims: JWTPayload = {},
  options: SignOptions = {},
): Promise<string> {
  const details: unknown[] = [];
  if (grants.publish) details.push({ type: 'https://mercure.rocks/authorization-detail', actions: ['publish'], topics: grants.publish });
  if (grants.subscribe) details.push({ type: 'https://mercure.rocks/authorization-detail', actions: ['subscribe'], topics: grants.subscribe });
  const now = Math.floor(Date.now() / 1000);
  return sign(
    {
      iss: CONFORMANCE_ISSUER,
      aud: CONFORMANCE_AUDIENCE,
      exp: now + 3600,
      authorization_details: grants.details ?? details,
      ...claims,
    },
    { ...options, header: { typ: 'at+jwt', ...options.header } },
  );
}

/** POSTs a Mercure update form and returns status, body and headers. */
export async function mercurePublish(
  hubUrl: string,
  fields: [string, string][],
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${hubUrl}/.well-known/mercure`, { method: 'POST', body: new URLSearchParams(fields), headers });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

/** The Mercure subscription URL for the given query parameters. */
export function mercureUrl(hubUrl: string, params: [string, string][]): string {
  const url = new URL('/.well-known/mercure', hubUrl);
  for (const [name, value] of params) url.searchParams.append(name, value);
  return url.href;
}
