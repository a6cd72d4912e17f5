import type { RelayEvent } from './subscribe.js';

/**
 * The most recent events a tab delivered, to drop one that a takeover replays (a new leader that
 * resumed from an older position than the tabs had reached). An event is known by its id, type
 * and a hash of its data, not its id alone: a Mercure publisher may reuse an id for a different
 * update, which must still arrive. Keeping the last 1024 bounds the memory whatever the stream's
 * length; a replay can only repeat the last few.
 */
export class SeenEvents {
  // A Set iterates in insertion order, so its first value is the oldest.
  private readonly keys = new Set<string>();

  constructor(private readonly limit = 1024) {}

  /** Records the event; false when it was already seen (a repeat to drop). */
  firstTime(event: RelayEvent): boolean {
    if (event.id === undefined) return true;
    const key = `${event.id}\n${event.event}\n${fnv1a(event.data)}`;
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.limit) this.keys.delete(this.keys.values().next().value as string);
    return true;
  }
}

/** 32-bit FNV-1a over UTF-16 code units: cheap, and a collision needs the same id and type too. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
