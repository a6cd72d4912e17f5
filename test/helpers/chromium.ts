import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's Chromium, which playwright-core drives (no browser download needed or possible). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a headless, sandbox-less, offline run on a CI machine. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let checked = false;

/**
 * The Chromium executable, installing Debian's `chromium` package once when it is missing (a
 * fresh CI machine never has it). Throws when that fails: browser tests fail, never skip.
 */
export function chromiumExecutable(): string {
  if (checked || existsSync(CHROMIUM_PATH)) {
    checked = true;
    return CHROMIUM_PATH;
  }
  console.log(`# ${CHROMIUM_PATH} is missing: running apt-get install -y chromium`);
  const install = (): number | null =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 15 * 60_000,
    }).status;
  if (install() !== 0) {
    console.log('# apt-get install failed: running apt-get update and trying again');
    spawnSync('apt-get', ['update'], { stdio: 'inherit', timeout: 5 * 60_000 });
    install();
  }
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`${CHROMIUM_PATH} is missing and \`apt-get install -y chromium\` did not provide it`);
  checked = true;
  return CHROMIUM_PATH;
}
