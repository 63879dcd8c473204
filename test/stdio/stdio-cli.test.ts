/**
 * `porthole stdio` as a command: what it prints, stderr of the program on
 * porthole's stderr, arguments after `--` belong to the program, SIGTERM
 * ends every process, usage errors exit 2, and --help teaches with examples.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { runCli, type CliRun } from '../helpers/cli.js';
import { closed, sleep, waitFor } from '../helpers/net.js';
import { allGone, killAll } from './proc.js';

async function started(run: CliRun): Promise<string> {
  const line = await waitFor(() => /listening on (http:\/\/\S+)/.exec(run.stdout()), 15_000, `porthole stdio to listen:\n${run.stderr()}`);
  return line[1].replace(/^http/, 'ws');
}

describe('porthole stdio (the command)', { timeout: 60_000 }, () => {
  test('serves the program; its stderr comes out prefixed with name and pid; SIGTERM closes clients with 1001, stops the program and exits 0', async () => {
    const run = runCli(['stdio', '127.0.0.1:0', '--name', 'shout', '--', 'sh', '-c', 'echo "hello from $$" >&2; exec sed -u "s/.*/\\U&/"']);
    const pids: number[] = [];
    try {
      const url = await started(run);
      const ws = new WebSocket(`${url}/`);
      const messages: string[] = [];
      ws.on('message', (d) => messages.push(d.toString()));
      await new Promise((ok) => ws.once('open', ok));
      ws.send('quiet please');
      await waitFor(() => messages.length === 1, 5000, 'the answer');
      assert.equal(messages[0], 'QUIET PLEASE');
      const m = await waitFor(() => /\[shout (\d+)\] hello from (\d+)/.exec(run.stderr()), 5000, 'the stderr line');
      assert.equal(m[1], m[2], 'the prefix names the program\'s pid');
      pids.push(Number(m[1]));
      const end = closed(ws);
      run.child.kill('SIGTERM');
      assert.equal((await end).code, 1001);
      assert.equal(await run.exited, 0);
      await allGone(pids);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      killAll(pids);
    }
  });

  test('a second SIGINT (Ctrl-C pressed twice) does not cut the stop short: a program that ignores SIGTERM still gets SIGKILL', async () => {
    const run = runCli(['stdio', '127.0.0.1:0', '--kill-grace', '1', '--', 'sh', '-c', 'trap "" TERM; echo ready; exec sleep 60']);
    const pids: number[] = [];
    try {
      const url = await started(run);
      const ws = new WebSocket(`${url}/`);
      const first = new Promise((ok) => ws.once('message', ok));
      await first;
      pids.push(Number((await waitFor(() => /started pid (\d+)/.exec(run.stderr()), 5000, 'the pid'))[1]));
      run.child.kill('SIGINT');
      await waitFor(() => run.stderr().includes('SIGINT: closing'), 5000, 'the first SIGINT heard');
      run.child.kill('SIGINT');
      assert.equal(await run.exited, 0, `porthole stdio finished its stop and exited 0:\n${run.stderr()}`);
      await allGone(pids, 2000);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      killAll(pids);
    }
  });

  test('options after -- are the program\'s: `-- echo --binary` runs echo with --binary', async () => {
    const run = runCli(['stdio', '127.0.0.1:0', '--', 'echo', '--binary']);
    try {
      const url = await started(run);
      const ws = new WebSocket(`${url}/`);
      const messages: { text: string; isBinary: boolean }[] = [];
      ws.on('message', (d, isBinary) => messages.push({ text: d.toString(), isBinary }));
      const end = await closed(ws);
      assert.equal(end.code, 1000, 'echo exits 0');
      assert.deepEqual(messages, [{ text: '--binary', isBinary: false }]);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  test('a client that floods a program that does not read stdin, past --lines-per-second: porthole holds a bounded amount', async () => {
    // The budget's pause ends on a timer, which must not resume a client that the full stdin pipe holds.
    const run = runCli(['stdio', '127.0.0.1:0', '--lines-per-second', '10', '--', 'sleep', '60']);
    try {
      const url = await started(run);
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${run.child.pid}/status`, 'utf8'))![1]) * 1024;
      const ws = new WebSocket(`${url}/`);
      await new Promise((ok, fail) => (ws.once('open', ok), ws.once('error', fail)));
      const before = rss();
      // The budget spent first (12 small lines fit in the pipe), then 64 MiB in big messages while it is spent.
      for (let i = 0; i < 12; i++) ws.send('x');
      const big = 'a'.repeat(1024 * 1024 - 16);
      for (let i = 0; i < 64; i++) ws.send(big);
      // Sampled until porthole's memory stops growing (five equal readings) or has grown far too much.
      let last = -1;
      let same = 0;
      for (let i = 0; i < 100 && same < 5 && rss() - before < 48 * 1024 * 1024; i++) {
        await sleep(100);
        same = rss() === last ? same + 1 : 0;
        last = rss();
      }
      // stdin's buffer (~1 MiB), a message being read, the WebSocket's buffers: a few MiB, not the 64 sent.
      const grown = rss() - before;
      assert.ok(grown < 32 * 1024 * 1024, `porthole grew by ${(grown / 1048576).toFixed(1)} MiB for a program that reads nothing`);
      ws.terminate();
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  test('usage errors exit 2: no command, a malformed port, a zero --max-processes', async () => {
    for (const args of [['stdio', '8080'], ['stdio', '99999', '--', 'cat'], ['stdio', '8080', '--max-processes', '0', '--', 'cat']]) {
      const run = runCli(args);
      assert.equal(await run.exited, 2, `${args.join(' ')}: ${run.stderr()}`);
    }
  });

  test('--help explains what a client sees and shows examples', async () => {
    const run = runCli(['stdio', '--help']);
    assert.equal(await run.exited, 0);
    const help = run.stdout();
    for (const expected of ['Examples:', 'porthole stdio 8080 -- cat', '@modelcontextprotocol/server-everything', '--shared', '--binary', 'close 1011', 'PH_ERR_STDIO_LIMIT', '--allowed-origin', 'Exit codes:']) {
      assert.ok(help.includes(expected), `--help mentions ${expected}`);
    }
  });
});
