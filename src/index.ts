/**
 * The package's entry point (`import { startRelay } from 'sse-relay'`): start a hub in your
 * own process with the options of `sse-relay serve`, or build one from its parts. The client
 * SDK is `sse-relay/client`.
 */
export { startRelay, openRelayCore, type RelayCore, type RelayParts } from './relay.js';
export type { RelayServer, ShutdownOutcome } from './http/server.js';
export { loadServeOptions, serveOptions, type OptionSources } from './config/load.js';
export { DEFAULT_SERVE_OPTIONS, type ServeOptions } from './config/options.js';
export { Hub, type HubOptions } from './hub/hub.js';
export type { Subscription, SubscriberSink, SubscriptionSelector } from './hub/subscription.js';
export type { Message, MessageDraft } from './hub/message.js';
export { ERROR_CODES, RelayError, isRelayError, type ErrorCode } from './hub/errors.js';
export type { Cursor, ReadQuery, RetentionOptions, Store, TopicStats } from './store/store.js';
export { createStore } from './store/create-store.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export { SqliteStore, type SqliteStoreOptions } from './store/sqlite-store.js';
export { RedisStore, type RedisStoreOptions } from './store/redis/redis-store.js';
