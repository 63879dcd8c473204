/**
 * `porthole connect` at a terminal: a real pseudo-terminal (Python's `pty`,
 * test/fixtures/toolkit/pty_session.py) types into the CLI, against the
 * recording Python `websockets` server.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLI, startPython, startRecordingServer } from './helpers.js';

/**
 * What a person sees at the end: a tiny terminal that applies the few control
 * sequences readline writes (column moves, erase line, erase to end).
 */
function screen(output: string): string {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  const re = /\x1b\[(\d*)([A-Za-z])|\r|\n|[^\x1b\r\n]+/g;
  for (const m of output.matchAll(re)) {
    const [all, n, op] = m;
    if (all === '\r') col = 0;
    else if (all === '\n') {
      row++;
      col = 0;
      lines[row] ??= '';
    } else if (op === 'G') col = Math.max(0, Number(n || 1) - 1);
    else if (op === 'K' && n === '2') lines[row] = '';
    else if (op === 'K' || op === 'J') lines[row] = lines[row].slice(0, col);
    else if (!op) {
      lines[row] = lines[row].padEnd(col).slice(0, col) + all + lines[row].slice(col + all.length);
      col += all.length;
    }
  }
  return lines.join('\n');
}

test('at a terminal: a "> " prompt, "< text" answers, /ping shows its pong, Ctrl-C closes with 1000 and exits 0', async (t) => {
  const server = await startRecordingServer(t);
  const steps = [
    ['expect', '> '],
    ['send', 'hello tty\r'],
    ['expect', '< hello tty'],
    ['send', '/ping x\r'],
    ['expect', 'pong received: "x"'],
    ['send', '\u0003'],
    ['expect', 'closed 1000 (normal closure)'],
  ];
  const session = startPython(t, 'pty_session.py', [JSON.stringify(steps), '--', process.execPath, CLI, 'connect', server.url('/echo')]);
  const exit = await session.waitExit(40_000);
  assert.equal(exit.code, 0, session.describe());
  const result = JSON.parse(session.stdoutLines()[0]) as { output: string; exit: number | null; error: string | null };
  assert.equal(result.error, null, result.output);
  assert.equal(result.exit, 0, result.output);
  const shown = screen(result.output);
  assert.match(shown, /^> hello tty$/m, 'the typed line stays after the prompt');
  assert.match(shown, /^< hello tty$/m);
  assert.match(shown, /^pong received: "x"$/m);
  assert.match(shown, /^closed 1000 \(normal closure\)$/m, 'the prompt is gone when the close is printed');
  assert.deepEqual(await server.waitForMessages(1), ['hello tty']);
  const closed = await server.waitForRecord('the close', (r) => r.event === 'closed');
  assert.equal(closed.code, 1000);
});
