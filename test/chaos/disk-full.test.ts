/**
 * The SQLite data directory on a real filesystem that fills up (a 4 MiB tmpfs, topped up with a
 * filler file by "another process"): publishes then fail with 507 HUB_ERR_STORE_FULL (or 503
 * HUB_ERR_STORE_UNAVAILABLE) in the documented shape, never a 500 or a crash; subscribers stay
 * connected; nothing acknowledged is lost; and when space returns the hub publishes again
 * without a restart, and after one its database is intact.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { eventually, openStream, post } from '../helpers/sse-client.js';
import { mountTinyFs } from './tiny-fs.js';

const MESSAGE = 'x'.repeat(8 * 1024);

describe('a data directory on a filesystem that fills up', () => {
  it('refuses publishes clearly while full, loses nothing acknowledged, recovers when space returns', async (t) => {
    const fs = await mountTinyFs(4);
    if (typeof fs === 'string') return t.skip(fs);
    const hubs: HubProcess[] = [];
    t.after(async () => {
      for (const hub of hubs) hub.child.kill('SIGKILL');
      await Promise.all(hubs.map((h) => h.exited));
      await fs.unmount();
    });
    const dataDir = join(fs.dir, 'data');
    const start = async (): Promise<HubProcess> => {
      const hub = await spawnHub(['--data-dir', dataDir, '--retention-count', '0', '--retention-age', '0']);
      hubs.push(hub);
      return hub;
    };
    const hub = await start();
    const stream = await openStream(`${hub.url}/messages/subscribe/full`);
    await stream.waitForCount(1);

    // Someone else fills the disk, leaving the hub about 600 KiB.
    const filler = join(fs.dir, 'filler');
    await writeFile(filler, Buffer.alloc(Math.max(0, fs.free() - 600 * 1024)));

    const acknowledged: { id: string; data: string }[] = [];
    const refusals: { status: number; code: string; message: string }[] = [];
    // Four publishers at once, so that commits group several messages and a failing group
    // commit refuses all of them.
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (refusals.length < 20 && next < 2000) {
          const data = `${next++} ${MESSAGE}`;
          const res = await post(`${hub.url}/messages/full`, data, { 'content-type': 'text/plain' });
          if (res.status === 200) acknowledged.push({ id: res.json.id, data });
          else refusals.push({ status: res.status, code: res.json?.error?.code, message: res.json?.error?.message });
        }
      }),
    );
    acknowledged.sort((a, b) => Number(a.id) - Number(b.id));
    t.diagnostic(`${acknowledged.length} publishes acknowledged before the disk filled; then ${refusals[0]?.status} ${refusals[0]?.code}: ${refusals[0]?.message}`);
    assert.ok(acknowledged.length > 10, 'publishing worked before the disk filled');
    assert.ok(refusals.length >= 20, 'publishes are refused once the disk is full');
    for (const r of refusals) {
      assert.ok((r.status === 507 && r.code === 'HUB_ERR_STORE_FULL') || (r.status === 503 && r.code === 'HUB_ERR_STORE_UNAVAILABLE'), JSON.stringify(r));
      assert.ok(r.message.length > 0);
    }
    // The hub still serves: health, and the subscriber is connected with every acknowledged message.
    assert.equal((await fetch(`${hub.url}/healthz`)).status, 200);
    await stream.waitFor((events) => events.at(-1)?.id === acknowledged.at(-1)!.id, 5000);
    assert.deepEqual(stream.events.slice(1).map((e) => e.id), acknowledged.map((m) => m.id));

    // Space returns: publishing resumes without a restart.
    await rm(filler);
    let recovered: string | undefined;
    await eventually(async () => {
      const res = await post(`${hub.url}/messages/full`, 'after the disk was freed', { 'content-type': 'text/plain' });
      if (res.status === 200) recovered = res.json.id;
      return res.status === 200;
    }, 10_000, 'a publish to succeed once space returned');
    acknowledged.push({ id: recovered!, data: 'after the disk was freed' });
    await stream.waitFor((events) => events.at(-1)?.id === recovered, 5000);
    stream.close();

    // Restart: every acknowledged message is there, once, in order, and the database is intact.
    hub.child.kill('SIGTERM');
    assert.equal(await hub.exited, 0);
    const db = new Database(join(dataDir, 'sse-relay.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      db.close();
    }
    const again = await start();
    const replay = await openStream(`${again.url}/messages/subscribe/full?lastEventId=earliest`);
    try {
      await replay.waitFor((events) => events.at(-1)?.id === recovered, 10_000);
      assert.deepEqual(
        replay.events.slice(1).map((e) => ({ id: e.id, data: e.data })),
        acknowledged,
        'every acknowledged message, once, in order',
      );
    } finally {
      replay.close();
    }
  });
});
