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

/** nginx in front of the hub; `buffering` sets proxy_buffering. */
async function startNginx(hub: TestHub, buffering: boolean): Promise<{ url: string; stop: () => Promise<void> }> {
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
      proxy_http_version 1.1;
      proxy_buffering ${buffering ? 'on' : 'off'};${buffering ? ' gzip on; gzip_types text/event-stream; gzip_min_length 0; gzip_proxied any;' : ''}
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
  it('straight to the hub: clean, with the anti-buffering headers', async (t) => {
    const hub = await startHub({ store: 'memory' });
    t.after(() => hub.close());
    const report = await diagnose({ url: hub.url, count: 6, intervalMs: 100 });
    assert.deepEqual(report.findings, []);
    assert.equal(report.ok, true);
    assert.equal(report.arrivalsMs.length, 6);
    assert.equal(report.headers['x-accel-buffering'], 'no');
    assert.equal(report.headers['cache-control'], 'no-cache, no-transform');
  });

  it('behind nginx with proxy_buffering on, gzip on and no X-Accel-Buffering: buffered and compressed; with buffering off: clean', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
    const hub = await startHub({ store: 'memory' });
    t.after(() => hub.close());
    const buffered = await startNginx(hub, true);
    t.after(() => buffered.stop());
    const report = await diagnose({ url: buffered.url, count: 6, intervalMs: 100, withoutProxyHint: true });
    assert.equal(report.ok, false);
    assert.ok(report.findings.some((f) => f.kind === 'buffered' && f.fix.includes('proxy_buffering off')), JSON.stringify(report));
    assert.ok(report.findings.some((f) => f.kind === 'compressed'), JSON.stringify(report));
    assert.equal(report.headers['x-accel-buffering'], undefined);

    const unbuffered = await startNginx(hub, false);
    t.after(() => unbuffered.stop());
    const clean = await diagnose({ url: unbuffered.url, count: 6, intervalMs: 100, withoutProxyHint: true });
    assert.deepEqual(clean.findings, [], JSON.stringify(clean));
  });
});
