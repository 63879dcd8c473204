/**
 * Real Python peers (Debian's packages, run with /usr/bin/python3: the
 * `python3` on PATH may be another interpreter without them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';

export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/peers/${name}`, import.meta.url));
}

/** Starts a Python fixture that prints its port as its first line. */
export async function startPython(script: string, args: string[] = []): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`${script} did not start: ${err}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    child.once('exit', (code) => fail(new Error(`${script} exited ${code}: ${err}`)));
  });
  return {
    port,
    child,
    stop: () =>
      new Promise((ok) => {
        if (child.exitCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill('SIGKILL');
      }),
  };
}
