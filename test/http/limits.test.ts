import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { eventually, openStream, publish, type TestStream } from '../helpers/sse-client.js';

describe('connection limits and timeouts', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory', maxConnectionsPerIp: 4, maxConnections: 6, headersTimeout: 500 });
  });
  after(() => hub.close());

  it('answers 429 with Retry-After past the per-address cap, and admits again once a slot frees', async () => {
    const streams: TestStream[] = [];
    for (let i = 0; i < 4; i++) streams.push(await openStream(`${hub.url}/messages/subscribe/capped`));
    for (const s of streams) assert.equal(s.status, 200);
    const refused = await openStream(`${hub.url}/messages/subscribe/capped`, { Connection: 'close' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '5');
    await refused.ended;
    assert.match(refused.raw(), /HUB_ERR_TOO_MANY_CONNECTIONS/);

    streams.pop()!.close();
    await eventually(() => hub.hub.subscriberCount('capped') === 3, 5000, 'a slot to free');
    const admitted = await openStream(`${hub.url}/messages/subscribe/capped`);
    assert.equal(admitted.status, 200);
    streams.push(admitted);
    for (const s of streams) s.close();
    await eventually(() => hub.hub.subscriberCount('capped') === 0, 5000, 'streams to close');
  });

  it('closes a client that sends its headers a byte at a time, while others are served', async () => {
    const { port } = new URL(hub.url);
    const slow = connect(Number(port), '127.0.0.1');
    slow.on('error', () => {});
    let closed = false;
    slow.on('close', () => (closed = true));
    const request = 'GET /messages/subscribe/slowloris HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(200);
    let i = 0;
    const drip = setInterval(() => {
      if (i < request.length && !closed) slow.write(request[i++]!);
    }, 50);
    try {
      const normal = await openStream(`${hub.url}/messages/subscribe/normal`);
      await normal.waitForCount(1);
      const id = await publish(hub.url, 'normal', 'still served');
      await normal.waitFor((e) => e.at(-1)?.id === id);
      normal.close();
      await eventually(() => closed, 10_000, 'the slow-header client to be cut off');
      assert.ok(i < request.length, 'cut off before it finished its headers');
    } finally {
      clearInterval(drip);
      slow.destroy();
    }
  });
});
