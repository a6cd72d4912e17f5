import { RelayError } from '../../hub/errors.js';
import type { AckOutcome, ConsumerLog, ConsumerState } from '../consumer-log.js';
import type { Message } from '../../hub/message.js';

/**
 * Acknowledged consumers on a sharded Redis store: refused. Redis holds a consumer's messages
 * in the read loop (consumers.ts), and with node-local interest no node may be reading a
 * topic's shard when a message arrives; holding in the append script instead is the fix, not
 * built yet (docs/scaling.md). Every request that names a consumer gets a clear 501; the
 * background sweeps find nothing.
 */
export class UnsupportedConsumerLog implements ConsumerLog {
  attach(): Promise<ConsumerState> {
    return Promise.reject(unsupported());
  }

  get(): Promise<ConsumerState | undefined> {
    return Promise.reject(unsupported());
  }

  list(): Promise<ConsumerState[]> {
    return Promise.reject(unsupported());
  }

  readPending(): Promise<Message[]> {
    return Promise.reject(unsupported());
  }

  ack(): Promise<AckOutcome> {
    return Promise.reject(unsupported());
  }

  touch(): Promise<void> {
    return Promise.resolve();
  }

  expire(): Promise<number> {
    return Promise.resolve(0);
  }
}

function unsupported(): RelayError {
  return new RelayError('HUB_ERR_CONSUMER_UNSUPPORTED');
}
