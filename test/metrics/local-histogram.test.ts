import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { LocalHistogram } from '../../src/metrics/local-histogram.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1, 1];
const VALUES = [0, 0.0004, 0.0005, 0.0007, 0.003, 0.02, 0.5, 1, 3, 1e-9, 0.00999];

/** Two registries, one with prom-client's histogram and one with ours, fed the same observations. */
function both(labelNames: string[]): { theirs: Registry; ours: Registry; observe: (labels: string[], value: number) => void } {
  const theirs = new Registry();
  const ours = new Registry();
  const options = { name: 'test_seconds', help: 'A "test" histogram\nwith two lines.', buckets: BUCKETS, labelNames };
  const reference = new Histogram({ ...options, registers: [theirs] });
  const local = new LocalHistogram({ ...options, registers: [ours] });
  return {
    theirs,
    ours,
    observe: (labels, value) => {
      if (labels.length === 0) reference.observe(value);
      else reference.labels(...labels).observe(value);
      local.labels(...labels).observe(value);
    },
  };
}

describe('LocalHistogram', () => {
  it('is exposed exactly as prom-client exposes its own Histogram, without labels, from zero on', async () => {
    const { theirs, ours, observe } = both([]);
    assert.equal(await ours.metrics(), await theirs.metrics());
    for (const value of VALUES) observe([], value);
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.deepEqual(await ours.getMetricsAsJSON(), (await theirs.getMetricsAsJSON()).map(withoutExemplars));
  });

  it('is exposed exactly as prom-client exposes its own Histogram, with labels, series in first-seen order', async () => {
    const { theirs, ours, observe } = both(['route', 'method', 'status']);
    VALUES.forEach((value, i) => observe(['/messages/:id', i % 3 === 0 ? 'GET' : 'POST', i % 2 === 0 ? '200' : 'quote"back\\slash'], value));
    const text = await ours.metrics();
    assert.equal(text, await theirs.metrics());
    assert.match(text, /test_seconds_bucket\{le="\+Inf",route="\/messages\/:id",method="POST",status="200"\} \d+/);
    assert.deepEqual(await ours.getMetricsAsJSON(), (await theirs.getMetricsAsJSON()).map(withoutExemplars));
  });

  it('is read as OpenMetrics too', async () => {
    const { theirs, ours, observe } = both(['route']);
    theirs.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    for (const value of VALUES) observe(['a'], value);
    assert.equal(await ours.metrics(), await theirs.metrics());
  });
});

/** prom-client's JSON samples carry `exemplar` and `sharedLabels` keys our histogram has no use for. */
function withoutExemplars(metric: unknown): unknown {
  const m = metric as { values: Record<string, unknown>[] };
  return { ...m, values: m.values.map(({ exemplar: _e, sharedLabels: _s, ...rest }) => rest) };
}
