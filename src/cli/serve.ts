import { Command, Option } from 'commander';
import { loadServeOptions } from '../config/load.js';
import { OPTION_SPECS } from '../config/options.js';
import { redactUrl } from '../config/redact.js';
import { isRelayError } from '../hub/errors.js';
import { startRelayServer } from '../http/server.js';

/**
 * `sse-relay serve`: every option of the schema as a flag (and an environment variable),
 * validated before anything starts. SIGINT/SIGTERM stop the hub gracefully and exit 0.
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
    const configFile = typeof config === 'string' ? config : process.env.SSE_RELAY_CONFIG;
    const options = loadServeOptions({ env: process.env, flags: optionFlags, configFile });
    // Pretty logs for a person at a terminal, JSON lines for everything else.
    server = await startRelayServer(options, { prettyLogs: process.stdout.isTTY === true });
  } catch (error) {
    process.stderr.write(`sse-relay: ${describeStartupError(error)}\n`);
    return 1;
  }
  const { app, url, options } = server;
  app.log.info({ url, store: redactUrl(options.store), dataDir: options.store === 'sqlite' ? options.dataDir : undefined }, 'sse-relay listening');
  if (options.logLevel === 'silent' || !process.stdout.isTTY) {
    // Always tell a person where to go, even with logs off.
    process.stderr.write(`sse-relay listening on ${url}\n`);
  }

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      app.log.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        process.stderr.write('sse-relay: shutdown timed out, exiting\n');
        resolve(1);
      }, options.shutdownTimeout);
      deadline.unref();
      server.close().then(
        () => {
          clearTimeout(deadline);
          resolve(0);
        },
        (error: unknown) => {
          clearTimeout(deadline);
          process.stderr.write(`sse-relay: error during shutdown: ${String(error)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function describeStartupError(error: unknown): string {
  if (isRelayError(error)) return `${error.message} (${error.code})`;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') return `${(error as Error).message}: the port is already in use (choose another with --port)`;
  if (code === 'EACCES') return `${(error as Error).message}: permission denied`;
  return String((error as Error)?.message ?? error);
}
