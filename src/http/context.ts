import type { Authorizer } from '../auth/authorizer.js';
import type { ExpiryWatch } from '../auth/expiry.js';
import type { ServeOptions } from '../config/options.js';
import type { Hub } from '../hub/hub.js';
import type { SseCloseListener, SseStream } from '../sse/stream.js';
import type { Ticker } from '../sse/ticker.js';

/** What protocol adapters get from the server: the hub, the options, the shared tickers. */
export interface AdapterContext {
  readonly hub: Hub;
  readonly options: ServeOptions;
  /** One timer writing heartbeats to every open stream. */
  readonly heartbeats: Ticker<SseStream>;
  /** Streams that are not hub subscriptions (the demo loop), ended on shutdown. */
  readonly extraStreams: Set<SseStream>;
  /** Who may publish and subscribe (both APIs apply the same policy). */
  readonly authorizer: Authorizer;
  /** Ends subscriptions when their access token expires (one timer for all). */
  readonly tokenExpiry: ExpiryWatch;
  /**
   * Releases what an ended event stream held (its subscription, heartbeat, expiry watch): one
   * function for every stream (see SseCloseListener).
   */
  readonly releaseStream: SseCloseListener;
}
