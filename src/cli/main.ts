#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerPublishCommand } from './publish.js';
import { registerServeCommand } from './serve.js';
import { registerSubscribeCommand } from './subscribe.js';
import { registerTokenCommand } from './token.js';
import { registerDoctorCommand } from './doctor.js';
import { CliUsageError } from './usage-error.js';

/** The `sse-relay` program with all its subcommands. */
export function createProgram(): Command {
  const program = new Command('sse-relay')
    .description('A Server-Sent Events message hub: publish over HTTP, subscribe over text/event-stream.')
    .version(readVersion(), '-V, --version')
    .showHelpAfterError('(add --help for usage)');
  registerServeCommand(program);
  registerSubscribeCommand(program);
  registerPublishCommand(program);
  registerTokenCommand(program);
  registerDoctorCommand(program);
  return program;
}

function readVersion(): string {
  try {
    // dist/src/cli/main.js → the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

try {
  await createProgram().parseAsync(process.argv);
} catch (error) {
  // A person at a terminal gets one line, never a stack trace: bad input exits 2, anything
  // else 1.
  if (error instanceof CliUsageError) {
    process.stderr.write(`sse-relay: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(`sse-relay: unexpected error: ${String((error as Error | undefined)?.message ?? error)}\n`);
    process.exitCode = 1;
  }
}
