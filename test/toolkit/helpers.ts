/**
 * Helpers for the toolkit tests: the built CLI and the Python peers run as real
 * child processes; every one is stopped by the test that started it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI (`npx tsc -p tsconfig.json` writes dist/). */
export const CLI = join(ROOT, 'dist/cli/main.js');
/** Debian's interpreter, which has python3-websockets (the `python3` on PATH may not). */
export const PYTHON = '/usr/bin/python3';
export const FIXTURES = join(ROOT, 'test/fixtures/toolkit');

/** Generous: the machine has 2 cores shared with other suites. */
export const DEADLINE_MS = 20_000;

if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with npx tsc -p tsconfig.json`);

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process whose output is collected, with deadline-based waiting. */
export class Child {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  exit: Exit | undefined;
  readonly exited: Promise<Exit>;
  private readonly wake = new Set<() => void>();

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
  ) {
    this.proc = spawn(command, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.stdout += s;
      this.notify();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.stderr += s;
      this.notify();
    });
    // A child that exits before reading its stdin must not crash the test with EPIPE.
    this.proc.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.proc.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  stdoutLines(): string[] {
    return this.stdout.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
  }

  /** Resolves once `check()` is true; fails with the output so far at the deadline or if the child exits first. */
  async waitFor(what: string, check: () => boolean, timeoutMs = DEADLINE_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.exit) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}\n${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.describe()}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wake.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.wake.add(done);
      });
    }
  }

  /** Waits for the exit, killing the child (and failing) at the deadline. */
  async waitExit(timeoutMs = DEADLINE_MS): Promise<Exit> {
    await this.waitFor('exit', () => this.exit !== undefined, timeoutMs).catch(async (err: Error) => {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw err;
    });
    return this.exit!;
  }

  /** Stops the child if it still runs: `signal`, then SIGKILL after 5 s. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (this.exit) return this.exit;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.stdout}\n--- ${this.name} stderr ---\n${this.stderr}`;
  }

  private notify(): void {
    for (const w of [...this.wake]) w();
  }
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
  /** stdout and stderr, labelled, for assertion messages. */
  output: string;
}

/** Runs `porthole ARGS` to the end; `input` is written to its stdin, which is then closed. */
export async function runCli(args: readonly string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = new Child('porthole', process.execPath, [CLI, ...args]);
  child.proc.stdin!.end(opts.input ?? '');
  const exit = await child.waitExit(opts.timeoutMs ?? DEADLINE_MS);
  return { ...exit, stdout: child.stdout, stderr: child.stderr, output: child.describe() };
}

/** Starts `porthole ARGS` in the background; stopped when the test ends. */
export function startCli(t: TestContext, args: readonly string[]): Child {
  const child = new Child('porthole', process.execPath, [CLI, ...args]);
  t.after(() => child.stop('SIGKILL'));
  return child;
}

/** Starts a Python fixture; stopped when the test ends. Its stdin stays open (the fixtures exit when it closes). */
export function startPython(t: TestContext, script: string, args: readonly string[]): Child {
  const child = new Child(script, PYTHON, [join(FIXTURES, script), ...args]);
  t.after(() => child.stop());
  return child;
}

export interface Recorded {
  event: 'listening' | 'connect' | 'message' | 'closed';
  path?: string;
  port?: number;
  headers?: [string, string][];
  subprotocol?: string | null;
  extensions?: string[];
  type?: 'text' | 'binary';
  data?: string;
  hex?: string;
  code?: number | null;
  reason?: string;
}

export interface RecordingServer {
  port: number;
  child: Child;
  url(path: string, scheme?: 'ws' | 'wss' | 'http'): string;
  records(): Recorded[];
  /** Waits for a record matching `match` and returns it. */
  waitForRecord(what: string, match: (r: Recorded) => boolean): Promise<Recorded>;
  /** Waits until `count` messages were recorded; returns them as text, or `0x…` for binary. */
  waitForMessages(count: number): Promise<string[]>;
}

/** Starts test/fixtures/toolkit/recording_server.py (see its docstring for the paths it serves). */
export async function startRecordingServer(t: TestContext, tls?: { cert: string; key: string }): Promise<RecordingServer> {
  const child = startPython(t, 'recording_server.py', tls ? ['--tls', tls.cert, tls.key] : []);
  await child.waitFor('the recording server to listen', () => child.stdoutLines().length > 0);
  const first = JSON.parse(child.stdoutLines()[0]) as Recorded;
  const port = first.port!;
  const records = () => child.stdoutLines().map((l) => JSON.parse(l) as Recorded);
  return {
    port,
    child,
    url: (path, scheme = tls ? 'wss' : 'ws') => `${scheme}://127.0.0.1:${port}${path}`,
    records,
    async waitForRecord(what, match) {
      await child.waitFor(what, () => records().some(match));
      return records().find(match)!;
    },
    async waitForMessages(count) {
      const messages = () => records().filter((r) => r.event === 'message');
      await child.waitFor(`${count} recorded messages`, () => messages().length >= count);
      return messages().map((r) => (r.type === 'binary' ? `0x${r.hex}` : r.data!));
    },
  };
}

/** The value of a recorded handshake header (names compared case-insensitively). */
export function header(r: Recorded, name: string): string | undefined {
  return r.headers?.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
