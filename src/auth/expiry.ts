import type { SseStream } from '../sse/stream.js';
import { Ticker } from '../sse/ticker.js';

/** How often expiries are checked: a subscription outlives its token by at most this. */
const CHECK_INTERVAL_MS = 1000;

/**
 * Ends event streams whose access token has expired, so a revoked-by-expiry subscriber stops
 * receiving private updates (it reconnects, and a fresh token is checked). One shared timer
 * for all streams, only running while some stream has an expiring token.
 */
export class ExpiryWatch {
  private readonly deadlines = new Map<SseStream, number>();
  private readonly ticker = new Ticker<SseStream>(CHECK_INTERVAL_MS, (stream) => this.check(stream));

  /** Watches `stream` until `expiresAt` (ms since the epoch); undefined: never expires. */
  add(stream: SseStream, expiresAt: number | undefined): void {
    if (expiresAt === undefined) return;
    this.deadlines.set(stream, expiresAt);
    this.ticker.add(stream);
  }

  delete(stream: SseStream): void {
    if (this.deadlines.delete(stream)) this.ticker.delete(stream);
  }

  stop(): void {
    this.ticker.stop();
    this.deadlines.clear();
  }

  private check(stream: SseStream): void {
    const deadline = this.deadlines.get(stream);
    if (deadline === undefined || Date.now() < deadline) return;
    this.delete(stream);
    stream.comment('closed: access token expired');
    stream.close('error');
  }
}
