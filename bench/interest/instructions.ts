/**
 * Redis' cost of each way in instructions (valgrind's callgrind), which other work on the
 * machine cannot change: one standalone `redis-server` under callgrind, instrumentation on only
 * while a phase runs, its instruction count read from callgrind's live counters. Each phase
 * appends the same messages with the store's script call, one message a call, with:
 *
 * - `append`: the store's script, nobody reading;
 * - `append + SPUBLISH, no subscriber`: what way 2 costs a deployment where no node wants the topic;
 * - `append + SPUBLISH, a node on every channel`: plus handing each copy to a subscriber;
 * - `append, a node following the stream, one read per message`: the store's read loop, each
 *   append waiting until it was dispatched (a quiet deployment: every read carries one message);
 * - the store's append, then following the stream, then SPUBLISH to a node on every channel,
 *   with 100 appends in flight (a busy deployment: a read carries what arrived since the last).
 *
 * Standalone rather than a Cluster: the scripts and reads are the same; a Cluster adds a slot
 * check per command to every phase alike.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { encodeDraft } from '../../src/store/redis/codec.js';
import { ReadLoop } from '../../src/store/redis/read-loop.js';
import { redisKeys, RedisScripts, SCRIPT_DEFINITIONS } from '../../src/store/redis/scripts.js';
import { parseCommandStats } from '../cluster/command-stats.js';
import { freePort } from '../peers/free-port.js';
import { PAYLOAD_SIZE } from '../loadgen/payload.js';
import { spublishScriptDefinitions, topicChannel } from './spublish-append.js';

export interface InstructionPhase {
  readonly phase: string;
  readonly messages: number;
  /** Appends sent before waiting for their replies (and their delivery). */
  readonly inFlight: number;
  /** Instructions redis-server ran in the phase (all its threads). */
  readonly instructions: number;
  /** XREAD calls in the phase (reads that carried messages, and the ones that blocked). */
  readonly reads: number;
}

export interface InstructionCounts {
  /** Why it did not run (no valgrind); null when it ran. */
  readonly unavailable: string | null;
  readonly topics: number;
  readonly phases: readonly InstructionPhase[];
}

const DATA = 'x'.repeat(PAYLOAD_SIZE);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pong(port: number): boolean {
  try {
    return execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim() === 'PONG';
  } catch {
    return false;
  }
}

/** callgrind_control on the process; its output. */
function control(pid: number, ...args: string[]): string {
  return execFileSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
}

/** The live instruction count (`Ir`) of the process. */
function instructionsNow(pid: number): number {
  const out = control(pid, '-e', 'Ir');
  // `Totals:Ir` then one line per thread, `Th <n> <count>`.
  const threads = [...out.matchAll(/^\s*Th\s+\d+\s+([\d,]+)\s*$/gm)];
  if (!/Totals:\s*Ir/.test(out) || threads.length === 0) throw new Error(`callgrind_control printed no Ir count: ${out}`);
  return threads.reduce((sum, m) => sum + Number(m[1]!.replace(/,/g, '')), 0);
}

export async function countInstructions(messages: number, topicCount: number): Promise<InstructionCounts> {
  if (!hasValgrind()) return { unavailable: 'valgrind (callgrind) is not installed', topics: topicCount, phases: [] };
  const dir = mkdtempSync(path.join(tmpdir(), 'interest-callgrind-'));
  const port = await freePort();
  const server = spawn(
    'valgrind',
    ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${path.join(dir, 'callgrind.out')}`, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const clients: Redis[] = [];
  const open = (scripts: Record<string, { lua: string }> = SCRIPT_DEFINITIONS): Redis => {
    const client = new Redis({ host: '127.0.0.1', port, protocol: 2, scripts, lazyConnect: true, maxRetriesPerRequest: 1 });
    clients.push(client);
    return client;
  };
  try {
    // Under valgrind the server takes seconds to listen.
    for (const deadline = Date.now() + 60_000; !pong(port); await sleep(250)) {
      if (Date.now() > deadline) throw new Error('redis-server under callgrind did not answer within 60 s');
    }
    const admin = open();
    await admin.connect();
    const pid = server.pid!;
    const plain = open();
    const publishing = open(spublishScriptDefinitions());
    await Promise.all([plain.connect(), publishing.connect()]);
    const topics = Array.from({ length: topicCount }, (_, i) => `i${i}`);
    const phases: InstructionPhase[] = [];
    let prefixNumber = 0;

    /** One phase on a fresh data set: `setup` attaches the reader, `each` waits for its delivery. */
    const phase = async (
      name: string,
      client: Redis,
      inFlight: number,
      reader?: (keys: ReturnType<typeof redisKeys>) => Promise<{ delivered: () => number; stop: () => Promise<void> }>,
    ): Promise<void> => {
      const keys = redisKeys(`cg${prefixNumber++}:`, true, 0);
      const scripts = new RedisScripts(keys);
      const append = (i: number): Promise<unknown> => {
        const topic = topics[i % topics.length]!;
        const now = Date.now();
        return scripts.append(client, { base: now * 1000, maxMessagesPerTopic: 1000, pruneBudget: 2000, topics: [topic], values: encodeDraft({ topics: [topic], data: DATA }, [topic], now) });
      };
      // Every topic exists before counting: the first message of a topic does more.
      for (let i = 0; i < topics.length; i++) await append(i);
      const attached = await reader?.(keys);
      const waitFor = async (count: number): Promise<void> => {
        if (!attached) return;
        for (const deadline = Date.now() + 60_000; attached.delivered() < count; ) {
          if (Date.now() > deadline) throw new Error(`${name}: ${attached.delivered()} of ${count} delivered`);
          await sleep(1);
        }
      };
      const readsBefore = parseCommandStats(await admin.info('commandstats')).get('xread')?.calls ?? 0;
      control(pid, '-z');
      control(pid, '-i', 'on');
      for (let sent = 0; sent < messages; ) {
        const burst = Math.min(inFlight, messages - sent);
        await Promise.all(Array.from({ length: burst }, (_, j) => append(sent + j)));
        sent += burst;
        await waitFor(sent);
      }
      // Read while instrumented: callgrind has no counts to show once it is off.
      const instructions = instructionsNow(pid);
      control(pid, '-i', 'off');
      const reads = (parseCommandStats(await admin.info('commandstats')).get('xread')?.calls ?? 0) - readsBefore;
      await attached?.stop();
      phases.push({ phase: name, messages, inFlight, instructions, reads });
    };

    const subscribed = async (keys: ReturnType<typeof redisKeys>): Promise<{ delivered: () => number; stop: () => Promise<void> }> => {
      const sub = open({});
      await sub.connect();
      let delivered = 0;
      sub.on('smessage', () => delivered++);
      await sub.ssubscribe(...topics.map((t) => topicChannel(keys, t)));
      return { delivered: () => delivered, stop: async () => sub.disconnect() };
    };
    const following = async (keys: ReturnType<typeof redisKeys>): Promise<{ delivered: () => number; stop: () => Promise<void> }> => {
      const reader = open();
      const commands = open();
      await Promise.all([reader.connect(), commands.connect()]);
      let delivered = 0;
      const loop = new ReadLoop({
        reader,
        commands,
        keys,
        scripts: new RedisScripts(keys),
        nodeId: `callgrind-${prefixNumber}`,
        where: () => `127.0.0.1:${port}`,
        log: () => {},
        listener: () => () => delivered++,
        dataSetLost: () => {},
        dispatched: () => {},
      });
      await loop.join();
      loop.start();
      return {
        delivered: () => delivered,
        stop: async () => {
          await loop.stop();
          commands.disconnect();
        },
      };
    };

    await phase('append', plain, 1);
    await phase('append + SPUBLISH, no subscriber', publishing, 1);
    await phase('append + SPUBLISH, a node on every channel', publishing, 1, subscribed);
    await phase('append, a node following the stream, one read per message', plain, 1, following);
    // Pipelined appends cost less each (fewer reads and writes of the connection): their own baseline.
    await phase('append, 100 appends in flight', plain, 100);
    await phase('append, a node following the stream, 100 appends in flight', plain, 100, following);
    await phase('append + SPUBLISH, a node on every channel, 100 appends in flight', publishing, 100, subscribed);
    return { unavailable: null, topics: topicCount, phases };
  } finally {
    for (const c of clients) c.disconnect();
    server.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
