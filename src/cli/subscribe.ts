import { once } from 'node:events';
import { Command } from 'commander';
import { RelayClientError, subscribe, type RelayEvent } from '../client/index.js';
import { redactUrl } from '../config/redact.js';
import { authHint, describeClientError, quoteId } from './client-error-text.js';
import { addHubAccessOptions, resolveHubAccess, type HubAccessOptions } from './hub-access.js';
import { CliUsageError } from './usage-error.js';

/** Options of `sse-relay subscribe`, as commander parses them. */
export interface SubscribeCommandOptions extends HubAccessOptions {
  lastEventId?: string;
  json?: boolean;
  consumer?: string;
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
 * refuses the subscription (4xx: a bad id, a missing or insufficient token), 2 for unusable
 * input. A hub that is not up yet, or drops the connection, is retried with backoff (and said
 * so on stderr), resuming with Last-Event-ID: `npm start` and `subscribe` can start together.
 */
export function registerSubscribeCommand(program: Command): void {
  const command = program
    .command('subscribe')
    .description('Subscribe to an id and print its messages as they arrive.')
    .argument('<id>', 'the id (topic) to subscribe to')
    .option('--last-event-id <id>', 'resume after this event id (`earliest`: everything retained)')
    .option('--json', 'print one JSON object per line: {time (publish time), id, event, data}')
    .option('--consumer <name>', 'subscribe as this acknowledged consumer: resume after what it acknowledged, and acknowledge what is printed');
  addHubAccessOptions(command).action(async (id: string, options: SubscribeCommandOptions) => {
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

/** Prints events until `signal` aborts (resolves 0) or a refusal (resolves 1). */
export async function runSubscribe(
  id: string,
  options: SubscribeCommandOptions,
  signal: AbortSignal,
  io: SubscribeIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const { url, headers, authenticated } = resolveHubAccess(options);
  if (id === '') throw new CliUsageError('the id must not be empty');
  // A hub URL may carry credentials (`https://user:password@hub`): shown without them.
  const shownUrl = redactUrl(url);
  const notice = (text: string): void => {
    io.stderr.write(`sse-relay: ${text}\n`);
  };
  let subscription;
  try {
    subscription = subscribe({
      url,
      id,
      headers,
      lastEventId: options.lastEventId,
      // An event is acknowledged once printed: the loop asks for the next one after the write.
      ...(options.consumer === undefined ? {} : { consumer: options.consumer, autoAck: true, onAckError: (error: RelayClientError) => notice(`cannot acknowledge: ${describeClientError(error)}`) }),
      signal,
      onOpen: ({ reconnect, lastEventId }) => {
        if (!reconnect) notice(`subscribed to ${quoteId(id)} at ${shownUrl}`);
        else notice(`reconnected${lastEventId === undefined ? '' : `, resuming after event ${lastEventId}`}`);
      },
      onRetry: ({ error, delayMs, attempt, everOpened }) => {
        const retrying = `retrying in ${(delayMs / 1000).toFixed(1)}s`;
        if (!everOpened) notice(`${describeClientError(error)}; the hub may not be up yet, ${retrying} (Ctrl-C to stop)`);
        else notice(`${attempt === 0 ? 'connection lost' : 'reconnection failed'} (${error.message}); ${retrying}`);
      },
    });
  } catch (error) {
    // The SDK checks its options when built; what it refuses here is bad input, not the hub.
    if (error instanceof RelayClientError) throw new CliUsageError(error.message);
    throw error;
  }

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
    notice(`cannot subscribe to ${quoteId(id)} at ${shownUrl}: ${describeClientError(error)}${authHint(error, authenticated)}`);
    return 1;
  } finally {
    io.stdout.off('error', onStdoutError);
  }
  return 0;
}

/**
 * `<local time> <message>`, as the article's console app prints; other types are tagged. The
 * time is the message's publish time when the hub sends it (sse-relay does), so replayed
 * history shows when it was published; otherwise when it arrived. Continuation lines of a
 * multi-line message are indented under its first, so each message stays one block.
 */
function formatText(event: RelayEvent): string {
  const prefix = `${shownTime(event).toLocaleString()} ${event.event === 'message' ? '' : `[${event.event}] `}`;
  const indent = ' '.repeat(prefix.length);
  return `${prefix}${event.data.split('\n').join(`\n${indent}`)}\n`;
}

function formatJson(event: RelayEvent): string {
  return `${JSON.stringify({ time: shownTime(event).toISOString(), id: event.id ?? null, event: event.event, data: event.data })}\n`;
}

function shownTime(event: RelayEvent): Date {
  return event.publishedAt ?? new Date();
}

function gapMessage(data: string): string {
  try {
    const { message, reason, count, firstId, lastId } = JSON.parse(data) as { message?: unknown; reason?: unknown; count?: unknown; firstId?: unknown; lastId?: unknown };
    if (typeof message === 'string') return message;
    if (reason === 'consumer-max-pending') return `${String(count)} unacknowledged messages (${String(firstId)} to ${String(lastId)}) were released past the hub's --consumer-max-pending`;
  } catch {
    // Not JSON: show it as it came.
  }
  return data;
}
