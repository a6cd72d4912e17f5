import { publishMany, RelayClientError, type BatchMessage } from '../client/index.js';
import { MAX_BATCH_MESSAGES } from '../client/publish.js';
import { authHint, describeClientError, quoteId } from './client-error-text.js';
import type { PublishIo } from './publish.js';

/** What {@link runPublishBatch} needs besides the input: where, and how, to publish. */
export interface PublishBatchTarget {
  url: string;
  id: string;
  event?: string;
  headers: Record<string, string>;
  /** An `Authorization` header is sent (for the hint on a 401). */
  authenticated: boolean;
}

/**
 * `sse-relay publish --batch <id>`: every line of stdin (LF or CRLF) is one message to `id`,
 * sent with `POST /messages` in chunks of at most {@link MAX_BATCH_MESSAGES} lines, each chunk
 * all or nothing. Empty lines are skipped: a message cannot be empty, and a blank line in a
 * file is layout, not a message. Prints one event id per published message, in input order,
 * as each chunk is committed. A chunk goes out once it is full or stdin ends, so an endless
 * input (`tail -f`) is published a thousand lines at a time.
 *
 * When the hub refuses a chunk (or cannot be reached), nothing of that chunk is published,
 * the chunks before it are (their ids are already printed), nothing after it is sent, and
 * stderr names the lines of the refused chunk; resolves with 1. Otherwise resolves with 0.
 */
export async function runPublishBatch(target: PublishBatchTarget, io: PublishIo): Promise<number> {
  if (io.stdin.isTTY) io.stderr.write('sse-relay: reading messages from stdin, one a line; end with Ctrl-D\n');
  let chunk: BatchMessage[] = [];
  let firstLineOfChunk = 0;
  let lineNumber = 0;
  const send = async (): Promise<boolean> => {
    const sent = chunk;
    chunk = [];
    try {
      const results = await publishMany({ url: target.url, messages: sent, headers: target.headers });
      io.stdout.write(results.map((result) => `${result.id}\n`).join(''));
      return true;
    } catch (error) {
      if (!(error instanceof RelayClientError)) throw error;
      const lines = `lines ${firstLineOfChunk}-${lineNumber}`;
      io.stderr.write(
        `sse-relay: cannot publish ${lines} of stdin to ${quoteId(target.id)}: ${describeClientError(error)}${authHint(error, target.authenticated)}\n` +
          `sse-relay: nothing from line ${firstLineOfChunk} on was published${firstLineOfChunk > 1 ? `; lines before it were (their ids are above)` : ''}\n`,
      );
      return false;
    }
  };
  for await (const line of linesOf(io.stdin)) {
    lineNumber += 1;
    if (line === '') continue;
    if (chunk.length === 0) firstLineOfChunk = lineNumber;
    chunk.push(target.event === undefined ? { id: target.id, message: line } : { id: target.id, message: line, event: target.event });
    if (chunk.length === MAX_BATCH_MESSAGES && !(await send())) return 1;
  }
  if (chunk.length > 0 && !(await send())) return 1;
  return 0;
}

/** The lines of a text stream, without their LF or CRLF; a last line without LF counts. */
async function* linesOf(stream: NodeJS.ReadableStream): AsyncGenerator<string> {
  // A decoder that keeps a multi-byte character split across two chunks whole.
  const decoder = new TextDecoder('utf-8');
  let pending = '';
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk as Buffer, { stream: true });
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      yield stripCr(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== '') yield stripCr(pending);
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
