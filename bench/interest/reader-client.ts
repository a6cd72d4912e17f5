/**
 * The scenario's handle on node B (reader-node.ts): forks it, optionally pinned to a CPU, and
 * turns its IPC messages into calls.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReaderConfig, ReaderReply, ReaderRequest, ReaderSample } from './reader-node.js';

const READER_SCRIPT = fileURLToPath(new URL('./reader-node.js', import.meta.url));
/** How long B may take to answer (a churn of thousands of topics included). */
const REPLY_TIMEOUT_MS = 120_000;

export interface ReaderHandle {
  readonly pid: number;
  sample(): Promise<ReaderSample>;
  churnChannels(topics: readonly string[], cycles: number): Promise<{ cpuUs: number; operations: number }>;
  churnShards(cycles: number): Promise<{ cpuUs: number; operations: number }>;
  stop(): Promise<void>;
}

/** Starts B with `config`; resolves once it receives (subscribed, or following its shards). */
export async function startReader(config: ReaderConfig, cpu: string | undefined): Promise<ReaderHandle> {
  const child = fork(READER_SCRIPT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    if (cpu !== undefined) execFileSync('taskset', ['-a', '-p', '-c', cpu, String(child.pid)], { stdio: 'ignore' });
    await ask(child, { type: 'start', config }, 'ready');
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  return {
    pid: child.pid!,
    sample: async () => {
      const { type: _, ...sample } = (await ask(child, { type: 'sample' }, 'sample')) as Extract<ReaderReply, { type: 'sample' }>;
      return sample;
    },
    churnChannels: async (topics, cycles) => churned(await ask(child, { type: 'churn-channels', topics, cycles }, 'churned')),
    churnShards: async (cycles) => churned(await ask(child, { type: 'churn-shards', cycles }, 'churned')),
    stop: async () => {
      if (child.connected) child.send({ type: 'stop' } satisfies ReaderRequest);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function churned(reply: ReaderReply): { cpuUs: number; operations: number } {
  const { cpuUs, operations } = reply as Extract<ReaderReply, { type: 'churned' }>;
  return { cpuUs, operations };
}

/** Sends one request and waits for the reply of type `expected` (B answers one at a time). */
function ask(child: ChildProcess, request: ReaderRequest, expected: ReaderReply['type']): Promise<ReaderReply> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error, reply?: ReaderReply): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(reply!);
    };
    const onMessage = (reply: ReaderReply): void => {
      if (reply.type === 'error') done(new Error(`node B: ${reply.message}`));
      else if (reply.type === expected) done(undefined, reply);
    };
    const onExit = (code: number | null): void => done(new Error(`node B exited (${code}) before answering ${request.type}`));
    const timer = setTimeout(() => done(new Error(`node B did not answer ${request.type} within ${REPLY_TIMEOUT_MS / 1000} s`)), REPLY_TIMEOUT_MS);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(request);
  });
}
