#!/usr/bin/env node
import { Command } from 'commander';
import { packageVersion } from '../version.js';
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
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(add --help for usage)');
  registerServeCommand(program);
  registerSubscribeCommand(program);
  registerPublishCommand(program);
  registerTokenCommand(program);
  registerDoctorCommand(program);
  return program;
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
