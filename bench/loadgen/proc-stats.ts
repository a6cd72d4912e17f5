/**
 * CPU time and resident memory of a server's processes and their children (nginx's master and
 * worker; two hubs and their redis-server) from /proc, so the figures come from the kernel and
 * not from the server's own report.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`: 100 on Linux). */
const CLOCK_TICKS = 100;

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  return processTrees([pid]);
}

/** Every one of `pids` and all their descendants that are alive now, each once. */
export function processTrees(pids: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const ppid = Number(stat[1]);
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(Number(entry));
  }
  const tree = new Set<number>();
  const todo = [...pids];
  while (todo.length > 0) {
    const next = todo.pop()!;
    if (tree.has(next)) continue;
    tree.add(next);
    todo.push(...(children.get(next) ?? []));
  }
  return [...tree];
}

/** User plus system CPU time of the processes, in microseconds (10 ms resolution). */
export function cpuMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    // Fields after the command: state(0) ppid(1) ... utime(11) stime(12).
    if (stat) ticks += Number(stat[11]) + Number(stat[12]);
  }
  return (ticks * 1_000_000) / CLOCK_TICKS;
}

/** Resident set size of the processes, in bytes (VmRSS). */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (match) kb += Number(match[1]);
    } catch {
      // The process ended.
    }
  }
  return kb * 1024;
}

/** The fields of /proc/<pid>/stat after the parenthesised command name; undefined when gone. */
function readStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Busy and total time of one CPU from /proc/stat, in ticks (busy includes irq and softirq). */
export function coreTicks(cpu: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'latin1')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return { busy: 0, total: 0 };
  // user nice system idle iowait irq softirq steal guest guest_nice
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Time the processes' main threads were ready to run but waited for a CPU (second field of
 * /proc/<pid>/schedstat), in nanoseconds: how long other work held them off their core. Main
 * threads only: Node's helper threads (GC, libuv pool) are pinned to the same core and wait
 * for the main thread, which is no contention from outside.
 */
export function runQueueWaitNs(pids: readonly number[]): number {
  let ns = 0;
  for (const pid of pids) ns += mainThreadWaitNs(pid);
  return ns;
}

function mainThreadWaitNs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').trim().split(' ');
    return Number(fields[1] ?? 0);
  } catch {
    return 0; // The process ended.
  }
}

/** CPU time (µs) and main-thread run-queue wait (ns) of each process, at one moment. */
export interface ProcessSample {
  readonly cpuUs: readonly number[];
  readonly waitNs: readonly number[];
}

export function sampleProcesses(pids: readonly number[]): ProcessSample {
  return { cpuUs: pids.map((pid) => cpuMicros([pid])), waitNs: pids.map(mainThreadWaitNs) };
}

/**
 * How long work outside the set held the processes off their core between two samples (of
 * the same pids), in ns: a lower bound. Processes of one server pinned to one core (two hubs
 * and their redis-server) also wait for each other, which is no contention from outside. While
 * process i waited, either a sibling ran (at most the siblings' CPU time in all) or something
 * else did: so i's wait minus its siblings' CPU time is outside work, and the largest such
 * figure over the set is the bound. With one busy process (a Node server, nginx's worker beside
 * an idle master) it is that process's wait, as before.
 */
export function heldOffNs(before: ProcessSample, after: ProcessSample): number {
  const cpuNs = after.cpuUs.map((us, i) => (us - before.cpuUs[i]!) * 1000);
  const total = cpuNs.reduce((a, b) => a + b, 0);
  let bound = 0;
  for (let i = 0; i < cpuNs.length; i++) {
    const waited = after.waitNs[i]! - before.waitNs[i]!;
    bound = Math.max(bound, waited - (total - cpuNs[i]!));
  }
  return bound;
}
