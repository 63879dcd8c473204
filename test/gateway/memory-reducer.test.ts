import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import v8 from 'node:v8';
import { subscribe, type EventMap } from '../../src/events.js';
import { nativeBinding } from '../../src/gateway/native-binding.js';
import { startGateway } from '../helpers/net.js';

/** One HTTP request on its own connection, answered and closed. */
function oneRequest(port: number): Promise<void> {
  return new Promise((ok, fail) => {
    const s = net.connect(port, '127.0.0.1', () => s.end('GET /_porthole/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    s.on('data', () => {});
    s.on('close', () => ok());
    s.on('error', fail);
  });
}

const newSpaceMiB = () => (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 1048576;

test('after a burst of connections and two quiet seconds, the gateway gives memory back once and logs it as a memory event', async () => {
  const events: EventMap['memory'][] = [];
  const off = subscribe('memory', (e) => events.push(e));
  const g = await startGateway({ apps: [] });
  try {
    // 2,000 connections, 50 at a time.
    for (let i = 0; i < 40; i++) await Promise.all(Array.from({ length: 50 }, () => oneRequest(g.port)));
    const deadline = Date.now() + 15_000;
    while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(events.length, 1, 'one memory event after the burst');
    const [e] = events;
    assert.equal(e.action, 'collected');
    assert.ok(e.connections >= 2000, `counted ${e.connections} connections`);
    assert.ok(e.ms >= 0 && e.heapAfterMiB > 0 && e.heapAfterMiB <= e.heapBeforeMiB + 1, JSON.stringify(e));
    // V8's low-memory collection (the native addon's reduceMemory) leaves the young generation at its smallest.
    assert.ok(newSpaceMiB() <= 4, `new space ${newSpaceMiB()} MiB`);
    // Once per burst: quiet seconds after it do not collect again.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(events.length, 1);
  } finally {
    off();
    await g.close();
  }
});

test('the native addon gives V8 its low-memory notification (reduceMemory answers true on Linux)', () => {
  const { binding, error } = nativeBinding();
  assert.ok(binding, `the addon is not loaded: ${error}`);
  const before = newSpaceMiB();
  assert.equal(binding.reduceMemory(), true);
  assert.ok(newSpaceMiB() <= Math.max(before, 4));
});
