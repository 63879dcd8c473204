/**
 * A run's processes, seen through /proc. Every app runs as the leader of its
 * own group (spawned `detached`, i.e. setsid), so one signal to `-pgid`
 * reaches every child that `start.sh` put in the background with `&` — they
 * stay in the group even after the leader has exited.
 *
 * A child that leaves the group (`setsid`, a daemon, a program on a pty)
 * still carries the run's marker, `PORTHOLE_RUN=<marker>`, in its environment
 * (see clean-env.ts): a stop also scans /proc/PID/environ for it and gives
 * those processes the same SIGTERM → SIGKILL. The scan runs only while a run
 * stops or is recovered, never on a request's path.
 */
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { RUN_MARKER_VAR } from './clean-env.js';

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

/** The numeric entries of /proc: every process (thread group) there is. */
async function listPids(): Promise<number[]> {
  return (await readdir('/proc')).map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
}

function isLive(s: ProcStat | undefined): s is ProcStat {
  return !!s && s.state !== 'Z' && s.state !== 'X';
}

/** Stat files read between two turns of the event loop. */
const STAT_BATCH = 128;

/**
 * Every live process, zombies left out: they are dead, only not reaped yet
 * (and PID 1 in a container may never reap them). /proc/PID/stat is read
 * synchronously, in batches: it takes no lock of the target's memory map
 * (unlike environ), so it does not block, and a synchronous read costs a few
 * microseconds where a promise-based one costs ten times that in CPU. The
 * event loop gets a turn after every batch.
 */
async function liveProcs(): Promise<ProcStat[]> {
  const pids = await listPids();
  const live: ProcStat[] = [];
  for (let i = 0; i < pids.length; i += STAT_BATCH) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const pid of pids.slice(i, i + STAT_BATCH)) {
      let stat: ProcStat | undefined;
      try {
        stat = parseStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        // Gone since the listing (ENOENT, ESRCH).
      }
      if (isLive(stat)) live.push(stat);
    }
  }
  return live;
}

/** The live members of a process group (zombies left out). */
export async function groupMembers(pgid: number): Promise<ProcStat[]> {
  return (await liveProcs()).filter((s) => s.pgid === pgid);
}

/**
 * Reads of /proc/PID/environ still under way, by pid. Reading another
 * process's environment takes its memory-map lock, which a process stuck in
 * the kernel (a hung NFS or FUSE page fault) may hold for good: such a read
 * then never returns. Later scans wait on the read already under way instead
 * of tying up one more libuv thread each time.
 */
const environReads = new Map<number, Promise<Buffer | undefined>>();

/** /proc/PID/environ, or undefined when it cannot be read (gone: ENOENT/ESRCH; not ours: EACCES/EPERM). */
function readEnviron(pid: number): Promise<Buffer | undefined> {
  const pending = environReads.get(pid);
  if (pending) return pending;
  const read = readFile(`/proc/${pid}/environ`).catch(() => undefined);
  environReads.set(pid, read);
  void read.then(() => {
    if (environReads.get(pid) === read) environReads.delete(pid);
  });
  return read;
}

/** True if the NUL-separated `environ` holds exactly the entry `entry` (not a longer value, not a longer name). */
export function hasEnvEntry(environ: Buffer, entry: Buffer): boolean {
  for (let i = environ.indexOf(entry); i >= 0; i = environ.indexOf(entry, i + 1)) {
    const end = i + entry.length;
    if ((i === 0 || environ[i - 1] === 0) && (end === environ.length || environ[end] === 0)) return true;
  }
  return false;
}

/** How to find the processes of one run. */
export interface RunProcesses {
  /** The run's process group, signalled as a whole. Leave out when the group is not known to be ours any more. */
  pgid?: number;
  /** The run's marker: every live process whose environment holds exactly `PORTHOLE_RUN=<marker>` is the run's. */
  marker?: string;
  /**
   * The leader's start time (field 22 of /proc/PID/stat). Every marked process
   * descends from the leader, so none is older: older processes (most of the
   * machine, once a run has lived a while) are not read at all.
   */
  since?: string;
}

/**
 * The live processes of a run: the members of its group, plus every process
 * (in any group or session) that carries its marker. Zombies are left out.
 * Processes whose environment cannot be read (another user's, or gone
 * meanwhile) do not count; neither does the gateway itself.
 */
export async function runMembers(run: RunProcesses): Promise<ProcStat[]> {
  const entry = run.marker ? Buffer.from(`${RUN_MARKER_VAR}=${run.marker}`) : undefined;
  const since = run.since !== undefined && /^\d+$/.test(run.since) ? Number(run.since) : -Infinity;
  const found = await Promise.all(
    (await liveProcs()).map(async (s) => {
      if (run.pgid !== undefined && s.pgid === run.pgid) return s;
      if (!entry || s.pid === process.pid || Number(s.startTime) < since) return undefined;
      const environ = await readEnviron(s.pid);
      return environ && hasEnvEntry(environ, entry) ? s : undefined;
    }),
  );
  return found.filter((s): s is ProcStat => s !== undefined);
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

/** Sends `signal` to one process; never throws (it may be gone already). */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already (ESRCH), or no longer ours (EPERM): the /proc check reports it.
  }
}

/** What {@link stopRun} had to do. */
export interface StopResult {
  /** SIGKILL was needed: something ignored SIGTERM for `termTimeoutMs`. */
  killed: boolean;
  /** /proc showed none of the run's processes left. */
  gone: boolean;
  /** Pids still alive after SIGKILL (stuck in the kernel, state D); normally empty. */
  survivors: number[];
  /** Pids outside the group that the marker found (setsid, daemons), signalled one by one. */
  escaped: number[];
}

/** Polls start this often (most processes end within milliseconds of SIGTERM) and back off to {@link POLL_MS}. */
const FIRST_POLL_MS = 5;
const POLL_MS = 50;
/** How long to wait for SIGKILL to take effect before reporting survivors. */
const KILL_GRACE_MS = 5_000;
/** However late in a phase, one scan gets this long before it counts as not answered. */
const MIN_SCAN_MS = 1_000;

/**
 * Stops every process of the run: SIGTERM (and SIGCONT) to the group and to
 * each marked process outside it, then SIGKILL to all of them after
 * `termTimeoutMs`, and returns only once /proc shows none of them live (or
 * after a grace period when the kernel will not let one go). Marked processes
 * that appear meanwhile (forked by a dying parent) get the same treatment.
 * Bounded even if a scan hangs: at most `termTimeoutMs` + 5 s, plus up to a
 * second per phase for a scan started at its very end.
 */
export async function stopRun(run: RunProcesses, termTimeoutMs: number): Promise<StopResult> {
  const escaped = new Set<number>();
  const termed = new Set<string>();
  /** Processes outside the group: the group signal does not reach them. */
  const outsiders = (members: ProcStat[]) => members.filter((m) => run.pgid === undefined || m.pgid !== run.pgid);
  const term = (members: ProcStat[]) => {
    for (const m of outsiders(members)) {
      escaped.add(m.pid);
      const key = `${m.pid}:${m.startTime}`;
      if (termed.has(key)) continue;
      termed.add(key);
      signalPid(m.pid, 'SIGTERM');
      // A stopped process (SIGSTOP, Ctrl-Z) only acts on SIGTERM once continued (systemd does the same).
      signalPid(m.pid, 'SIGCONT');
    }
  };
  const kill = (members: ProcStat[]) => {
    if (run.pgid !== undefined) signalGroup(run.pgid, 'SIGKILL');
    for (const m of outsiders(members)) {
      escaped.add(m.pid);
      signalPid(m.pid, 'SIGKILL');
    }
  };

  if (run.pgid !== undefined) {
    signalGroup(run.pgid, 'SIGTERM');
    signalGroup(run.pgid, 'SIGCONT');
  }
  const afterTerm = await waitRunGone(run, termTimeoutMs, term);
  if (afterTerm.gone) return { killed: false, gone: true, survivors: [], escaped: [...escaped] };
  kill(afterTerm.left);
  const killed = await waitRunGone(run, KILL_GRACE_MS, kill);
  return { killed: true, gone: killed.gone, survivors: killed.left.map((m) => m.pid), escaped: [...escaped] };
}

/**
 * Polls /proc until the run has no live process, calling `onFound` with what
 * each scan found (to signal newcomers). `gone` only when /proc showed none:
 * an empty scan is confirmed by one more, since a marked parent may have
 * forked a child after the scan listed /proc and died before its stat was
 * read. Otherwise `left` is what the last scan that answered found.
 */
async function waitRunGone(run: RunProcesses, timeoutMs: number, onFound: (members: ProcStat[]) => void): Promise<{ gone: boolean; left: ProcStat[] }> {
  const deadline = Date.now() + timeoutMs;
  let left: ProcStat[] = [];
  let empty = 0;
  let pollMs = FIRST_POLL_MS;
  for (;;) {
    const scan = await withDeadline(runMembers(run), Math.max(deadline, Date.now() + MIN_SCAN_MS));
    if (scan) {
      left = scan;
      if (scan.length === 0) {
        if (++empty >= 2) return { gone: true, left: [] };
        continue;
      }
      onFound(scan);
    }
    empty = 0;
    if (Date.now() >= deadline) return { gone: false, left };
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
    pollMs = Math.min(pollMs * 2, POLL_MS);
  }
}

/** `promise`'s value, or undefined if it has not settled by `deadline` (it is not cancelled). */
async function withDeadline<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
