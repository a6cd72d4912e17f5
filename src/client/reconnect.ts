/** How a subscription waits between connection attempts. */
export interface ReconnectOptions {
  /**
   * Delay before the first reconnection attempt, in ms, until the hub sends its own `retry:`
   * hint (which then replaces it). Default 500.
   */
  initialDelayMs?: number;
  /** Upper bound of the delay as it doubles after each failed attempt, in ms. Default 30000. */
  maxDelayMs?: number;
}

export const DEFAULT_INITIAL_DELAY_MS = 500;
export const DEFAULT_MAX_DELAY_MS = 30_000;

/**
 * Delay before attempt `attempt` (0 for the first reconnection after a drop): the base doubled
 * per failed attempt, capped, with "equal jitter" (a uniform draw in [delay/2, delay]) so that
 * subscribers dropped together by a restarting hub do not all come back in the same instant.
 * `atLeastMs` (a `Retry-After` header) raises the result above the cap when the hub asks.
 */
export function reconnectDelay(baseMs: number, maxMs: number, attempt: number, atLeastMs = 0): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.round(Math.max(jittered, atLeastMs));
}

/** `Retry-After` in ms (delta-seconds or HTTP date), or 0 when absent or unparsable. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null) return 0;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? 0 : Math.max(0, date - now);
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts (never rejects). The timer and the
 * listener are both removed either way, so nothing keeps the process alive after a close.
 */
export function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
