import type { FastifyBaseLogger } from 'fastify';

/** Lines of one kind logged in full per window; past that they are counted. */
export const LINES_PER_WINDOW = 100;
/** The window, in milliseconds. */
export const WINDOW_MS = 10_000;

type Level = 'info' | 'error';

interface Window {
  readonly startedAt: number;
  logged: number;
  suppressed: number;
  /** Where the summary goes: the logger of the first line left out. */
  log?: FastifyBaseLogger;
  level: Level;
}

/**
 * Caps the log lines a client can cause one per request (a refused token, a request failed by
 * a store outage): at most {@link LINES_PER_WINDOW} of each kind per {@link WINDOW_MS}, then one
 * summary line at the window's end saying how many were left out, so a flood of bad requests
 * cannot fill the disk or drown the lines that explain it. Per process: the hub's loggers are
 * per request (children of one), so the kind is the key, not the logger.
 */
export class LogFloodGuard {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly linesPerWindow = LINES_PER_WINDOW,
    private readonly windowMs = WINDOW_MS,
  ) {}

  /** Logs `message` at `level` unless its kind already used up this window. */
  log(log: FastifyBaseLogger, level: Level, fields: object, message: string): void {
    const now = Date.now();
    let window = this.windows.get(message);
    if (window === undefined || now - window.startedAt >= this.windowMs) {
      if (window !== undefined) this.summarize(message, window);
      window = { startedAt: now, logged: 0, suppressed: 0, level };
      this.windows.set(message, window);
    }
    if (window.logged < this.linesPerWindow) {
      window.logged++;
      log[level](fields, message);
      return;
    }
    if (window.suppressed++ === 0) {
      window.log = log;
      const current = window;
      setTimeout(() => {
        if (this.windows.get(message) === current) this.windows.delete(message);
        this.summarize(message, current);
      }, this.windowMs - (now - window.startedAt)).unref();
    }
  }

  private summarize(message: string, window: Window): void {
    if (window.suppressed === 0 || window.log === undefined) return;
    const count = window.suppressed;
    window.suppressed = 0;
    window.log[window.level]({ suppressed: count, windowMs: this.windowMs, limit: this.linesPerWindow }, `${message}: ${count} more lines like this were not logged in the last ${this.windowMs / 1000} s`);
  }
}
