/**
 * The interest scenario's tables (markdown): one row per node B and way, the two ways side by
 * side per interest as ratios of the same run, and the churn cost per topic.
 */
import type { CommandCost } from '../cluster/command-stats.js';
import { commandUsPerMessage, deliveredExactly, perMessage, usPerCall, type InterestRow, type InterestRun } from './scenario.js';

const f = (v: number, digits = 1): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

/** The read command of way 1 (in-command time; way 2 hands copies over inside the append script). */
const READ_COMMANDS = ['xread'];

/** Messages B decoded per XREAD it sent (streams; NaN for channels). */
function messagesPerRead(row: InterestRow): number {
  const reads = row.commands.find((c) => c.command === 'xread')?.calls ?? 0;
  return reads > 0 ? row.readerReceived / reads : Number.NaN;
}

function delivery(row: InterestRow): string {
  const c = row.check;
  if (!c) return '–';
  const r = c.reader;
  const exact = deliveredExactly(c);
  return `${exact ? 'yes' : '**no**'}: ${r.received}/${c.expectedReceived}${r.holes ? `, ${r.holes} holes` : ''}${r.duplicates ? `, ${r.duplicates} duplicates` : ''}${c.failed ? `, ${c.failed} appends failed` : ''}`;
}

function commandList(commands: readonly CommandCost[], per: number): string {
  return commands
    .filter((c) => c.usec > 0)
    .map((c) => `${c.command} ${f(c.usec / per, 2)}`)
    .join(', ');
}

export function renderInterestMarkdown(run: InterestRun): string {
  const { sizes } = run;
  const out: string[] = [];
  out.push('### Node-local interest: followed streams against sharded pub/sub (`--scenario interest`)');
  out.push('');
  if (run.error) {
    out.push(`Not run: ${run.error}`);
    return out.join('\n') + '\n';
  }
  out.push(
    `${sizes.masters} masters (Redis ${run.redisServer || '?'}), one shard each; ${sizes.topics} topics, single-topic 100-byte appends with the store's script, ` +
      `${sizes.lanes} in flight; B as its own process; per row a flushed cluster, ${sizes.warmupMs / 1000} s warm-up, ${sizes.windowMs / 1000} s window. ` +
      'Per message appended in the window: CPU of all masters (/proc), the append script\'s in-command time per call and the read commands\' per message (INFO commandstats), ' +
      'bytes Redis sent B (kernel socket counters), B\'s CPU (getrusage) to receive and decode. "Delivered exactly": after the window B had every message its shards ' +
      '(streams) or channels carried, once, no hole. Masters and B share the server core.',
  );
  out.push('');
  out.push('| B wants | way | append script | B follows | messages/s | Redis CPU µs/msg | append µs/call | XREAD µs/msg | msgs/XREAD | bytes → B /msg | B CPU µs/msg | B decoded /msg | B CPU µs/decoded | load 1 min | delivered exactly |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of run.rows) {
    if (row.error) {
      out.push(`| ${row.interest} | ${row.transport} | ${row.script} | – | failed: ${row.error.split('\n')[0]} |||||||||||`);
      continue;
    }
    const follows = row.transport === 'streams' ? `${row.followed} shard${row.followed === 1 ? '' : 's'}` : `${row.followed} channels`;
    out.push(
      `| ${row.interest} | ${row.transport} | ${row.script} | ${follows} | ${f(row.published / row.windowSeconds, 0)} | ${f(perMessage(row, row.redisCpuUs))} | ` +
        `${f(usPerCall(row.commands, 'evalsha'), 2)} | ${f(commandUsPerMessage(row, READ_COMMANDS), 2)} | ${f(messagesPerRead(row), 1)} | ${f(perMessage(row, row.bytesToReader), 0)} | ` +
        `${f(perMessage(row, row.readerCpuUs), 2)} | ${f(perMessage(row, row.readerReceived), 2)} | ${f(row.readerReceived > 0 ? row.readerCpuUs / row.readerReceived : Number.NaN, 2)} | ${f(row.loadAverage, 2)} | ${delivery(row)} |`,
    );
  }
  out.push('');
  out.push('Channels ÷ streams, same interest, same run:');
  out.push('');
  out.push('| B wants | append µs/call | of the extra: ZREVRANGE (prev) µs/call | SPUBLISH µs/call | Redis CPU /msg | bytes → B /msg | B CPU /msg |');
  out.push('|---|---|---|---|---|---|---|');
  for (const channels of run.rows.filter((r) => r.transport === 'channels' && !r.error)) {
    const streams = run.rows.find((r) => r.transport === 'streams' && r.interest === channels.interest && !r.error);
    if (!streams) continue;
    const append = (r: InterestRow): number => usPerCall(r.commands, 'evalsha');
    out.push(
      `| ${channels.interest} | ${f(append(channels), 2)} ÷ ${f(append(streams), 2)} = ${ratio(append(channels), append(streams))} | ${f(usPerCall(channels.commands, 'zrevrange'), 2)} | ${f(usPerCall(channels.commands, 'spublish'), 2)} | ` +
        `${ratio(perMessage(channels, channels.redisCpuUs), perMessage(streams, streams.redisCpuUs))} | ` +
        `${ratio(perMessage(channels, channels.bytesToReader), perMessage(streams, streams.bytesToReader))} | ${ratio(perMessage(channels, channels.readerCpuUs), perMessage(streams, streams.readerCpuUs))} |`,
    );
  }
  out.push('');
  out.push('Churn, per operation (no publishing meanwhile):');
  out.push('');
  out.push('| way | operation | operations | Redis in-command µs (by command) | Redis CPU µs (/proc) | B CPU µs |');
  out.push('|---|---|---|---|---|---|');
  for (const c of run.churn) {
    if (c.error) {
      out.push(`| ${c.transport} | failed: ${c.error.split('\n')[0]} | | | | |`);
      continue;
    }
    const sent = c.commands.filter((x) => c.sent.includes(x.command));
    const inCommand = sent.reduce((sum, x) => sum + x.usec, 0);
    out.push(
      `| ${c.transport} | ${c.operation} | ${c.operations} | ${f(inCommand / c.operations, 2)} (${commandList(sent, c.operations)}) | ${f(c.redisCpuUs / c.operations)} | ${f(c.readerCpuUs / c.operations)} |`,
    );
  }
  const counted = run.instructions;
  if (counted) {
    out.push('');
    if (counted.unavailable) out.push(`Instructions: not counted (${counted.unavailable}).`);
    else {
      out.push(`Redis instructions per message (callgrind, one standalone redis-server, ${counted.topics} topics, load-independent), against the store's append alone with as many appends in flight:`);
      out.push('');
      out.push('| phase | instructions/msg | ÷ append | XREAD calls/msg |');
      out.push('|---|---|---|---|');
      for (const p of counted.phases) {
        const base = counted.phases.find((b) => b.inFlight === p.inFlight && !/SPUBLISH|following/.test(b.phase));
        const per = p.instructions / p.messages;
        out.push(`| ${p.phase} | ${f(per, 0)} | ${base ? ratio(per, base.instructions / base.messages) : '–'} | ${f(p.reads / p.messages, 2)} |`);
      }
    }
  }
  out.push('');
  out.push(`Load average (1, 5, 15 min): ${run.loadAverage.start.map((v) => v.toFixed(2)).join(', ')} at the start, ${run.loadAverage.end.map((v) => v.toFixed(2)).join(', ')} at the end.`);
  return out.join('\n') + '\n';
}
