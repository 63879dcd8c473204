/**
 * Run files: `{dataDir}/run/{name}.json`, one per app process group that may
 * be alive. They exist for one case only — the gateway died by `kill -9` and
 * its detached app groups kept running — so that the next gateway can find
 * and stop them ({@link recoverOrphans}), with every process that carries the
 * run's marker. Liveness never comes from them.
 *
 * A record is written twice: before the spawn, with only the run's marker
 * (the intent: nothing can run that no record names), and once the leader's
 * pid and start time are known. A gateway killed between the two leaves an
 * intent record, and recovery finds the run's processes by the marker alone
 * (issue 8: five processes spawned just before their record was written
 * outlived a `kill -9` and the next gateway's stop).
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRunMarker } from './clean-env.js';
import { groupMembers, procStat, runMembers, signalPid, stopRun, type RunProcesses } from './process-group.js';

export interface RunRecord {
  name: string;
  /** The leader; absent in an intent record (written before the spawn). */
  pid?: number;
  pgid?: number;
  /** Field 22 of /proc/PID/stat: tells our process from a later one that got the same pid. */
  start_time?: string;
  /**
   * The run's PORTHOLE_RUN value (clean-env.ts): processes that left the
   * group carry it. Absent in records of a gateway from before markers.
   */
  marker?: string;
  started_at: string;
  /** The app's stop_timeout, for a recovery that happens before the app is registered again. */
  stop_timeout: number;
}

export class RunFiles {
  readonly dir: string;
  /** Per app, so a remove never overtakes the write of the same record. */
  readonly #chains = new Map<string, Promise<void>>();

  constructor(dir: string) {
    this.dir = dir;
  }

  write(record: RunRecord): Promise<void> {
    return this.#chain(record.name, async () => {
      await mkdir(this.dir, { recursive: true });
      const file = this.#file(record.name);
      // Atomic: a gateway killed mid-write leaves the old record or none, never half a JSON.
      await writeFile(`${file}.tmp`, `${JSON.stringify(record)}\n`);
      await rename(`${file}.tmp`, file);
    });
  }

  remove(name: string): Promise<void> {
    return this.#chain(name, () => rm(this.#file(name), { force: true }));
  }

  /** Every readable record; unreadable files are returned as names to delete. */
  async readAll(): Promise<{ records: RunRecord[]; broken: string[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return { records: [], broken: [] };
    }
    const records: RunRecord[] = [];
    const broken: string[] = [];
    for (const file of names.filter((n) => n.endsWith('.json'))) {
      try {
        const rec = JSON.parse(await readFile(join(this.dir, file), 'utf8')) as RunRecord;
        if (isIntent(rec)) records.push(rec);
        else if (Number.isInteger(rec.pid) && Number.isInteger(rec.pgid) && typeof rec.start_time === 'string') {
          // A marker is only trusted in the shape we write ('' would match every `PORTHOLE_RUN=`),
          // and with the leader's start time that bounds which processes can carry it.
          if (rec.marker !== undefined && !(isRunMarker(rec.marker) && /^\d+$/.test(rec.start_time))) delete rec.marker;
          records.push(rec);
        } else broken.push(file);
      } catch {
        broken.push(file);
      }
    }
    return { records, broken };
  }

  async removeFile(file: string): Promise<void> {
    await rm(join(this.dir, file), { force: true });
  }

  #file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  #chain(name: string, op: () => Promise<void>): Promise<void> {
    const run = (this.#chains.get(name) ?? Promise.resolve()).then(op);
    const tail = run.catch(() => undefined);
    this.#chains.set(name, tail);
    void tail.then(() => {
      if (this.#chains.get(name) === tail) this.#chains.delete(name);
    });
    return run;
  }
}

/** A record written before the spawn: a well-formed marker, no leader yet. */
function isIntent(rec: RunRecord): boolean {
  return rec.pid === undefined && rec.pgid === undefined && rec.start_time === undefined && isRunMarker(rec.marker) && typeof rec.name === 'string';
}

/**
 * What of the run a record describes is still ours to stop, if anything.
 *
 * - An intent record (no leader recorded): every live process that carries
 *   the marker. The marker is 128 random bits, so no lower bound on the
 *   start time is needed to tell ours from others.
 *
 * - The leader is alive with the recorded start time: the whole group is ours.
 * - Every live process whose environment holds exactly the recorded marker
 *   (and that started no earlier than the leader) is ours too, in whatever
 *   group or session it ended up: that is how the children that left the
 *   group (setsid, daemons, ptys) are found.
 * - A record without a marker (an older gateway's): the leader is gone (or
 *   its pid now names another process), but members of the group may survive
 *   (children `start.sh` sent to the background). The kernel does not reuse a
 *   pgid while a member lives, but if all died the number could start a new
 *   group, so a member counts only if it started no earlier than our leader
 *   and carries our `APP_NAME` in its environment.
 */
async function orphans(rec: RunRecord): Promise<{ run: RunProcesses } | { pids: number[] } | undefined> {
  if (rec.pid === undefined || rec.pgid === undefined || rec.start_time === undefined) {
    if (!rec.marker) return undefined;
    const run: RunProcesses = { marker: rec.marker };
    return (await runMembers(run)).length ? { run } : undefined;
  }
  const leader = await procStat(rec.pid);
  const wholeGroup = !!leader && leader.startTime === rec.start_time && leader.pgid === rec.pgid;
  if (rec.marker) {
    const run: RunProcesses = { pgid: wholeGroup ? rec.pgid : undefined, marker: rec.marker, since: rec.start_time };
    return (await runMembers(run)).length ? { run } : undefined;
  }
  if (wholeGroup) return { run: { pgid: rec.pgid } };
  const pids: number[] = [];
  for (const m of await groupMembers(rec.pgid)) {
    if (Number(m.startTime) < Number(rec.start_time)) continue;
    const environ = await readFile(`/proc/${m.pid}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(`APP_NAME=${rec.name}`)) pids.push(m.pid);
  }
  return pids.length ? { pids } : undefined;
}

/**
 * Stops the app runs a dead gateway left running; returns how many runs had
 * something left to stop. Every run file is consumed.
 */
export async function recoverOrphans(runFiles: RunFiles): Promise<number> {
  const { records, broken } = await runFiles.readAll();
  for (const file of broken) await runFiles.removeFile(file);
  let stopped = 0;
  await Promise.all(
    records.map(async (rec) => {
      const found = await orphans(rec);
      if (found && 'run' in found) await stopRun(found.run, rec.stop_timeout);
      else if (found) await stopPids(found.pids, rec.stop_timeout);
      if (found) stopped++;
      await runFiles.remove(rec.name);
    }),
  );
  return stopped;
}

/** TERM, then KILL after `timeoutMs`, for single processes (a group we cannot vouch for as a whole). */
async function stopPids(pids: number[], timeoutMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => pids.forEach((pid) => signalPid(pid, sig));
  const alive = async () => (await Promise.all(pids.map(procStat))).some((s) => s && s.state !== 'Z');
  signal('SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while ((await alive()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (await alive()) signal('SIGKILL');
}
