import { readFileSync } from 'node:fs';
import type { PerfMap } from './perf-map.js';

/** What one function cost in a callgrind dump, in instructions (Ir). */
export interface FunctionCost {
  readonly name: string;
  /** True for JavaScript (V8's generated code named through the perf map). */
  readonly javascript: boolean;
  /** Instructions executed in the function itself. */
  self: number;
  /** Its own and those of everything it called (recursion counted once per call edge, as callgrind_annotate does). */
  inclusive: number;
}

/** One thread's dump: its total and its functions. */
export interface ThreadProfile {
  readonly thread: number;
  readonly total: number;
  readonly functions: ReadonlyMap<string, FunctionCost>;
}

/** Code that callgrind knows only by address (V8's generated code), with an optional recursion suffix. */
const ADDRESS_NAME = /^0x([0-9a-f]+)(?:'\d+)?$/;
/** callgrind's suffix for a function's deeper recursion levels (`--separate-recs`). */
const RECURSION_SUFFIX = /'\d+$/;

/**
 * Reads one callgrind output file (`--dump-instr=no`, event `Ir`) into per-function self and
 * inclusive costs. Functions are merged by name once addresses are resolved through `perfMap`
 * and recursion suffixes dropped, so the several basic blocks of one JIT-compiled JavaScript
 * function, and its tiers, make one line; a call between two parts of one function is not
 * counted as a call.
 *
 * Written here rather than read from `callgrind_annotate`, which has no way to name V8's code.
 */
export function readCallgrindFile(file: string, perfMap: PerfMap): ThreadProfile {
  const text = readFileSync(file, 'utf8');
  const names = new Map<string, string>();
  const resolved = new Map<string, string>();
  const javascript = new Set<string>();
  const functions = new Map<string, FunctionCost>();
  let thread = 1;
  let summary: number | undefined;

  const nameOf = (value: string): string => {
    // `(id) name` defines a compressed name, `(id)` refers to one.
    const match = /^\((\d+)\)(?: (.*))?$/.exec(value);
    if (!match) return value;
    if (match[2] !== undefined) names.set(match[1]!, match[2]);
    return names.get(match[1]!) ?? value;
  };
  const resolve = (raw: string): string => {
    let name = resolved.get(raw);
    if (name !== undefined) return name;
    const address = ADDRESS_NAME.exec(raw);
    const mapped = address ? perfMap.nameAt(parseInt(address[1]!, 16)) : undefined;
    if (mapped !== undefined) {
      name = mapped;
      // V8's own builtins are in the map too, under `Builtin:`; callgrind names them anyway.
      if (!mapped.startsWith('Builtin:') && !mapped.startsWith('RegExp:')) javascript.add(name);
    } else name = address ? `${raw.replace(RECURSION_SUFFIX, '')} (no symbol: generated or stripped code)` : raw.replace(RECURSION_SUFFIX, '');
    resolved.set(raw, name);
    return name;
  };
  const costOf = (name: string): FunctionCost => {
    let cost = functions.get(name);
    if (!cost) functions.set(name, (cost = { name, javascript: javascript.has(name), self: 0, inclusive: 0 }));
    return cost;
  };

  let current: FunctionCost | undefined;
  let callee: string | undefined;
  let callCostNext = false;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const c = line.charCodeAt(0);
    // Cost lines start with a position: a digit, `+`, `-` or `*`.
    if ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2a) {
      if (!current) continue;
      const space = line.indexOf(' ');
      const ir = space < 0 ? 0 : Number(line.slice(space + 1).split(' ', 1)[0]);
      if (callCostNext) {
        callCostNext = false;
        if (callee !== undefined && callee !== current.name) current.inclusive += ir;
      } else {
        current.self += ir;
      }
      continue;
    }
    const equals = line.indexOf('=');
    const key = equals < 0 ? '' : line.slice(0, equals);
    const value = line.slice(equals + 1);
    if (key === 'fn') {
      current = costOf(resolve(nameOf(value)));
    } else if (key === 'cfn') {
      callee = resolve(nameOf(value));
    } else if (key === 'calls') {
      callCostNext = true;
    } else if (key === 'ob' || key === 'fl' || key === 'fi' || key === 'fe' || key === 'cob' || key === 'cfi' || key === 'cfl') {
      nameOf(value);
    } else if (line.startsWith('thread: ')) {
      thread = Number(line.slice(8));
    } else if (line.startsWith('summary: ')) {
      summary = Number(line.slice(9));
    }
  }
  let total = 0;
  for (const cost of functions.values()) {
    cost.inclusive += cost.self;
    total += cost.self;
  }
  return { thread, total: summary ?? total, functions };
}

/** The functions of several threads added together (the whole process). */
export function mergeThreads(profiles: readonly ThreadProfile[]): ThreadProfile {
  const functions = new Map<string, FunctionCost>();
  let total = 0;
  for (const profile of profiles) {
    total += profile.total;
    for (const cost of profile.functions.values()) {
      const merged = functions.get(cost.name);
      if (merged) {
        merged.self += cost.self;
        merged.inclusive += cost.inclusive;
      } else {
        functions.set(cost.name, { ...cost });
      }
    }
  }
  return { thread: 0, total, functions };
}

/** The `count` costliest functions by `by` (only JavaScript ones with `javascriptOnly`). */
export function topFunctions(profile: ThreadProfile, by: 'self' | 'inclusive', count: number, javascriptOnly = false): FunctionCost[] {
  return [...profile.functions.values()]
    .filter((cost) => !javascriptOnly || cost.javascript)
    .sort((a, b) => b[by] - a[by])
    .slice(0, count);
}
