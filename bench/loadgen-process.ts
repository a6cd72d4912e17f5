/**
 * Runs one phase in a load-generator process of its own (`loadgen/main.js`), pinned to the
 * load generator's core, and reads back its result: the peer phases and the cluster scenario
 * drive their servers the same way.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PhasePlan, PhaseResult } from './loadgen/plan.js';

const LOADGEN = fileURLToPath(new URL('./loadgen/main.js', import.meta.url));

export interface LoadgenProcessOptions {
  /** CPU list for `taskset -c`; undefined: not pinned. */
  readonly cpu: string | undefined;
  /** Nice level; undefined: inherited. */
  readonly nice: number | undefined;
}

/** The time a phase's steps take, plus room for opening subscriptions and start-up. */
export function phaseBudgetMs(plan: Pick<PhasePlan, 'steps'>): number {
  return plan.steps.reduce((sum, s) => sum + s.warmupMs + s.durationMs + s.drainTimeoutMs, 0) + 180_000;
}

/** Writes the plan to `workDir/plan.json`, runs it, and resolves with the phase's result. */
export function runLoadgenPhase(plan: PhasePlan, workDir: string, options: LoadgenProcessOptions): Promise<PhaseResult> {
  const planFile = path.join(workDir, 'plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  return runLoadgen(planFile, phaseBudgetMs(plan), options);
}

function runLoadgen(planFile: string, timeoutMs: number, options: LoadgenProcessOptions): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const niceness = options.nice === undefined ? [] : ['nice', '-n', String(options.nice)];
    const command = [...niceness, ...(options.cpu === undefined ? [] : ['taskset', '-c', options.cpu]), process.execPath, LOADGEN, planFile];
    // Soft limit of open files up to the hard one: 10,000 subscriptions need more than 1,024.
    const child = spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...command], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as PhaseResult);
      else reject(new Error(`load generator ended with ${signal ?? code}${signal === 'SIGKILL' ? ' (timed out)' : ''}`));
    });
  });
}
