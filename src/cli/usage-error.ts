/**
 * Bad input on the command line (an unusable URL, header or id, a token with no grant). The
 * program prints its message on one line and exits 2, the usual code for a usage error, so a
 * script can tell "you called me wrong" (2) from "the hub refused or is unreachable" (1).
 */
export class CliUsageError extends Error {
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** Exit code for bad input; see {@link CliUsageError}. */
export const USAGE_EXIT_CODE = 2;
