import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';

const MIB = 1024 * 1024;
const TWO_MIB = Buffer.alloc(2 * MIB, 'a');

// A hub in its own process: in-process, client and hub take turns on one event loop and the
// race (the hub closing while the client still sends) hardly ever shows.
describe('a body over --max-body-size (1 MiB)', () => {
  let hub: HubProcess;
  before(async () => {
    hub = await spawnHub(['--store', 'memory']);
  });
  after(async () => {
    hub.child.kill('SIGTERM');
    await hub.exited;
  });

  for (const size of [2, 6]) {
    it(`is answered 413 with its JSON error to fetch, every time (30 sequential tries, ${size} MiB)`, async () => {
      const body = size === 2 ? TWO_MIB : Buffer.alloc(size * MIB, 'a');
      for (let attempt = 0; attempt < 30; attempt++) {
        const res = await fetch(`${hub.url}/messages/big`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
        assert.equal(res.status, 413, `attempt ${attempt}`);
        const json = (await res.json()) as { error: { code: string } };
        assert.equal(json.error.code, 'HUB_ERR_BODY_TOO_LARGE');
      }
    });
  }

  it('is answered 413 when sent chunked (no Content-Length), every time', async () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let offset = 0; offset < TWO_MIB.length; offset += 64 * 1024) controller.enqueue(TWO_MIB.subarray(offset, offset + 64 * 1024));
          controller.close();
        },
      });
      const res = await fetch(`${hub.url}/messages/big`, { method: 'POST', body, headers: { 'content-type': 'text/plain' }, duplex: 'half' } as RequestInit);
      assert.equal(res.status, 413, `attempt ${attempt}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'HUB_ERR_BODY_TOO_LARGE');
    }
  });

  it('closes the connection of a client that keeps sending past the discard bound', async () => {
    const socket = connect(Number(new URL(hub.url).port), '127.0.0.1');
    socket.on('error', () => {});
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('POST /messages/endless HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000000000\r\n\r\n');
    // Write until the hub closes the connection: it must not read a gigabyte.
    const chunk = Buffer.alloc(256 * 1024, 'b');
    let written = 0;
    while (!socket.destroyed && written < 1_000_000_000) {
      if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', resolve).once('close', resolve));
      written += chunk.length;
    }
    await closed;
    assert.ok(written < 200 * 1024 * 1024, `the hub stopped reading after ${written} bytes`);
    // Past the bound the hub closes with unread data, so its kernel sends a reset, which may
    // discard the 413 before this client reads it (TCP, not the hub): what arrives is the 413 or nothing.
    const answer = Buffer.concat(received).toString('latin1');
    if (answer !== '') assert.match(answer, /^HTTP\/1\.1 413/);
  });
});
