import { Command, Option } from 'commander';
import { HUB_URL_VARIABLE } from '../config/environment.js';
import { diagnose } from '../client/index.js';

/**
 * `sse-relay doctor --url <public hub URL>`: streams timed probe events through the path clients
 * use, then a quiet phase of one heartbeat interval, and reports buffering, compression, cuts
 * (idle timeouts included) and delays, with measured timings and the fix for common proxies.
 * Exit code 1 when something is wrong.
 */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('Check that event streams reach clients unbuffered through proxies (timed probe events).')
    .addOption(new Option('--url <hub>', 'public base URL of the hub, as clients reach it').env(HUB_URL_VARIABLE).default('http://127.0.0.1:3000'))
    .option('--count <n>', 'probe events', '10')
    .option('--interval <ms>', 'interval between probe events', '200')
    .option('--without-proxy-hint', 'ask the hub to leave out X-Accel-Buffering: no')
    .option('--no-idle-check', 'skip the quiet phase (one hub heartbeat interval) that detects idle timeouts')
    .action(async (options: { url: string; count: string; interval: string; withoutProxyHint?: boolean; idleCheck: boolean }) => {
      const report = await diagnose({ url: options.url, count: Number(options.count), intervalMs: Number(options.interval), withoutProxyHint: options.withoutProxyHint, idleCheck: options.idleCheck });
      const out = process.stdout;
      out.write(`headers after ${report.headersMs === undefined ? '-' : Math.round(report.headersMs)} ms; ${report.arrivalsMs.length}/${report.expected} probe events, one every ${report.intervalMs} ms\n`);
      out.write(`arrivals (ms): ${report.arrivalsMs.map((t) => Math.round(t)).join(' ')}\n`);
      for (const name of ['content-encoding', 'x-accel-buffering', 'cache-control']) out.write(`${name}: ${report.headers[name] ?? '(none)'}\n`);
      const { idle } = report;
      if (idle !== undefined) {
        const outcome = idle.survived ? 'the stream stayed open' : `the stream was cut after ${Math.round(idle.cutAfterMs!)} ms`;
        out.write(`idle check: ${idle.silentForMs} ms with only heartbeats (every ${idle.heartbeatIntervalMs} ms): ${outcome}\n`);
      } else if (options.idleCheck) {
        out.write('idle check: not run (the hub sends no heartbeats, or does not offer the idle phase)\n');
      }
      if (report.ok) out.write('ok: events arrive as they are sent\n');
      for (const finding of report.findings) out.write(`${finding.kind}: ${finding.detail}\n  fix: ${finding.fix}\n`);
      process.exitCode = report.ok ? 0 : 1;
    });
}
