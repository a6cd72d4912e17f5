import { byId } from './page.js';

const REFRESH_MS = 2000;

/** The header's live figures (readiness, subscribers, publish rate, store), from `/stats`. */
export function showHubFigures(origin: string): void {
  let lastPublished: { count: number; at: number } | undefined;
  const refresh = async (): Promise<void> => {
    try {
      const res = await fetch(new URL('/stats', origin), { cache: 'no-store' });
      const stats = (await res.json()) as { subscribers: number; published: number; store: string; ready: boolean };
      byId('hub-state').textContent = stats.ready ? 'ready' : 'not ready';
      byId('stat-subscribers').textContent = String(stats.subscribers);
      byId('stat-store').textContent = stats.store;
      const now = performance.now();
      if (lastPublished && stats.published >= lastPublished.count) {
        const rate = (stats.published - lastPublished.count) / ((now - lastPublished.at) / 1000);
        byId('stat-rate').textContent = rate.toFixed(rate < 10 ? 1 : 0);
      }
      lastPublished = { count: stats.published, at: now };
    } catch {
      byId('hub-state').textContent = 'unreachable';
      lastPublished = undefined;
    }
  };
  void refresh();
  setInterval(() => void refresh(), REFRESH_MS);
}
