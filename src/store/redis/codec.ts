import type { Message, MessageDraft } from '../../hub/message.js';

/**
 * One entry of the log stream as Redis returns it (RESP2): id `<seq>-0` and a flat field list.
 *
 * Fields: `t` topics joined by LF (topics cannot contain control characters), `ts` time,
 * `d` data, and only when set `i` custom id, `y` type, `p` private (0/1), `r` retry, `k` the
 * `<ticket>:<lock token>` of a copy of a message on topics of several shards. Plain
 * messages share one field list, which the stream encoding stores once per node.
 */
export type StreamEntry = [id: string, fields: string[]];

/** Values of one message in the append script's ARGV, in its order. */
export const APPEND_VALUES_PER_MESSAGE = 7;

/** A draft as the append script's ARGV values: time, topics, custom id, data, type, private, retry ('' when unset). */
export function encodeDraft(draft: MessageDraft, topics: readonly string[], time: number): (string | number)[] {
  const privateFlag = draft.private === undefined ? '' : draft.private ? '1' : '0';
  return [time, topics.join('\n'), draft.id ?? '', draft.data, draft.type ?? '', privateFlag, draft.retry === undefined ? '' : draft.retry];
}

/** The seq of a stream entry id `<seq>-0`. */
export function seqOfEntryId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

/** A stream entry as a message. */
export function decodeEntry([id, fields]: StreamEntry): Message {
  const seq = seqOfEntryId(id);
  let topics: string[] = [];
  let data = '';
  let time = 0;
  let custom: string | undefined;
  let type: string | undefined;
  let privateFlag: boolean | undefined;
  let retry: number | undefined;
  let ticket: number | undefined;
  let writer: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const value = fields[i + 1]!;
    switch (fields[i]) {
      case 't':
        topics = value.split('\n');
        break;
      case 'ts':
        time = Number(value);
        break;
      case 'd':
        data = value;
        break;
      case 'i':
        custom = value;
        break;
      case 'y':
        type = value;
        break;
      case 'p':
        privateFlag = value === '1';
        break;
      case 'r':
        retry = Number(value);
        break;
      case 'k': {
        const colon = value.indexOf(':');
        ticket = Number(value.slice(0, colon));
        writer = value.slice(colon + 1);
        break;
      }
    }
  }
  const message: Message = { seq, id: custom ?? String(seq), topics, data, type, private: privateFlag, retry, time };
  return ticket === undefined ? message : { ...message, ticket, writer };
}
