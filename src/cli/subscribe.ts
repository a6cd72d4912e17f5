import { once } from 'node:events';
import { Command, Option } from 'commander';
import { RelayClientError, subscribe, type RelayEvent } from '../client/index.js';

/** Options of `sse-relay subscribe`, as commander parses them. */
export interface SubscribeCommandOptions {
  url: string;
  lastEventId?: string;
  json?: boolean;
}

/** Where `runSubscribe` writes; the process streams by default. */
export interface SubscribeIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * `sse-relay subscribe <id>`: prints each message as `<local time> <message>` (the article's
 * console app), or one JSON object per line with `--json`. Status and reconnection notices go
 * to stderr so stdout carries only messages. Exit codes: 0 on SIGINT/SIGTERM, 1 when the hub
 * refuses the subscription or cannot be reached on the first attempt (a typo'd URL fails
 * fast); once connected, drops are retried forever, resuming with Last-Event-ID.
 */
export function registerSubscribeCommand(program: Command): void {
  program
    .command('subscribe')
    .description('Subscribe to an id and print its messages as they arrive.')
    .argument('<id>', 'the id (topic) to subscribe to')
    .addOption(new Option('--url <hub>', 'base URL of the hub').env('SSE_RELAY_URL').default('http://127.0.0.1:3000'))
    .option('--last-event-id <id>', 'resume after this event id (`earliest`: everything retained)')
    .option('--json', 'print one JSON object per line: {time, id, event, data}')
    .action(async (id: string, options: SubscribeCommandOptions) => {
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        process.exitCode = await runSubscribe(id, options, stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** Prints events until `signal` aborts (resolves 0) or a fatal error (resolves 1). */
export async function runSubscribe(
  id: string,
  options: SubscribeCommandOptions,
  signal: AbortSignal,
  io: SubscribeIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const notice = (text: string): void => {
    io.stderr.write(`sse-relay: ${text}\n`);
  };
  let startupFailure: RelayClientError | undefined;
  const subscription = subscribe({
    url: options.url,
    id,
    lastEventId: options.lastEventId,
    signal,
    onOpen: ({ reconnect, lastEventId }) => {
      if (!reconnect) notice(`subscribed to ${quoteId(id)} at ${options.url}`);
      else notice(`reconnected${lastEventId === undefined ? '' : `, resuming after event ${lastEventId}`}`);
    },
    onRetry: ({ error, delayMs, attempt, everOpened }) => {
      if (!everOpened) {
        startupFailure = error;
        subscription.close();
        return;
      }
      const what = attempt === 0 ? 'connection lost' : 'reconnection failed';
      notice(`${what} (${error.message}); reconnecting in ${(delayMs / 1000).toFixed(1)}s`);
    },
  });

  // `sse-relay subscribe demo | head -1`: a closed pipe is a normal way to stop.
  const onStdoutError = (error: NodeJS.ErrnoException): void => {
    if (error.code !== 'EPIPE') notice(`cannot write to stdout: ${error.message}`);
    subscription.close();
  };
  io.stdout.on('error', onStdoutError);
  try {
    for await (const event of subscription) {
      if (!options.json && event.event === 'gap') {
        notice(`warning: ${gapMessage(event.data)}`);
        continue;
      }
      const line = options.json ? formatJson(event) : formatText(event);
      if (!io.stdout.write(line)) await Promise.race([once(io.stdout, 'drain'), once(io.stdout, 'close')]);
    }
  } catch (error) {
    if (!(error instanceof RelayClientError)) throw error;
    notice(`subscription to ${quoteId(id)} failed: ${describe(error)}`);
    return 1;
  } finally {
    io.stdout.off('error', onStdoutError);
  }
  if (startupFailure !== undefined) {
    const failure: RelayClientError = startupFailure;
    notice(
      failure.code === 'CLIENT_ERR_UNREACHABLE' ? describe(failure) : `cannot subscribe at ${options.url}: ${describe(failure)}`,
    );
    return 1;
  }
  return 0;
}

/** `<local time> <message>`, as the article's console app prints; other types are tagged. */
function formatText(event: RelayEvent): string {
  const time = new Date().toLocaleString();
  return event.event === 'message' ? `${time} ${event.data}\n` : `${time} [${event.event}] ${event.data}\n`;
}

function formatJson(event: RelayEvent): string {
  return `${JSON.stringify({ time: new Date().toISOString(), id: event.id ?? null, event: event.event, data: event.data })}\n`;
}

function gapMessage(data: string): string {
  try {
    const { message } = JSON.parse(data) as { message?: unknown };
    if (typeof message === 'string') return message;
  } catch {
    // Not JSON: show it as it came.
  }
  return data;
}

function describe(error: RelayClientError): string {
  const status = error.status === undefined ? '' : `, HTTP ${error.status}`;
  return `${error.message} (${error.code}${status})`;
}

function quoteId(id: string): string {
  return JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…` : id);
}
