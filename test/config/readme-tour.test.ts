import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CLI_PATH, spawnHub, type HubProcess } from '../helpers/hub-process.js';

const readmePath = fileURLToPath(new URL('../../../README.md', import.meta.url));
const README_HUB = 'http://127.0.0.1:3000';

/** The shell blocks of the README's tour, and the commands in them (continuation lines joined). */
interface TourBlock {
  readonly commands: readonly string[];
  /** Each command's sample output: the `# ` lines right after it, annotations (`<- …`) removed. */
  readonly samples: ReadonlyMap<string, readonly string[]>;
}

function tourBlocks(readme: string): TourBlock[] {
  const start = readme.indexOf('## A one-minute tour');
  assert.ok(start >= 0, 'the README has a tour');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((block) => {
    const commands: string[] = [];
    const samples = new Map<string, string[]>();
    let pending = '';
    for (const line of block[1]!.split('\n')) {
      if (pending !== '') {
        pending += ' ' + line.trim();
      } else if (line.startsWith('#')) {
        const last = commands[commands.length - 1];
        if (last !== undefined) samples.get(last)!.push(line.replace(/^# ?/, '').replace(/\s+<-.*$/, ''));
        continue;
      } else if (line.trim() === '') {
        continue;
      } else {
        pending = line.trim();
      }
      if (pending.endsWith('\\')) {
        pending = pending.slice(0, -1).trim();
        continue;
      }
      // A trailing comment is prose, not part of the command.
      const command = pending.replace(/\s+#\s.*$/, '');
      commands.push(command);
      samples.set(command, []);
      pending = '';
    }
    return { commands, samples };
  });
}

/** A tour command as a user's shell runs it, against this test's hub. */
function shell(command: string, hub: string): string {
  return command.replaceAll('npx sse-relay', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_PATH)}`).replaceAll(README_HUB, hub);
}

interface Running {
  output(): string;
  /** Resolves once the output matches. */
  until(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): void;
}

function start(command: string, hub: string, env: Record<string, string>): Running {
  const child: ChildProcess = spawn('bash', ['-c', shell(command, hub)], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return {
    output: () => output,
    async until(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (Date.now() > deadline) throw new Error(`${command}: no ${pattern} in ${JSON.stringify(output)} (stderr ${JSON.stringify(stderr)})`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    stop() {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    },
  };
}

async function runToEnd(command: string, hub: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', shell(command, hub)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish; stderr ${stderr}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command} exited with ${code}; stderr ${stderr}`));
    });
  });
}

/** The sample ids of the README and the real ones differ by one offset: the store's base. */
function idMapper(sampleFirst: string, realFirst: string): (sample: string) => string {
  const offset = BigInt(realFirst) - BigInt(sampleFirst);
  return (sample) => sample.replace(/\b1\d{15}\b/g, (id) => String(BigInt(id) + offset));
}

describe('the README tour, run as a new user would (CLI and curl against a fresh hub)', () => {
  let hub: HubProcess;
  let dataDir: string;
  let blocks: TourBlock[];
  const env = (): Record<string, string> => ({ SSE_RELAY_URL: hub.url, TZ: 'UTC' });

  before(async () => {
    blocks = tourBlocks(await readFile(readmePath, 'utf8'));
    dataDir = await mkdtemp(join(tmpdir(), 'sse-relay-tour-'));
    hub = await spawnHub(['--data-dir', dataDir]);
  });
  after(async () => {
    hub.child.kill('SIGTERM');
    await hub.exited;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('shows what the README says it shows, with ids that follow as its samples do', async () => {
    assert.equal(blocks.length, 2, 'the tour has a CLI block and a curl block');
    const [cli, curl] = blocks as [TourBlock, TourBlock];

    // CLI block: two subscribers, then two publishes.
    const subscribeCommands = cli.commands.filter((c) => c.includes(' subscribe '));
    const publishCommands = cli.commands.filter((c) => c.includes(' publish '));
    assert.equal(subscribeCommands.length, 2);
    assert.equal(publishCommands.length, 2);
    const subscribers = subscribeCommands.map((c) => start(c, hub.url, env()));
    try {
      await waitForSubscribers(hub.url, 'demo', 2);
      const ids: string[] = [];
      for (const command of publishCommands) {
        const printed = (await runToEnd(command, hub.url, env())).trim();
        assert.match(printed, /^\d+$/, `${command} prints the message's event id`);
        ids.push(printed);
      }
      // "both print "<local time> hello"" (and the message from stdin)
      for (const subscriber of subscribers) {
        await subscriber.until(/^\S.*\d:\d\d:\d\d.* hello\n.*\d:\d\d:\d\d.* from stdin\n$/);
      }

      // curl block: a stream opened first, the three publishes, the resumes, the stats.
      const [stream, ...rest] = curl.commands;
      assert.match(stream!, /^curl -N \S+\/messages\/subscribe\/demo$/);
      const publishes = rest.filter((c) => c.startsWith('curl -X POST'));
      assert.equal(publishes.length, 3);
      const live = start(stream!, hub.url, env());
      let posted: string[] = [];
      try {
        await live.until(/data: Subscribed to id demo\n\n/);
        for (const command of publishes) posted.push((await runToEnd(command, hub.url, env())).trim());
        await live.until(/data: hello\n\n/);
      } finally {
        live.stop();
      }
      posted = posted.map((answer) => (JSON.parse(answer) as { id: string }).id);
      const all = [...ids, ...posted];
      all.forEach((id, index) => assert.equal(BigInt(id), BigInt(all[0]!) + BigInt(index), 'ids are consecutive'));

      // The stream's sample, with the README's ids mapped onto this hub's.
      const streamSample = curl.samples.get(stream!)!.map((line) => line.replace(/\s{2,}\(.*$/, '').trimEnd());
      const sampleGreetingId = /^id: (\d+)$/.exec(streamSample[0]!)![1]!;
      const toReal = idMapper(sampleGreetingId, ids[1]!);
      const expected = streamSample.map(toReal).join('\n');
      const actual = live.output();
      const sampleTime = /: published (\S+)/.exec(expected)![1]!;
      const realTime = /: published (\S+)/.exec(actual);
      assert.ok(realTime, 'the message frame carries its publish time');
      assert.match(realTime[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // The sample shows the greeting and the first message (the other publishes follow it).
      const firstTwoFrames = actual.split('\n\n').slice(0, 2).join('\n\n');
      assert.equal(firstTwoFrames, expected.replace(sampleTime, realTime[1]!), 'the stream looks like the README sample');

      // The JSON publish answers as the sample says, with the fifth id.
      const jsonPublish = publishes[2]!;
      assert.deepEqual(JSON.parse(toReal(curl.samples.get(jsonPublish)![0]!)), { id: posted[2] });

      // Resuming after the sample's id replays what followed it; `earliest` replays all.
      const resume = rest.find((c) => c.includes('Last-Event-ID'))!;
      const resumed = start(toReal(resume), hub.url, env());
      try {
        await resumed.until(new RegExp(`id: ${posted[2]}\\n`));
        assert.doesNotMatch(resumed.output(), new RegExp(`: published \\S+\\nid: ${posted[0]}\\n`), 'the message resumed after is not replayed');
        assert.doesNotMatch(resumed.output(), /event: gap/, 'an id the hub issued is no gap');
      } finally {
        resumed.stop();
      }
      const earliest = start(rest.find((c) => c.includes('lastEventId=earliest'))!, hub.url, env());
      try {
        await earliest.until(new RegExp(`id: ${posted[2]}\\n`));
        for (const id of all) assert.match(earliest.output(), new RegExp(`: published \\S+\\nid: ${id}\\n`));
      } finally {
        earliest.stop();
      }

      // The id's figures: the sample's JSON, ids mapped, with both CLI subscribers still open.
      const statsCommand = rest.find((c) => /^curl \S+\/messages\/demo$/.test(c))!;
      const statsSample = curl.samples.get(statsCommand)!.find((line) => line.startsWith('{'))!;
      assert.deepEqual(JSON.parse(await runToEnd(statsCommand, hub.url, env())), JSON.parse(idMapper(/"firstId":"(\d+)"/.exec(statsSample)![1]!, all[0]!)(statsSample)));

      // The article's demo stream loops.
      const demo = start(rest.find((c) => c.includes('/messages/sse/demo'))!, hub.url, env());
      try {
        await demo.until(/Looping/);
      } finally {
        demo.stop();
      }
    } finally {
      for (const subscriber of subscribers) subscriber.stop();
    }
  });
});

async function waitForSubscribers(hub: string, id: string, count: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const stats = (await (await fetch(`${hub}/messages/${id}`)).json()) as { subscribers: number };
    if (stats.subscribers >= count) return;
    if (Date.now() > deadline) throw new Error(`only ${stats.subscribers} subscribers on ${id}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
