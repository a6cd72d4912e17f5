/**
 * Time Redis spent inside each command (`INFO commandstats`: calls and µs per command, its own
 * clock), summed over the masters: which part of the masters' CPU is the append scripts and
 * which the nodes' reads. The time of writing replies to sockets is not in it (the process
 * CPU from /proc is the total).
 */

/** One command's calls and in-command time, µs. */
export interface CommandCost {
  readonly command: string;
  readonly calls: number;
  readonly usec: number;
}

/** Parses `INFO commandstats` (`cmdstat_<name>:calls=N,usec=N,…` lines). */
export function parseCommandStats(info: string): Map<string, CommandCost> {
  const out = new Map<string, CommandCost>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(match[1]!, { command: match[1]!, calls: Number(match[2]), usec: Number(match[3]) });
  }
  return out;
}

/** Sums per-master figures into one map. */
export function sumCommandStats(perMaster: readonly ReadonlyMap<string, CommandCost>[]): Map<string, CommandCost> {
  const out = new Map<string, CommandCost>();
  for (const stats of perMaster) {
    for (const c of stats.values()) {
      const seen = out.get(c.command);
      out.set(c.command, { command: c.command, calls: (seen?.calls ?? 0) + c.calls, usec: (seen?.usec ?? 0) + c.usec });
    }
  }
  return out;
}

/** What happened between two samples, most time first; commands not called are left out. */
export function commandStatsBetween(before: ReadonlyMap<string, CommandCost>, after: ReadonlyMap<string, CommandCost>): CommandCost[] {
  const out: CommandCost[] = [];
  for (const c of after.values()) {
    const b = before.get(c.command);
    const calls = c.calls - (b?.calls ?? 0);
    if (calls > 0) out.push({ command: c.command, calls, usec: c.usec - (b?.usec ?? 0) });
  }
  return out.sort((x, y) => y.usec - x.usec);
}
