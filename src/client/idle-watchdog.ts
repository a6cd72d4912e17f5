/** Default of `idleTimeoutMs`: three of the hub's default heartbeat intervals (15 s). */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

/**
 * Notices a connection on which nothing arrives any more. A hub (or a NAT, or a proxy) that
 * vanishes without a FIN leaves the socket open forever on this side: no error, no end, just
 * silence. The hub sends heartbeat comments on idle streams, so silence longer than a few
 * heartbeat intervals means the connection is dead, and `onIdle` is called once.
 *
 * `touch()` runs on every chunk read, so it only stores the time; the one timer re-arms itself
 * for the remainder when it fires early, rather than being cleared and set again per chunk.
 * `suspend()` stops counting while the reader does not read on purpose (the application's
 * buffer is full): silence then is ours, not the hub's.
 */
export class IdleWatchdog {
  private lastActivity = Date.now();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private fired = false;
  private stopped = false;

  /** `timeoutMs` 0 disables the watchdog. */
  constructor(
    private readonly timeoutMs: number,
    private readonly onIdle: () => void,
  ) {
    this.arm(timeoutMs);
  }

  /** True once `onIdle` was called. */
  get expired(): boolean {
    return this.fired;
  }

  /** Something arrived: the connection is alive. */
  touch(): void {
    this.lastActivity = Date.now();
  }

  /** Stops counting until {@link resume} (the reader pauses on purpose). */
  suspend(): void {
    this.clear();
  }

  /** Counts again, from now. */
  resume(): void {
    this.lastActivity = Date.now();
    this.arm(this.timeoutMs);
  }

  /** Stops for good (the connection ended). */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private arm(ms: number): void {
    if (this.timeoutMs <= 0 || this.stopped || this.fired || this.timer !== undefined) return;
    this.timer = setTimeout(this.check, ms);
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly check = (): void => {
    this.timer = undefined;
    const idleMs = Date.now() - this.lastActivity;
    if (idleMs < this.timeoutMs) {
      this.arm(this.timeoutMs - idleMs);
      return;
    }
    this.fired = true;
    this.onIdle();
  };
}
