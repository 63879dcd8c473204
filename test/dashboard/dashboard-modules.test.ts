/**
 * The dashboard's browser modules that need no DOM, run in Node as they are
 * served: the Server-Sent Events parser (fed the way a fetch stream feeds it,
 * in arbitrary chunks) and the numbers and times the tables show.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

// Plain JavaScript served as-is (no types): imported by URL so the test's typecheck stays strict.
const load = (file: string): Promise<any> => import(new URL(`../../dashboard/${file}`, import.meta.url).href);

interface Msg {
  event: string;
  data: string;
}

async function parse(chunks: string[]): Promise<Msg[]> {
  const { SseParser } = await load('sse.js');
  const out: Msg[] = [];
  const p = new SseParser((m: Msg) => out.push(m));
  for (const c of chunks) p.push(c);
  return out;
}

test('SSE: named events, multi-line data, comments and keep-alives', async () => {
  const text = ': keep-alive\n\nevent: tunnels\ndata: {"tunnels":[]}\n\ndata: one\ndata: two\n\nevent: close\ndata:{"id":1}\n\n';
  assert.deepEqual(await parse([text]), [
    { event: 'tunnels', data: '{"tunnels":[]}' },
    { event: 'message', data: 'one\ntwo' },
    { event: 'close', data: '{"id":1}' },
  ]);
});

test('SSE: the same messages whatever the chunking, CRLF split between chunks included', async () => {
  const text = 'event: apps\r\ndata: {"apps":[1]}\r\n\r\n: c\r\ndata: é ✓\r\n\r\nevent: x\rdata: cr only\r\r';
  const expected = await parse([text]);
  assert.deepEqual(expected, [
    { event: 'apps', data: '{"apps":[1]}' },
    { event: 'message', data: 'é ✓' },
    { event: 'x', data: 'cr only' },
  ]);
  assert.deepEqual(await parse(['data: a\r', '', '\ndata: b\r', '\n\r\n']), [{ event: 'message', data: 'a\nb' }], 'an empty chunk between CR and LF');
  for (let size = 1; size <= 7; size++) {
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
    assert.deepEqual(await parse(chunks), expected, `chunks of ${size}`);
  }
});

test('SSE: a message is only dispatched at its blank line; an event name does not leak into the next message', async () => {
  assert.deepEqual(await parse(['event: close\ndata: half']), []);
  assert.deepEqual(await parse(['event: close\n\ndata: plain\n\n']), [{ event: 'message', data: 'plain' }]);
  assert.deepEqual(await parse(['data\n\n', 'id: 7\nretry: 10\ndata:  two spaces\n\n']), [
    { event: 'message', data: '' },
    { event: 'message', data: ' two spaces' },
  ]);
});

test('formats bytes, durations and WebSocket close codes as the tables show them', async () => {
  const f = await load('format.js');
  assert.equal(f.formatBytes(0), '0 B');
  assert.equal(f.formatBytes(1023), '1023 B');
  assert.equal(f.formatBytes(1536), '1.5 KiB');
  assert.equal(f.formatBytes(200 * 1024 * 1024), '200 MiB');
  assert.equal(f.formatBytes(undefined), '—');
  assert.equal(f.formatDuration(850), '850 ms');
  assert.equal(f.formatDuration(12_400), '12 s');
  assert.equal(f.formatDuration(245_000), '4 m 05 s');
  assert.equal(f.formatDuration(3 * 3600_000 + 2 * 60_000), '3 h 02 m');
  assert.equal(f.formatDuration(53 * 3600_000), '2 d 5 h');
  assert.equal(f.formatDuration(-1), '—');
  assert.equal(f.formatUptime(415), '0 s');
  assert.equal(f.formatUptime(-30), '0 s', 'a clock a little behind the server shows no negative uptime');
  assert.equal(f.formatUptime(61_999), '1 m 01 s');
  assert.equal(f.closeCodeMeaning(1000), 'normal');
  assert.equal(f.closeCodeMeaning(1008), 'policy violation');
  assert.equal(f.closeCodeMeaning(4001), 'application-defined');
  assert.equal(f.closeCodeMeaning(null), 'no close frame');
  assert.equal(f.toMs('1970-01-01T00:00:01.000Z'), 1000);
  assert.equal(f.toMs('not a time'), null);
  assert.equal(f.formatIso('nope'), undefined);
});
