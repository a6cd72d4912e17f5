/**
 * `sse-relay/client`: subscribe to and publish on an sse-relay hub from Node 20+ or a browser.
 * Uses only `fetch`, `AbortController`, `TextDecoder` and eventsource-parser.
 */
export { subscribe } from './subscribe.js';
export type { OpenInfo, RelayEvent, RetryInfo, SubscribeOptions, Subscription } from './subscribe.js';
export { MAX_BATCH_MESSAGES, publish, publishMany } from './publish.js';
export type { BatchMessage, PublishManyOptions, PublishOptions, PublishResult } from './publish.js';
export type { ReconnectOptions } from './reconnect.js';
export type { HeadersOption } from './endpoints.js';
export { CLIENT_ERROR_CODES, RelayClientError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { diagnose } from './diagnose.js';
export type { DiagnoseFinding, DiagnoseOptions, DiagnoseReport } from './diagnose.js';
