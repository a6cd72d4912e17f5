/**
 * `diagnose()` (and so `sse-relay doctor`) against the hub directly and behind a real nginx on
 * loopback, run as a child process with its own config, pid file and logs in a temp directory.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { diagnose } from '../../src/client/index.js';
import { runCli } from '../helpers/hub-process.js';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually } from '../helpers/sse-client.js';

const NGINX = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What the tests put in nginx's `location /` besides proxy_pass. */
const BUFFERED_AND_GZIP = 'proxy_http_version 1.1; proxy_buffering on; gzip on; gzip_types text/event-stream; gzip_min_length 0; gzip_proxied any;';
const UNBUFFERED = 'proxy_http_version 1.1; proxy_buffering off;';
/**
 * Buffering alone: the hub's X-Accel-Buffering: no is ignored, nothing compresses, and nginx
 * talks HTTP/1.0 to the hub (its default `proxy_http_version`).
 */
const BUFFERED_IGNORING_HINT = 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; gzip off;';
/** The same over HTTP/1.1: nginx forwards each chunk as it comes, buffering on or not. */
const BUFFERED_IGNORING_HINT_HTTP11 = `proxy_http_version 1.1; ${BUFFERED_IGNORING_HINT}`;
/** Streams pass unbuffered, but one silent for 2 s is cut. */
const READ_TIMEOUT_2S = 'proxy_http_version 1.1; proxy_buffering off; proxy_read_timeout 2s;';

/** nginx in front of the hub, with `location` directives. */
async function startNginx(hub: TestHub, location: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'sse-relay-nginx-'));
  const port = await freePort();
  const upstream = new URL(hub.url).host;
  await writeFile(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${upstream};
      ${location}
    }
  }
}
`,
  );
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
  }, 10_000, 'nginx to listen');
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('diagnose(): is the event stream buffered on the way?', () => {
  it('straight to the hub: clean, with the anti-buffering headers, and alive through the idle phase', async (t) => {
    const hub = await startHub({ store: 'memory', heartbeatInterval: 500 });
    t.after(() => hub.close());
    const report = await diagnose({ url: hub.url, count: 6, intervalMs: 100 });
    assert.deepEqual(report.findings, []);
    assert.deepEqual(report.idle, { heartbeatIntervalMs: 500, silentForMs: 1500, survived: true });
    assert.equal(report.ok, true);
    assert.equal(report.arrivalsMs.length, 6);
    assert.equal(report.headers['x-accel-buffering'], 'no');
    assert.equal(report.headers['cache-control'], 'no-cache, no-transform');
  });

  it('behind nginx with proxy_buffering on, gzip on and no X-Accel-Buffering: buffered and compressed; with buffering off: clean', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
    const hub = await startHub({ store: 'memory', heartbeatInterval: 500 });
    t.after(() => hub.close());
    const buffered = await startNginx(hub, BUFFERED_AND_GZIP);
    t.after(() => buffered.stop());
    const report = await diagnose({ url: buffered.url, count: 6, intervalMs: 100, withoutProxyHint: true });
    assert.equal(report.ok, false);
    assert.ok(report.findings.some((f) => f.kind === 'buffered' && f.fix.includes('proxy_buffering off')), JSON.stringify(report));
    assert.ok(report.findings.some((f) => f.kind === 'compressed'), JSON.stringify(report));
    assert.equal(report.headers['x-accel-buffering'], undefined);

    const unbuffered = await startNginx(hub, UNBUFFERED);
    t.after(() => unbuffered.stop());
    const clean = await diagnose({ url: unbuffered.url, count: 6, intervalMs: 100, withoutProxyHint: true });
    assert.deepEqual(clean.findings, [], JSON.stringify(clean));
  });

  it('behind nginx with proxy_buffering on and proxy_ignore_headers X-Accel-Buffering, no gzip: buffered, with the nginx fix', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
    const hub = await startHub({ store: 'memory' });
    t.after(() => hub.close());
    const nginx = await startNginx(hub, BUFFERED_IGNORING_HINT);
    t.after(() => nginx.stop());
    // The hub asks nginx not to buffer (the default); this nginx ignores it.
    const report = await diagnose({ url: nginx.url, count: 6, intervalMs: 100, idleCheck: false });
    assert.equal(report.ok, false);
    assert.deepEqual(report.findings.map((f) => f.kind), ['buffered'], JSON.stringify(report));
    const [buffered] = report.findings;
    assert.match(buffered!.fix, /proxy_buffering off/);
    assert.match(buffered!.fix, /proxy_ignore_headers X-Accel-Buffering/);
    assert.equal(report.headers['content-encoding'], undefined);

    // Measured, not assumed: with an HTTP/1.1 upstream nginx 1.22 passes each chunk on at once.
    const http11 = await startNginx(hub, BUFFERED_IGNORING_HINT_HTTP11);
    t.after(() => http11.stop());
    const clean = await diagnose({ url: http11.url, count: 6, intervalMs: 100, idleCheck: false });
    assert.deepEqual(clean.findings, [], JSON.stringify(clean));
  });

  it('behind nginx with proxy_read_timeout 2s and a 4 s hub heartbeat: cut at an idle timeout, with the fix; a 1 s heartbeat keeps it open', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
    const slowHeartbeat = await startHub({ store: 'memory', heartbeatInterval: 4000 });
    t.after(() => slowHeartbeat.close());
    const nginx = await startNginx(slowHeartbeat, READ_TIMEOUT_2S);
    t.after(() => nginx.stop());
    const report = await diagnose({ url: nginx.url, count: 4, intervalMs: 100 });
    assert.equal(report.ok, false);
    assert.deepEqual(report.findings.map((f) => f.kind), ['cut'], JSON.stringify(report));
    const [cut] = report.findings;
    assert.match(cut!.detail, /idle timeout/);
    assert.match(cut!.detail, /4000 ms/, 'names the heartbeat interval');
    assert.match(cut!.fix, /proxy_read_timeout/);
    assert.match(cut!.fix, /--heartbeat-interval/);
    assert.equal(report.arrivalsMs.length, 4, 'the timed events all arrived: the cut came in the silence');

    const doctor = await runCli(['doctor', '--url', nginx.url, '--count', '4', '--interval', '100'], { timeoutMs: 20_000 });
    assert.equal(doctor.code, 1, doctor.stdout + doctor.stderr);
    assert.match(doctor.stdout, /idle check: 5000 ms with only heartbeats \(every 4000 ms\): the stream was cut after \d+ ms/);
    assert.match(doctor.stdout, /cut: cut at an idle timeout/);
    assert.match(doctor.stdout, /fix: .*proxy_read_timeout 1h/);

    const fastHeartbeat = await startHub({ store: 'memory', heartbeatInterval: 1000 });
    t.after(() => fastHeartbeat.close());
    const kept = await startNginx(fastHeartbeat, READ_TIMEOUT_2S);
    t.after(() => kept.stop());
    const clean = await diagnose({ url: kept.url, count: 4, intervalMs: 100 });
    assert.deepEqual(clean.findings, [], JSON.stringify(clean));
  });
});
