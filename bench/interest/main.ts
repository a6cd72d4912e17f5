/**
 * The interest scenario as a process of its own (scenario.ts), so that run.ts can pin it (the
 * publisher) to the load generator's core:
 *
 *   node dist/bench/interest/main.js [--quick] [--duration <s>] [--server-cpu <list>] [--json]
 *
 * Prints its progress on stderr and the tables on stdout; with `--json` the run as one JSON line.
 */
import { renderInterestMarkdown } from './report.js';
import { runInterestScenario } from './scenario.js';

let quick = false;
let json = false;
let windowMs: number | undefined;
let cpu: string | undefined;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === '--quick') quick = true;
  else if (a === '--json') json = true;
  else if (a === '--duration') {
    const seconds = Number(argv[++i]);
    if (!(seconds > 0)) throw new Error('--duration takes a number of seconds');
    windowMs = seconds * 1000;
  } else if (a === '--server-cpu') cpu = argv[++i];
  else throw new Error(`unknown argument ${a}`);
}

const started = Date.now();
const run = await runInterestScenario({
  quick,
  windowMs,
  server: { cpu, nice: undefined },
  log: (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`),
});
process.stdout.write(json ? `${JSON.stringify(run)}\n` : renderInterestMarkdown(run));
