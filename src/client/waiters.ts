import type { RelayEvent } from './subscribe.js';

/** A `next()` call of a subscription's iterator, waiting for an event. */
export type Waiter = { resolve: (result: IteratorResult<RelayEvent>) => void; reject: (error: unknown) => void };

/**
 * Settles the waiting `next()` calls of a subscription that ended: the first one rejects with
 * `failure` when there is one still to report, the others (and all of them otherwise) see the
 * end. Returns true when it reported the failure.
 */
export function endWaiters(waiters: readonly Waiter[], failure: unknown): boolean {
  let reported = false;
  for (const waiter of waiters) {
    if (failure !== undefined && !reported) {
      reported = true;
      waiter.reject(failure);
    } else {
      waiter.resolve({ done: true, value: undefined });
    }
  }
  return reported;
}

/** The iterator a subscription hands out: `next` reads its queue, `return` (a `break`) closes it. */
export function subscriptionIterator(next: () => Promise<IteratorResult<RelayEvent>>, close: () => void): AsyncIterator<RelayEvent> {
  return {
    next,
    return: () => {
      close();
      return Promise.resolve({ done: true, value: undefined });
    },
  };
}
