/**
 * A V8 heap snapshot (`v8.writeHeapSnapshot`) summed by what each node is: objects and closures
 * by constructor name, everything else (strings, arrays, code, hidden classes) by node type.
 * Two summaries diffed say what each of N added streams holds.
 */
import { readFileSync } from 'node:fs';

/** Count and self size of one kind of heap node. */
export interface HeapGroup {
  count: number;
  bytes: number;
}

interface SnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Groups of a snapshot file, keyed `Name` (objects), `Name()` (closures) or `(type)`. */
export function summariseHeapSnapshot(file: string): Map<string, HeapGroup> {
  const data = JSON.parse(readFileSync(file, 'utf8')) as SnapshotFile;
  const fields = data.snapshot.meta.node_fields;
  const types = data.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  const { nodes, strings } = data;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    const name = strings[nodes[i + nameAt]!]!;
    const key = type === 'object' ? name : type === 'closure' ? `${name || '(anonymous)'}()` : `(${type})`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { count: 0, bytes: 0 }));
    group.count++;
    group.bytes += nodes[i + sizeAt]!;
  }
  return groups;
}

/** One line of a diff: what `after` holds more than `before`, per stream. */
export interface HeapGroupGrowth {
  readonly key: string;
  readonly countPerStream: number;
  readonly bytesPerStream: number;
}

/** The groups that grew, largest growth first, divided by `streams`. */
export function diffHeapSummaries(before: Map<string, HeapGroup>, after: Map<string, HeapGroup>, streams: number): HeapGroupGrowth[] {
  const rows: HeapGroupGrowth[] = [];
  for (const [key, group] of after) {
    const was = before.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, countPerStream: (group.count - was.count) / streams, bytesPerStream: (group.bytes - was.bytes) / streams });
  }
  return rows.sort((a, b) => b.bytesPerStream - a.bytesPerStream);
}
