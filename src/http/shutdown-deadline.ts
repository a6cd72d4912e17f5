import type { Server } from 'node:http';

/** A running shutdown deadline (see {@link armShutdownDeadline}). */
export interface ShutdownDeadline {
  /** True once the deadline passed and the connections still open were cut. */
  readonly passed: boolean;
  /** Stops the timer (the drain finished in time). */
  cancel(): void;
}

/**
 * Bounds a graceful drain: after `ms`, every connection `server` still has is destroyed,
 * whatever it is doing. `server.close()` alone waits for each request in flight, so one client
 * that sends half a body and goes quiet holds the process; and not just until the request
 * timeout, since `close()` also stops the timer that enforces it (Node checks request and
 * header timeouts on `connectionsCheckingInterval`, which closing clears). `onPassed` runs just
 * before the connections are cut, while they can still be counted.
 */
export function armShutdownDeadline(server: Server, ms: number, onPassed: () => void): ShutdownDeadline {
  let passed = false;
  const timer = setTimeout(() => {
    passed = true;
    onPassed();
    server.closeAllConnections();
  }, ms);
  // The drain itself keeps the process alive while there is anything left to wait for.
  timer.unref();
  return {
    get passed() {
      return passed;
    },
    cancel: () => clearTimeout(timer),
  };
}
