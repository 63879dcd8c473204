/**
 * Clears what /proc/PID/environ shows of the gateway, keeping the values in
 * memory (issue 8, item 2c).
 *
 * An app that runs as the gateway's user may read /proc/<gateway pid>/environ:
 * the kernel shows there the block of memory the environment was passed in at
 * execve, whatever the process did with its variables since. Secrets the
 * operator started the gateway with (PORTHOLE_TOKEN, cloud keys) would be
 * one `cat` away, though the apps' own environments are clean (clean-env.ts).
 *
 * Why not a re-exec with a scrubbed environment: Node 20 cannot execve in
 * place (process.execve is Node >= 23.11), and a launcher that spawns the real
 * gateway and waits for it keeps the original block in its own
 * /proc/PID/environ — one more ancestor for the app to read. prctl(PR_SET_MM)
 * would move the block but needs CAP_SYS_RESOURCE. So the block is
 * overwritten where it is, through /proc/self/mem (what setproctitle-style
 * libraries do to argv): the values are first copied to the heap and set
 * again with setenv, so the process (and error pages' `${VAR}`) sees the same
 * variables as before, and children are spawned with explicit environments.
 *
 * What it does not do: the values stay in the gateway's memory, which a
 * same-user process can read with ptrace (gdb, /proc/PID/mem) unless
 * kernel.yama.ptrace_scope forbids it, and a parent that started the gateway
 * (a shell started with the variables, `sh -c` without exec) still shows its
 * own copy. docs/security.md says so; running apps as another user closes both.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

/** What {@link clearStartupEnviron} did. */
export type ClearResult = { cleared: true; bytes: number } | { cleared: false; reason: string };

/**
 * Overwrites the startup environment block with NUL bytes, keeping every
 * variable in `process.env`. Linux only; never throws.
 */
export function clearStartupEnviron(): ClearResult {
  let start: number;
  let end: number;
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields 50 and 51 (env_start, env_end); comm (field 2) may hold spaces, so count after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    start = Number(f[50 - 3]);
    end = Number(f[51 - 3]);
  } catch (err) {
    return { cleared: false, reason: `cannot read /proc/self/stat: ${(err as Error).message}` };
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start <= 0 || end <= start) {
    return { cleared: false, reason: 'the kernel does not show where the environment is (/proc/self/stat fields 50-51)' };
  }
  const saved = Object.entries(process.env);
  let failure: string | undefined;
  let fd: number | undefined;
  try {
    fd = openSync('/proc/self/mem', 'r+');
    // A Number position: Node 20 fails this write with EIO when given a bigint.
    const length = end - start;
    if (writeSync(fd, Buffer.alloc(length), 0, length, start) !== length) failure = 'cannot write /proc/self/mem: short write';
  } catch (err) {
    failure = `cannot write /proc/self/mem: ${(err as Error).message}`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  // getenv() finds nothing in zeroed strings: set every variable again (setenv copies to the heap).
  // Done whatever happened, so that a partial write loses no variable.
  for (const [key, value] of saved) if (value !== undefined) process.env[key] = value;
  if (failure) return { cleared: false, reason: failure };
  return { cleared: true, bytes: end - start };
}
