import type { Message, MessageDraft } from '../hub/message.js';
import { RelayError } from '../hub/errors.js';
import { MAX_APPEND_ALL } from './store.js';

/** The part of a queued append that `appendAll` shares between the SQLite and Redis stores. */
export interface GroupedAppend {
  readonly draft: MessageDraft;
  /**
   * On the first draft of an all-or-nothing group: how many drafts after it belong to it. A
   * batch takes a group whole (one transaction, one script call), or leaves it for the next.
   */
  readonly following?: number;
  readonly resolve: (message: Message) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Queues `drafts` as one group through `enqueue` (which builds and queues one entry per draft)
 * and resolves with their messages in order once all are committed. The whole group shares
 * one batch, so it fails as a whole too.
 */
export function appendGroup(
  drafts: readonly MessageDraft[],
  enqueue: (draft: MessageDraft, following: number | undefined, resolve: (message: Message) => void, reject: (error: unknown) => void) => void,
): Promise<Message[]> {
  if (drafts.length === 0) return Promise.resolve([]);
  if (drafts.length > MAX_APPEND_ALL) {
    return Promise.reject(new RelayError('HUB_ERR_BATCH_INVALID', `At most ${MAX_APPEND_ALL} messages can be published at once`));
  }
  return new Promise<Message[]>((resolve, reject) => {
    const messages = new Array<Message>(drafts.length);
    let left = drafts.length;
    let failed = false;
    drafts.forEach((draft, i) => {
      enqueue(
        draft,
        i === 0 ? drafts.length - 1 : undefined,
        (message) => {
          messages[i] = message;
          if (--left === 0) resolve(messages);
        },
        (error) => {
          if (failed) return;
          failed = true;
          reject(error);
        },
      );
    });
  });
}

/** Size of the group that starts at `head` (1 for a lone append). */
export const groupSizeOf = (head: GroupedAppend): number => 1 + (head.following ?? 0);
