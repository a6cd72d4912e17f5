/**
 * A tiny real filesystem for disk-full tests: a tmpfs of a few megabytes mounted on a fresh
 * temporary directory (needs root, as on the CI and development machines). When mounting is
 * not permitted, `mountTinyFs` says why and the caller skips: the test is never faked.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A mounted tmpfs. */
export interface TinyFs {
  readonly dir: string;
  /** Free bytes now (statfs). */
  free(): number;
  /** Unmounts and removes the mount point. Idempotent. */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `sizeMiB` MiB; resolves to a reason string when this machine does not allow it. */
export async function mountTinyFs(sizeMiB: number): Promise<TinyFs | string> {
  const dir = await mkdtemp(join(tmpdir(), 'sse-relay-tinyfs-'));
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mount.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${(mount.stderr || mount.error?.message || `exit ${mount.status}`).trim()})`;
  }
  let mounted = true;
  return {
    dir,
    free() {
      const df = spawnSync('stat', ['-f', '-c', '%a %S', dir], { encoding: 'utf8' });
      const [blocks, size] = df.stdout.trim().split(' ').map(Number);
      return (blocks ?? 0) * (size ?? 0);
    },
    async unmount() {
      if (!mounted) return;
      mounted = false;
      spawnSync('umount', ['-l', dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
