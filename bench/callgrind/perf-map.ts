import { existsSync, readFileSync } from 'node:fs';

/** One code object V8 announced in its perf map: where it starts, its length, its name. */
interface CodeRange {
  readonly start: number;
  readonly end: number;
  readonly name: string;
  /** Its line in the map: a later line describes newer code. */
  readonly order: number;
}

/**
 * Names of the code V8 generated at run time, from the `/tmp/perf-<pid>.map` that
 * `node --perf-basic-prof` writes (one `start size name` line per code object, hex numbers).
 * callgrind only knows such code by address: this turns `0x000000000d044dc0` back into the
 * JavaScript function it belongs to. Code can be moved or freed and its range reused: of the
 * lines that cover an address, the last one wins.
 */
export class PerfMap {
  private constructor(
    /** By start address. */
    private readonly ranges: readonly CodeRange[],
    /** The longest range: how far before an address a range covering it may start. */
    private readonly longest: number,
  ) {}

  /** The map of process `pid`; an empty one when it wrote none. */
  static ofProcess(pid: number): PerfMap {
    const file = `/tmp/perf-${pid}.map`;
    if (!existsSync(file)) return new PerfMap([], 0);
    const ranges: CodeRange[] = [];
    let longest = 0;
    for (const line of readFileSync(file, 'latin1').split('\n')) {
      const first = line.indexOf(' ');
      const second = line.indexOf(' ', first + 1);
      if (first < 0 || second < 0) continue;
      const start = parseInt(line.slice(0, first), 16);
      const size = parseInt(line.slice(first + 1, second), 16);
      if (!Number.isFinite(start) || !Number.isFinite(size)) continue;
      ranges.push({ start, end: start + size, name: jsName(line.slice(second + 1)), order: ranges.length });
      if (size > longest) longest = size;
    }
    return new PerfMap(ranges.sort((a, b) => a.start - b.start || a.order - b.order), longest);
  }

  /** The name of the newest code covering `address`; undefined when none does. */
  nameAt(address: number): string | undefined {
    const ranges = this.ranges;
    let low = 0;
    let high = ranges.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (ranges[middle]!.start <= address) low = middle + 1;
      else high = middle - 1;
    }
    let newest: CodeRange | undefined;
    for (let i = high; i >= 0 && ranges[i]!.start > address - this.longest - 1; i--) {
      const range = ranges[i]!;
      if (address < range.end && (newest === undefined || range.order > newest.order)) newest = range;
    }
    return newest?.name;
  }
}

/**
 * `JS:*name file:line:col` → `name file:line:col`: the tier marker (`~` interpreted,
 * `^` Sparkplug, `+` Maglev, `*` TurboFan) is dropped so that one function is one line
 * whatever tier ran it, and this build's `file:///…/dist/` prefix is cut.
 */
function jsName(raw: string): string {
  let name = raw.startsWith('JS:') ? raw.slice(3) : raw;
  if (name[0] === '~' || name[0] === '^' || name[0] === '+' || name[0] === '*') name = name.slice(1);
  return name.replace(/file:\/\/\/\S*?\/dist\//g, '');
}
