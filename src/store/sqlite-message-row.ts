import type { Message } from '../hub/message.js';

/** A message as the SQLite store's tables keep it (`messages`, and `consumer_held` alike). */
export interface MessageRow {
  seq: number;
  id: string | null;
  data: string;
  type: string | null;
  private: number | null;
  retry: number | null;
  time: number;
  topics: string;
}

export function messageOfRow(row: MessageRow): Message {
  return {
    seq: row.seq,
    id: row.id ?? String(row.seq),
    topics: JSON.parse(row.topics) as string[],
    data: row.data,
    type: row.type ?? undefined,
    private: row.private === null ? undefined : row.private === 1,
    retry: row.retry ?? undefined,
    time: row.time,
  };
}
