/**
 * `npm run soak [-- --minutes 10] [--subscribers 2000] [--rate 200] [--slow 5] [--out file.json]`:
 * the churn-and-soak run of test/soak/soak.ts against a hub process on loopback. Prints a
 * sample table as it goes and the checks at the end; exits 1 when a check fails.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runSoak } from './soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    subscribers: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '200' },
    slow: { type: 'string', default: '5' },
    interval: { type: 'string', default: '5' },
    out: { type: 'string' },
  },
});

// Exit handlers (which stop the hub process) run on Ctrl-C and SIGTERM too.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

const minutes = Number(values.minutes);
if (!(minutes > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
console.log(`soak: ${minutes} min, ${values.subscribers} churning subscribers, ${values.rate} publishes/s, ${values.slow} slow consumers`);
const report = await runSoak({
  durationMs: minutes * 60_000,
  subscribers: Number(values.subscribers),
  publishRate: Number(values.rate),
  slowConsumers: Number(values.slow),
  sampleIntervalMs: Number(values.interval) * 1000,
  log: (line) => console.log(line),
});
console.log(`\nchurn: ${report.totals.connects} subscriptions opened, ${report.totals.published} publishes acknowledged, ${report.totals.checkerMessages} messages checked by long-lived subscribers`);
for (const c of report.checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
if (values.out) await writeFile(values.out, JSON.stringify(report, null, 2));
console.log(report.ok ? '\nsoak passed' : '\nsoak FAILED');
process.exitCode = report.ok ? 0 : 1;
