import { tokenHeaders } from './token.js';

/** What the console adapts to, read from the hub's protected resource metadata (RFC 9728). */
export interface HubCapabilities {
  /** The hub verifies tokens (it has keys); false: an open hub, which ignores them. */
  readonly usesTokens: boolean;
  /** Started with `--subscriptions`: the active subscriptions API and events exist. */
  readonly subscriptions: boolean;
}

const METADATA_PATH = '/.well-known/oauth-protected-resource/.well-known/mercure';

/**
 * Reads the metadata document once: `bearer_methods_supported` is empty on an open hub, and
 * `mercure_subscriptions` is present with `--subscriptions`. Unreadable: assume the most
 * restrictive hub (tokens, no subscriptions), so the page asks for a token rather than fails.
 */
export async function readCapabilities(origin: string): Promise<HubCapabilities> {
  try {
    const answer = await fetch(new URL(METADATA_PATH, origin), { headers: tokenHeaders() });
    const document = (await answer.json()) as { bearer_methods_supported?: unknown[]; mercure_subscriptions?: boolean };
    return { usesTokens: (document.bearer_methods_supported?.length ?? 1) > 0, subscriptions: document.mercure_subscriptions === true };
  } catch {
    return { usesTokens: true, subscriptions: false };
  }
}
