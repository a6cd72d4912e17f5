import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHub, type TestHub } from '../helpers/hub.js';
import { openStream } from '../helpers/sse-client.js';

describe('an over-long Last-Event-ID', () => {
  let hub: TestHub;
  before(async () => {
    hub = await startHub({ store: 'memory' });
  });
  after(() => hub.close());

  it('is reported in the gap event in words, not as an internal marker', async () => {
    const stream = await openStream(`${hub.url}/messages/subscribe/long-cursor`, { 'Last-Event-ID': '9'.repeat(2000) });
    try {
      await stream.waitFor((events) => events.some((event) => event.event === 'gap'));
      const gap = JSON.parse(stream.events.find((event) => event.event === 'gap')!.data) as { lastEventId: string };
      assert.doesNotMatch(gap.lastEventId, /\u0000|too-long/);
      assert.match(gap.lastEventId, /longer than 1024 characters/);
    } finally {
      stream.close();
    }
  });
});
