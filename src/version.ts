import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** This package's version, from its package.json (`0.0.0` when it cannot be read). */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  try {
    // dist/src/version.js → the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    cached = pkg.version ?? '0.0.0';
  } catch {
    cached = '0.0.0';
  }
  return cached;
}
