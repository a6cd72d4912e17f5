import type { Authorizer } from '../auth/authorizer.js';
import type { ServeOptions } from '../config/options.js';
import type { Consumers } from '../hub/consumers.js';
import type { Hub } from '../hub/hub.js';
import type { EventStreams } from './event-streams.js';

/** What protocol adapters get from the server: the hub, the options, the shared tickers. */
export interface AdapterContext {
  readonly hub: Hub;
  readonly options: ServeOptions;
  /** Opens event streams and owns them until they end. */
  readonly streams: EventStreams;
  /** Who may publish and subscribe (both APIs apply the same policy). */
  readonly authorizer: Authorizer;
  /** Acknowledged consumers (`?consumer=`). */
  readonly consumers: Consumers;
}
