/**
 * Runs the built `porthole` CLI as a real child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | string>((ok) => child.on('exit', (code, signal) => ok(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Starts `porthole serve` on a free port and waits for its "listening on" line. */
export async function startServe(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliRun & { url: string; port: number; stop(): Promise<number | string> }> {
  const run = runCli(['serve', '--listen', '127.0.0.1:0', ...args], opts);
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`serve did not start:\n${run.stderr()}`)), 15_000);
    const check = () => {
      const m = /listening on (https?:\/\/\S+)/.exec(run.stderr());
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    run.child.stderr!.on('data', check);
    run.exited.then((code) => fail(new Error(`serve exited ${code}:\n${run.stderr()}`)));
  });
  const port = Number(new URL(url).port);
  return {
    ...run,
    url,
    port,
    stop: async () => {
      if (run.child.exitCode === null) run.child.kill('SIGTERM');
      return run.exited;
    },
  };
}

/** Log lines (JSON) the child wrote to stdout so far. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
