import { Command, Option } from 'commander';
import { CONFIG_FILE_VARIABLE } from '../config/environment.js';
import { loadServeOptions } from '../config/load.js';
import { OPTION_SPECS } from '../config/options.js';
import { redactUrl } from '../config/redact.js';
import { isRelayError } from '../hub/errors.js';
import { startRelay } from '../relay.js';

/**
 * `sse-relay serve`: every option of the schema as a flag (and an environment variable),
 * validated before anything starts. SIGINT/SIGTERM stop the hub gracefully and exit 0, or 1
 * when `--shutdown-timeout` passed and open connections had to be cut.
 */
export function registerServeCommand(program: Command): void {
  const command = program.command('serve').description('Start the hub (SQLite store in ./data by default).');
  command.addOption(new Option('--config <file>', 'Read options from a JSON or YAML file [env SSE_RELAY_CONFIG]; env and flags override it.'));
  for (const spec of OPTION_SPECS) {
    command.addOption(
      new Option(
        spec.value ? `--${spec.flag} ${spec.value}` : `--${spec.flag}`,
        `${spec.description} [env ${spec.env}]${spec.defaultText ? ` (default: ${spec.defaultText})` : ''}`,
      ),
    );
  }
  command.action(async (flags: Record<string, string | boolean | undefined>) => {
    process.exitCode = await serve(flags);
  });
}

/** Runs the hub until a signal; resolves with the process exit code. */
export async function serve(flags: Record<string, string | boolean | undefined>): Promise<number> {
  let server;
  try {
    const { config, ...optionFlags } = flags;
    // An exported but empty SSE_RELAY_CONFIG means no file, as the shell usually intends.
    const configFile = typeof config === 'string' ? config : process.env[CONFIG_FILE_VARIABLE] || undefined;
    const options = loadServeOptions({ env: process.env, flags: optionFlags, configFile });
    // Pretty logs for a person at a terminal, JSON lines for everything else.
    server = await startRelay(options, { prettyLogs: process.stdout.isTTY === true });
  } catch (error) {
    process.stderr.write(`sse-relay: ${describeStartupError(error)}\n`);
    return 1;
  }
  const { app, url, options } = server;

  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      app.log.info({ signal }, 'shutting down');
      // The server cuts every connection at the shutdown timeout; this is for what may still
      // hang after that (a store that does not answer its close): exit regardless.
      const backstop = setTimeout(() => {
        process.stderr.write(`sse-relay: shutdown did not finish ${options.shutdownTimeout + BACKSTOP_GRACE_MS} ms after ${signal}, exiting\n`);
        process.exit(1);
      }, options.shutdownTimeout + BACKSTOP_GRACE_MS);
      backstop.unref();
      server.close().then(
        (outcome) => {
          clearTimeout(backstop);
          if (!outcome.forced) return resolve(0);
          const plural = outcome.cutConnections === 1 ? '' : 's';
          process.stderr.write(
            `sse-relay: shutdown timeout (${options.shutdownTimeout} ms) passed with requests still open; closed ${outcome.cutConnections} open connection${plural}, exiting 1\n`,
          );
          resolve(1);
        },
        (error: unknown) => {
          clearTimeout(backstop);
          process.stderr.write(`sse-relay: error during shutdown: ${String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  // Only now that the handlers are in place: whoever reads "listening" may signal at once.
  app.log.info({ url, store: redactUrl(options.store), dataDir: options.store === 'sqlite' ? options.dataDir : undefined }, 'sse-relay listening');
  if (options.logLevel === 'silent' || !process.stdout.isTTY) {
    // Always tell a person where to go, even with logs off.
    process.stderr.write(`sse-relay listening on ${url}\n`);
  }
  return stopped;
}

/** How long after the shutdown timeout the process exits even if closing the store hangs. */
const BACKSTOP_GRACE_MS = 2000;

function describeStartupError(error: unknown): string {
  if (isRelayError(error)) return `${error.message} (${error.code})`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `${(error as Error).message}: the port is already in use (choose another with --port)`;
  if (code === 'EACCES') return `${(error as Error).message}: permission denied`;
  return String((error as Error)?.message ?? error);
}
