/**
 * Hiding secrets in text meant for people: logs, error messages, `/stats`. Store URLs carry
 * passwords (`redis://:password@host`) and JWKS URLs may carry credentials or tokens; keys and
 * tokens are never shown at all.
 */

/** What a hidden secret is replaced with. */
export const REDACTED = '***';

/** Query parameters whose value is a credential (`?password=`, `?token=`, `?api_key=`, ...). */
const SECRET_PARAMETER = /pass|secret|token|key|auth|cred/i;

/**
 * `redis://user:password@host:6379/0` → `redis://***@host:6379/0`, and the values of query
 * parameters named like credentials → `***`. Works on text that is not a valid URL too (the
 * value of a rejected option): everything between `://` and the last `@` is hidden then, which
 * may hide more than the credentials but never less. Text without `://` comes back unchanged.
 */
export function redactUrl(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || !text.includes('://')) return redactUnparsed(text);
  if (url.username !== '' || url.password !== '') {
    url.username = REDACTED;
    url.password = '';
  }
  for (const name of new Set(url.searchParams.keys())) {
    if (SECRET_PARAMETER.test(name)) url.searchParams.set(name, REDACTED);
  }
  return url.href;
}

function redactUnparsed(text: string): string {
  const authority = text.indexOf('://');
  if (authority < 0) return text;
  const at = text.lastIndexOf('@');
  const start = authority + 3;
  const withoutUserinfo = at < start ? text : `${text.slice(0, start)}${REDACTED}${text.slice(at)}`;
  // Query values are cut after the name; there is no parser to trust with the rest.
  return withoutUserinfo.replace(/([?&][^=&#]*=)[^&#]*/g, (whole, name: string) => (SECRET_PARAMETER.test(name) ? `${name}${REDACTED}` : whole));
}

/** `message` with every occurrence of `secret` replaced, for errors that quote a secret's value. */
export function redactValue(message: string, secret: string): string {
  return secret.length === 0 ? message : message.split(secret).join(REDACTED);
}
