import type { Message } from '../hub/message.js';

/**
 * Where a subscriber stands on a store with several shards: index = shard, value = the highest
 * seq of that shard it has been given (0 or absent: none of it). A one-shard store (memory,
 * SQLite, single-stream Redis) is the case of one component, and its ids stay decimal.
 */
export type PositionVector = readonly number[];

/** The most shards a deployment can have (`--redis-shards`): the ids' shard numbers stay below it. */
export const MAX_SHARDS = 256;

/** The version prefix of the event ids a sharded store issues: `v1.<shard>:<seq base36>...`. */
export const VECTOR_ID_PREFIX = 'v1.';

// Any `v<digits>.` prefix is reserved, so a later version of the form cannot collide with ids
// publishers chose meanwhile.
const VECTOR_FORM = /^v[0-9]+\./;
const COMPONENT = /^([0-9]{1,4}):([0-9a-z]{1,11})$/;

/** True when `id` has the form of the position ids of a sharded store (reserved for the hub). */
export function isVectorIdForm(id: string): boolean {
  return VECTOR_FORM.test(id);
}

/** True when `vector` already covers the shard copy `message` (its seq on its shard). */
export function covers(vector: PositionVector, message: Message): boolean {
  return message.seq <= (vector[message.shard ?? 0] ?? 0);
}

/**
 * The id of a position: with one shard the decimal seq, as the stores always issued it; with
 * several `v1.` then `<shard>:<seq in base36>` for every shard with a non-zero position, in
 * shard order. `earliest` when nothing is covered.
 */
export function formatPosition(vector: PositionVector, shardCount: number): string {
  if (shardCount <= 1) {
    const seq = vector[0] ?? 0;
    return seq > 0 ? String(seq) : 'earliest';
  }
  let id = '';
  for (let shard = 0; shard < vector.length; shard++) {
    const seq = vector[shard]!;
    if (seq > 0) id += `${id === '' ? VECTOR_ID_PREFIX : '.'}${shard}:${seq.toString(36)}`;
  }
  return id === '' ? 'earliest' : id;
}

/**
 * Reads a `v1.` id of a store with `shardCount` shards; undefined when it is not one (another
 * version, a shard this deployment does not have, a component twice or out of order, a seq that
 * is not a positive safe integer).
 */
export function parsePosition(id: string, shardCount: number): number[] | undefined {
  if (!id.startsWith(VECTOR_ID_PREFIX)) return undefined;
  const vector: number[] = new Array<number>(shardCount).fill(0);
  let previous = -1;
  for (const part of id.slice(VECTOR_ID_PREFIX.length).split('.')) {
    const match = COMPONENT.exec(part);
    if (!match) return undefined;
    const shard = Number(match[1]);
    const seq = parseInt(match[2]!, 36);
    if (shard <= previous || shard >= shardCount || !Number.isSafeInteger(seq) || seq <= 0) return undefined;
    vector[shard] = seq;
    previous = shard;
  }
  return vector;
}
