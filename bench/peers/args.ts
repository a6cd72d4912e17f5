/** `--port N` of a peer server's command line. */
export function portArgument(argv: readonly string[] = process.argv): number {
  const index = argv.indexOf('--port');
  const port = Number(index >= 0 ? argv[index + 1] : NaN);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write('usage: <peer> --port N\n');
    process.exit(2);
  }
  return port;
}
