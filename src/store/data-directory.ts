import { constants as fsConstants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Why a data directory cannot be used, and the file-system error behind it. */
export interface DataDirectoryProblem {
  /** In words, naming the path: "no permission to create the data directory /srv/x". */
  readonly problem: string;
  readonly cause?: unknown;
}

/**
 * Creates `dir` (and its missing parents) unless it exists, and checks that the hub can write
 * in it. Resolves with the problem when it cannot be used, undefined when it can.
 *
 * The missing levels are created one `mkdir` each, not with `mkdir({ recursive: true })`:
 * Node 20's recursive mkdir never settles for a path under `/proc` (the kernel answers ENOENT
 * there however often it retries), and `serve --data-dir /proc/x` then hung with no output.
 */
export async function prepareDataDirectory(dir: string): Promise<DataDirectoryProblem | undefined> {
  const missing: string[] = [];
  let current = path.resolve(dir);
  for (;;) {
    const found = await stat(current).then(
      (stats) => stats,
      (error: unknown) => error as NodeJS.ErrnoException,
    );
    if (!(found instanceof Error)) {
      if (found.isDirectory()) break;
      return current === path.resolve(dir)
        ? { problem: `the data directory ${dir} exists and is not a directory` }
        : { problem: `a parent of the data directory ${dir} (${current}) is not a directory` };
    }
    if (found.code === 'ENOTDIR') return { problem: `a parent of the data directory ${dir} is not a directory`, cause: found };
    if (found.code !== 'ENOENT') return { problem: `cannot read the data directory ${dir} (${reasonOf(found)})`, cause: found };
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const level of missing.reverse()) {
    try {
      await mkdir(level);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another process created it meanwhile: fine, it is checked below.
      if (code === 'EEXIST') continue;
      return { problem: `cannot create the data directory ${dir}: ${reasonOf(error as NodeJS.ErrnoException, level)}`, cause: error };
    }
  }
  try {
    await access(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (error) {
    return { problem: `the data directory ${dir} is not writable (${reasonOf(error as NodeJS.ErrnoException)})`, cause: error };
  }
  return undefined;
}

function reasonOf(error: NodeJS.ErrnoException, creating?: string): string {
  switch (error.code) {
    case 'EACCES':
    case 'EPERM':
      return creating ? `no permission to create ${creating}` : 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'ENOENT':
      // The parent exists (it was just found), yet mkdir says it does not: a virtual file
      // system such as /proc or /sys, where nothing can be created.
      return creating ? `the file system of ${path.dirname(creating)} does not allow creating directories` : 'it does not exist';
    default:
      return error.message;
  }
}
