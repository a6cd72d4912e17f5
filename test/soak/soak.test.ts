/**
 * The short soak of the test suite (about 45 s): the same run as `npm run soak`, smaller
 * and with looser plateau margins (a short run has little time to show its plateau).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSoak } from './soak.js';

describe('soak (short): churn, steady publishing, slow consumers', () => {
  it('keeps memory flat, leaks no descriptor or handle, delivers everything to long-lived subscribers', async (t) => {
    const report = await runSoak({
      durationMs: 40_000,
      subscribers: 800,
      lifetimeMs: [500, 6000],
      publishRate: 100,
      slowConsumers: 3,
      sampleIntervalMs: 2000,
      warmupFraction: 0.25,
      heapGrowth: { ratio: 1.3, bytes: 12 * 1024 * 1024 },
      rssGrowth: { ratio: 1.3, bytes: 32 * 1024 * 1024 },
    });
    t.diagnostic(`${report.totals.connects} subscriptions opened, ${report.totals.published} publishes, ${report.final.dropped} slow consumers evicted`);
    for (const c of report.checks) t.diagnostic(`${c.ok ? 'ok' : 'FAIL'} ${c.name}: ${c.detail}`);
    assert.deepEqual(report.checks.filter((c) => !c.ok), []);
  });
});
