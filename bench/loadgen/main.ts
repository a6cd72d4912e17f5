/**
 * The load generator's process: `node dist/bench/loadgen/main.js <plan.json>`. Runs one phase
 * (see plan.ts), prints progress on stderr and the result as one JSON line on stdout. The bench
 * starts it pinned to its own core (`taskset -c 1`), apart from the server under test.
 */
import { readFileSync } from 'node:fs';
import type { PhasePlan } from './plan.js';
import { runPhase } from './runner.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: main.js <plan.json>\n');
  process.exit(2);
}
const plan = JSON.parse(readFileSync(file, 'utf8')) as PhasePlan;
const result = await runPhase(plan, (line) => process.stderr.write(`  ${line}\n`));
process.stdout.write(`${JSON.stringify(result)}\n`);
// Sockets are reset, not drained: leave at once.
process.exit(0);
