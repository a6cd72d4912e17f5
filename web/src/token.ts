import { byId } from './page.js';

/**
 * The `Authorization` header from the token field, read at every request so a token pasted
 * later applies to the next connection or publish (the SDK calls it before each reconnection).
 */
export function tokenHeaders(): Record<string, string> {
  const token = byId<HTMLInputElement>('token').value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}
