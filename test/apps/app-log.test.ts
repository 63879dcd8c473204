// An app's stdout and stderr go to {dataDir}/logs/{name}.log (rotated to
// .log.1 past logMaxBytes) and to an in-memory tail that `logs` reads and
// `followLogs` streams.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TAIL_LINES } from '../../src/apps/app-log.js';
import { app, harness, waitFor } from '../fixtures/apps/harness.js';

const MAX = 4096;
const LINES = 1200;
/** 1200 numbered lines (~10 bytes each: ~12 KiB, several rotations), then it idles. */
const CHATTY = `i=0; while [ $i -lt ${LINES} ]; do echo "line $(printf %04d $i)"; i=$((i+1)); done; exec sleep 300`;

const expected = (i: number) => `line ${String(i).padStart(4, '0')}`;

test('output reaches the log file, which rotates past logMaxBytes; logs(n) returns the last n lines', async (t) => {
  const h = harness(t, { logMaxBytes: MAX });
  await h.sup.set(app({ name: 'chatty', cmd: CHATTY }));
  await h.sup.start('chatty');
  const file = path.join(h.dataDir, 'logs', 'chatty.log');
  const last = expected(LINES - 1);
  await waitFor('the last line in the file', () => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(`${last}\n`));

  assert.deepEqual(h.sup.logs('chatty', 3), [expected(LINES - 3), expected(LINES - 2), last]);
  assert.equal(h.sup.logs('chatty', 5000).length, TAIL_LINES, 'the tail keeps the last 1000 lines');
  assert.deepEqual(h.sup.logs('chatty', 0), []);
  assert.ok(h.sup.logs('chatty', 5000).every((l) => l.startsWith('line ')), 'the tail holds the newest lines only');

  const current = fs.readFileSync(file, 'utf8');
  const rotated = fs.readFileSync(`${file}.1`, 'utf8');
  assert.ok(Buffer.byteLength(current) <= MAX, `the live file stays under the limit (${Buffer.byteLength(current)})`);
  assert.ok(Buffer.byteLength(rotated) <= MAX && Buffer.byteLength(rotated) > MAX / 2, 'the .1 file holds the previous generation');
  assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ['chatty.log', 'chatty.log.1'], 'one generation kept');
  // The two files are consecutive: nothing lost at the rotation.
  const tail = [...rotated.trimEnd().split('\n'), ...current.trimEnd().split('\n')].filter((l) => l.startsWith('line '));
  const first = Number(tail[0].split(' ')[1]);
  assert.deepEqual(tail, Array.from({ length: LINES - first }, (_, i) => expected(first + i)));
});

test('followLogs sees each new line of stdout and stderr until unsubscribed', async (t) => {
  const h = harness(t);
  await h.sup.set(app({ name: 'ticker', cmd: 'i=0; while :; do echo "tick $i"; echo "tock $i" >&2; i=$((i+1)); sleep 0.05; done' }));
  assert.throws(() => h.sup.followLogs('nobody', () => {}), { code: 'PH_ERR_APP_UNKNOWN' });
  const seen: string[] = [];
  const unsubscribe = h.sup.followLogs('ticker', (line) => seen.push(line));
  await h.sup.start('ticker');
  await waitFor('three ticks', () => seen.filter((l) => l.startsWith('tick ')).length >= 3);
  unsubscribe();
  const count = seen.length;
  // Each pipe keeps its order (the order across the two pipes is not defined).
  for (const word of ['tick', 'tock']) {
    const lines = seen.filter((l) => l.startsWith(`${word} `));
    assert.ok(lines.length >= 2);
    assert.deepEqual(lines, lines.map((_, i) => `${word} ${i}`), `every ${word} line, in order`);
  }
  assert.ok(seen[0].startsWith('[porthole] started pid'), 'supervisor notes are in the stream too');
  await waitFor('more ticks in the tail', () => h.sup.logs('ticker', 1)[0] !== seen[seen.length - 1]);
  assert.equal(seen.length, count, 'no call after unsubscribe');
});

test('a flood of output is written whole and in order (batched, with backpressure)', async (t) => {
  const h = harness(t, { logMaxBytes: 64 * 1024 * 1024 });
  const count = 200_000;
  await h.sup.set(app({ name: 'flood', cmd: `seq 1 ${count}; exec sleep 300` }));
  await h.sup.start('flood');
  const file = path.join(h.dataDir, 'logs', 'flood.log');
  // The supervisor's own notes share the file and may come anywhere, also after
  // the app's last line: the app never listens on its port, so once it has been
  // starting 2 s a "[porthole] not ready yet" note follows whatever was read by then.
  const content = await waitFor('the last line in the file', () => {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return text.includes(`\n${count}\n`) ? text : undefined;
  }, 30_000);
  const lines = content.split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a whole line');
  const output = lines.filter((l) => !l.startsWith('[porthole] '));
  assert.equal(output.length, count, 'every line once, nothing else but supervisor notes');
  assert.ok(output.every((n, i) => n === String(i + 1)), 'every line once, in order');
  const tail = h.sup.logEntries('flood', 10).filter((e) => e.stream === 'stdout').map((e) => e.text);
  assert.deepEqual(tail.slice(-2), [String(count - 1), String(count)]);
});
