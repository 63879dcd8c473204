/**
 * Runs a shell recipe from the docs as a reader would type it: line by line,
 * `CMD &` started in the background (and waited for until it listens, as a
 * reader waits for its first line), every other line to its end. The
 * recipe is found after `<!-- recipe: NAME -->` in its file, in the first
 * ```sh block.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The lines of the recipe NAME in FILE (relative to the repository). */
export function readRecipe(file: string, name: string): string[] {
  const doc = readFileSync(join(ROOT, file), 'utf8');
  const at = doc.indexOf(`<!-- recipe: ${name} -->`);
  assert.ok(at !== -1, `${file} has the recipe ${name}`);
  const m = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m, `${file}: a sh block follows the recipe ${name}`);
  return m[1].trim().split('\n');
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

export interface RecipeOutput {
  /** Exit status (null for a background line). */
  status: number | null;
  /** Its stdout then stderr. */
  out: string;
}

export interface RecipeRun {
  outputs: RecipeOutput[];
  /** SIGTERM to every background line's process group (npx runs the CLI as its child), and waits for them. */
  stop(): Promise<void>;
}

const RESERVED = '/proc/sys/net/ipv4/ip_local_reserved_ports';

/**
 * Keeps the kernel from giving `ports` to outgoing connections (ip_local_reserved_ports)
 * while a recipe uses them, as root: a fixed port inside the ephemeral range could
 * otherwise be held by a connection of a test running alongside when the recipe binds it.
 * Returns what gives them back (only these: another test's reservations stay).
 */
export function reserveFromEphemeral(ports: readonly number[]): () => void {
  if (process.getuid?.() !== 0) return () => undefined;
  const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const mine = ports.filter((p) => p >= lo && p <= hi);
  if (!mine.length) return () => undefined;
  // The kernel shows the list as ports and ranges ("50000,60000-60010"), merging neighbours.
  const current = () =>
    readFileSync(RESERVED, 'utf8')
      .trim()
      .split(',')
      .filter(Boolean)
      .map((e) => e.split('-').map(Number) as [number, number?]);
  const before = current();
  // Only the ports reserved here are given back: one reserved already is another's.
  const added = mine.filter((p) => !before.some(([a, b = a]) => p >= a && p <= b));
  if (!added.length) return () => undefined;
  writeFileSync(RESERVED, [...before.map(([a, b]) => (b === undefined ? `${a}` : `${a}-${b}`)), ...added.map(String)].join(','));
  return () => {
    const kept: string[] = [];
    for (const [a, b = a] of current()) {
      let from = a;
      for (const p of [...added].sort((x, y) => x - y)) {
        if (p < from || p > b) continue;
        if (p > from) kept.push(p - 1 > from ? `${from}-${p - 1}` : `${from}`);
        from = p + 1;
      }
      if (from <= b) kept.push(b > from ? `${from}-${b}` : `${from}`);
    }
    writeFileSync(RESERVED, kept.length ? kept.join(',') : '\n');
  };
}

/**
 * Runs the lines in `cwd` with `env`. `portOf` says which port a background
 * line listens on; it is waited for (30 s at most, failing if the line exits).
 * The caller must call stop() (also when an assertion fails: in t.after).
 */
export async function runRecipe(lines: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv; portOf: (command: string) => number }, run: RecipeRun = newRun()): Promise<RecipeRun> {
  for (const line of lines) {
    const command = line.replace(/\s+#.*$/, '');
    if (command.endsWith('&')) {
      const child = spawn('/bin/sh', ['-c', `exec ${command.slice(0, -1).trim()}`], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      background.get(run)!.push(child);
      // The last of what it printed, for a failure's message (read on, so it never blocks on a full pipe).
      let said = '';
      const keep = (d: Buffer) => (said = (said + d.toString()).slice(-2000));
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const port = opts.portOf(command);
      const deadline = Date.now() + 30_000;
      while (!(await listening(port))) {
        assert.ok(Date.now() < deadline, `${command}: nothing listens on ${port}; it said:\n${said}`);
        assert.equal(child.exitCode, null, `${command} exited ${child.exitCode}; it said:\n${said}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      run.outputs.push({ status: null, out: '' });
      continue;
    }
    const r = spawnSync('/bin/sh', ['-c', command], { cwd: opts.cwd, env: opts.env, encoding: 'utf8', timeout: 60_000 });
    run.outputs.push({ status: r.status, out: `${r.stdout}${r.stderr}` });
  }
  return run;
}

const background = new WeakMap<RecipeRun, ChildProcess[]>();

/** An empty run, to hand to t.after before the recipe starts (so a failing line still stops what started). */
export function newRun(): RecipeRun {
  const children: ChildProcess[] = [];
  const run: RecipeRun = {
    outputs: [],
    async stop() {
      for (const c of children.splice(0).reverse()) {
        const exited = c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r));
        try {
          process.kill(-c.pid!, 'SIGTERM');
        } catch {
          /* already gone */
        }
        await exited;
      }
    },
  };
  background.set(run, children);
  return run;
}
