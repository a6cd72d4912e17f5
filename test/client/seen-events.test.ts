import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeenEvents } from '../../src/client/seen-events.js';

describe('SeenEvents: what a shared-tab subscription drops as a repeat', () => {
  it('drops an event delivered before, keeps an update that reuses an id with other data, and keeps events without an id', () => {
    const seen = new SeenEvents();
    assert.equal(seen.firstTime({ id: '17', event: 'message', data: 'a' }), true);
    assert.equal(seen.firstTime({ id: '17', event: 'message', data: 'a' }), false, 'a replayed event');
    assert.equal(seen.firstTime({ id: 'urn:x', event: 'message', data: 'first' }), true);
    assert.equal(seen.firstTime({ id: 'urn:x', event: 'message', data: 'second' }), true, 'a Mercure id reused for another update');
    assert.equal(seen.firstTime({ id: 'urn:x', event: 'note', data: 'first' }), true, 'another type');
    assert.equal(seen.firstTime({ event: 'gap', data: '{}' }), true);
    assert.equal(seen.firstTime({ event: 'gap', data: '{}' }), true, 'notices carry no id and always arrive');
  });

  it('remembers only the most recent events (bounded memory)', () => {
    const seen = new SeenEvents(3);
    for (const id of ['1', '2', '3', '4']) assert.equal(seen.firstTime({ id, event: 'message', data: id }), true);
    assert.equal(seen.firstTime({ id: '4', event: 'message', data: '4' }), false);
    assert.equal(seen.firstTime({ id: '1', event: 'message', data: '1' }), true, 'the oldest was forgotten');
  });
});
