/**
 * Process groups, seen through /proc. Every app runs as the leader of its own
 * group (spawned `detached`, i.e. setsid), so one signal to `-pgid` reaches
 * every child that `start.sh` put in the background with `&` — they stay in
 * the group even after the leader has exited.
 */
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** The fields of /proc/PID/stat the supervisor needs. */
export interface ProcStat {
  pid: number;
  /** Field 3: R, S, D, Z (zombie), … */
  state: string;
  /** Field 5. */
  pgid: number;
  /** Field 22: start time in clock ticks since boot; with the pid it names one process for good. */
  startTime: string;
}

/** Parses /proc/PID/stat. `comm` (field 2) may contain spaces and ')', so split after the last ')'. */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const end = text.lastIndexOf(')');
  if (end < 0) return undefined;
  const f = text.slice(end + 2).split(' ');
  // f[0] is field 3, so field N is f[N - 3].
  return { pid, state: f[0], pgid: Number(f[2]), startTime: f[19] };
}

/** /proc/PID/stat of one process, or undefined once it is gone. */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(pid, await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The live members of a process group. Zombies are left out: they are dead,
 * only not reaped yet (and PID 1 in a container may never reap them).
 */
export async function groupMembers(pgid: number): Promise<ProcStat[]> {
  const pids = (await readdir('/proc')).map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
  const stats = await Promise.all(pids.map(procStat));
  return stats.filter((s): s is ProcStat => !!s && s.pgid === pgid && s.state !== 'Z' && s.state !== 'X');
}

/**
 * Sends `signal` to the whole group; false if no process was there to get it.
 * Never throws: EPERM (a member turned setuid) leaves the caller's /proc
 * check to report the survivors.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** What {@link stopGroup} had to do. */
export interface StopResult {
  /** SIGKILL was needed: something ignored SIGTERM for `termTimeoutMs`. */
  killed: boolean;
  /** Pids still alive after SIGKILL (stuck in the kernel, state D); normally empty. */
  survivors: number[];
}

const POLL_MS = 50;
/** How long to wait for SIGKILL to take effect before reporting survivors. */
const KILL_GRACE_MS = 5_000;

/**
 * Stops every process of the group: SIGTERM, then SIGKILL after
 * `termTimeoutMs`, and returns only once /proc shows no live member (or
 * after a grace period when the kernel will not let one go).
 */
export async function stopGroup(pgid: number, termTimeoutMs: number): Promise<StopResult> {
  signalGroup(pgid, 'SIGTERM');
  // A stopped process (SIGSTOP, Ctrl-Z) only acts on SIGTERM once continued (systemd does the same).
  signalGroup(pgid, 'SIGCONT');
  if (await waitGroupGone(pgid, termTimeoutMs)) return { killed: false, survivors: [] };
  signalGroup(pgid, 'SIGKILL');
  if (await waitGroupGone(pgid, KILL_GRACE_MS)) return { killed: true, survivors: [] };
  return { killed: true, survivors: (await groupMembers(pgid)).map((m) => m.pid) };
}

/** Polls /proc until the group has no live member; false on timeout. */
export async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await groupMembers(pgid)).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(POLL_MS, Math.max(1, deadline - Date.now())));
  }
}
