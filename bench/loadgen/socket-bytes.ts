/**
 * Bytes that processes' TCP sockets received from given remote ports, from the kernel's own
 * per-socket counters (`tcp_info.bytes_received`, as `ss -ti` prints them): what Redis sent a
 * hub node, whatever the Redis version. Redis 7.0 (Debian's) has no per-client byte counters
 * in `CLIENT LIST` (`tot-net-out` came later), and `INFO stats` only has the server's total.
 */
import { execFileSync } from 'node:child_process';

/** One established TCP socket as `ss -tinpH` describes it. */
export interface SocketCounters {
  /** `address:port` of this end, and of the other. */
  readonly local: string;
  readonly peer: string;
  readonly peerPort: number;
  /** The processes holding it (usually one). */
  readonly pids: readonly number[];
  /** Payload bytes received on it since it opened. */
  readonly bytesReceived: number;
}

const ADDRESS = /^(?:\[[0-9a-fA-F:.%\w]+\]|[^\s:]+(?::[^\s:]+)*):(\d+)$/;

/**
 * Parses the output of `ss -tinpH` (with or without a state column): a line per socket
 * (queues, local and peer address, `users:((…pid=N…))`) followed by an indented line of
 * tcp_info fields. A counter the kernel has at zero is left out by `ss`: it reads as 0.
 */
export function parseSocketStats(text: string): SocketCounters[] {
  const sockets: SocketCounters[] = [];
  let pending: { local: string; peer: string; peerPort: number; pids: number[] } | undefined;
  const flush = (info: string): void => {
    if (!pending) return;
    const counter = (name: string): number => Number(new RegExp(`\\b${name}:(\\d+)`).exec(info)?.[1] ?? 0);
    sockets.push({ ...pending, bytesReceived: counter('bytes_received') });
    pending = undefined;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (/^\s/.test(line)) {
      flush(line);
      continue;
    }
    // A socket line whose info line never came (ss prints none for some states).
    flush('');
    const addresses = line.split(/\s+/).filter((token) => ADDRESS.test(token) && !token.startsWith('users:'));
    if (addresses.length < 2) continue;
    const [local, peer] = addresses as [string, string];
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    pending = { local, peer, peerPort: Number(ADDRESS.exec(peer)![1]), pids };
  }
  flush('');
  return sockets;
}

/** The established TCP sockets whose peer is on one of `peerPorts` (on any address). */
export function readSocketStats(peerPorts: readonly number[]): SocketCounters[] {
  if (peerPorts.length === 0) return [];
  const filter = `( ${peerPorts.map((p) => `dport = :${p}`).join(' or ')} )`;
  const text = execFileSync('ss', ['-tinpH', 'state', 'established', filter], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return parseSocketStats(text);
}

/** Bytes received by each socket of `pids` (keyed by its two ends), at one moment. */
export function receivedBySocket(sockets: readonly SocketCounters[], pids: readonly number[]): Map<string, number> {
  const wanted = new Set(pids);
  const out = new Map<string, number>();
  for (const s of sockets) if (s.pids.some((pid) => wanted.has(pid))) out.set(`${s.local}>${s.peer}`, s.bytesReceived);
  return out;
}

/**
 * Bytes received between two samples of `receivedBySocket`: a socket opened in between counts
 * from zero; one closed in between counts nothing (its last bytes are not known).
 */
export function receivedBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [key, bytes] of after) total += bytes - (before.get(key) ?? 0);
  return total;
}
