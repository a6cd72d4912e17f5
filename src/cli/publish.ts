import { Command } from 'commander';
import { publish, RelayClientError } from '../client/index.js';
import { addHubAccessOptions, resolveHubAccess, type HubAccessOptions } from './hub-access.js';
import { CliUsageError } from './usage-error.js';
import { authHint, describeClientError, quoteId } from './client-error-text.js';
import { runPublishBatch } from './publish-batch.js';

/** Options of `sse-relay publish`, as commander parses them. */
export interface PublishCommandOptions extends HubAccessOptions {
  event?: string;
  /** Every line of stdin is one message (see {@link runPublishBatch}). */
  batch?: boolean;
}

/** Where `runPublish` reads and writes; the process streams by default. */
export interface PublishIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * `sse-relay publish <id> [message]`: posts one message (the argument, or all of stdin) and
 * prints its event id; with `--batch`, every line of stdin is a message. Exit code 1 with the hub's error code when it refuses, or when it
 * cannot be reached; 2 for unusable input (empty id, bad URL or header), before any request.
 */
export function registerPublishCommand(program: Command): void {
  const command = program
    .command('publish')
    .description('Publish a message to an id and print its event id.')
    .argument('<id>', 'the id (topic) to publish to')
    .argument('[message]', 'the message; read from stdin when absent (one trailing newline is removed)')
    .option('--event <type>', 'event type (the SSE `event:` field)')
    .option('--batch', 'publish every line of stdin as one message (empty lines skipped), up to 1000 per request; prints one event id a line');
  addHubAccessOptions(command).action(async (id: string, message: string | undefined, options: PublishCommandOptions) => {
      process.exitCode = await runPublish(id, message, options);
    });
}

/** Publishes one message; resolves with the exit code. */
export async function runPublish(
  id: string,
  message: string | undefined,
  options: PublishCommandOptions,
  io: PublishIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const { url, headers, authenticated } = resolveHubAccess(options);
  if (id === '') throw new CliUsageError('the id must not be empty');
  if (options.batch) {
    if (message !== undefined) throw new CliUsageError('--batch reads the messages from stdin, one a line: give no message argument');
    return runPublishBatch({ url, id, event: options.event, headers, authenticated }, io);
  }
  if (message === undefined) {
    if (io.stdin.isTTY) io.stderr.write('sse-relay: reading the message from stdin, end it with Ctrl-D\n');
    message = stripOneTrailingNewline(await readAll(io.stdin));
  }
  try {
    const { id: eventId } = await publish({ url, id, message, event: options.event, headers });
    io.stdout.write(`${eventId}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof RelayClientError)) throw error;
    io.stderr.write(`sse-relay: cannot publish to ${quoteId(id)}: ${describeClientError(error)}${authHint(error, authenticated)}\n`);
    return 1;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** `echo hello | sse-relay publish demo` publishes `hello`, as `$(...)` would. */
function stripOneTrailingNewline(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}
