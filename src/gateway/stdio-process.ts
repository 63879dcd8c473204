/**
 * One program behind a stdio WebSocket (`porthole stdio`, apps with
 * `stdio`): spawned as the leader of its own process group with the clean
 * environment of supervised apps and a run marker (src/apps/clean-env.ts),
 * so a stop reaches every descendant — the ones left in the group by one
 * signal to `-pgid`, the ones that left it (setsid, daemons) by the marker in
 * /proc/PID/environ (src/apps/process-group.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { shellAs, type AppIdentity } from '../apps/app-user.js';
import { cleanEnv, newRunMarker } from '../apps/clean-env.js';
import { procStat, stopRun } from '../apps/process-group.js';

/** What to run and where. */
export interface StdioCommand {
  /** The program and its arguments, run without a shell (`porthole stdio -- CMD ARGS…`). */
  argv?: readonly string[];
  /** A shell command line, run by `/bin/sh -c` (an app's `stdio: "CMD"`). */
  shell?: string;
  /** Working directory. Default: the gateway's. */
  cwd?: string;
  /** Extra variables on top of the clean environment (an app's `env`; REMOTE_ADDR…). */
  env?: Readonly<Record<string, string>>;
  /** Who a `shell` command runs as (an app's `user`/`group`, or `app_defaults`), as supervised apps do. */
  identity?: AppIdentity;
}

/** How the process ended. */
export interface StdioExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What a log line says about an exit: `exit code 3`, `killed by SIGKILL`, `exited` (0). */
export function describeExit(exit: StdioExit): string {
  if (exit.signal) return `killed by ${exit.signal}`;
  return exit.code === 0 ? 'exited' : `exit code ${exit.code}`;
}

export class StdioProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly marker: string;
  /** Resolves with the leader's exit. */
  readonly exited: Promise<StdioExit>;
  exit: StdioExit | null = null;
  /** The leader's start time (field 22 of /proc/PID/stat), once read: narrows the marker scan. */
  private since: string | undefined;
  private readonly statRead: Promise<void>;
  private gone: Promise<{ killed: boolean; survivors: number[] }> | null = null;

  /**
   * Spawns the command; throws the spawn error (ENOENT, EACCES) when no
   * process came of it.
   */
  static async start(name: string, prefix: string | undefined, cmd: StdioCommand, baseEnv: NodeJS.ProcessEnv = process.env): Promise<StdioProcess> {
    const marker = newRunMarker();
    const id = cmd.identity;
    const user = id ? { HOME: id.home, USER: id.name, LOGNAME: id.name } : undefined;
    const env = cleanEnv(baseEnv, { name, prefix, env: cmd.env, run: marker, user });
    const run = cmd.argv ? { file: cmd.argv[0], args: cmd.argv.slice(1), uid: undefined, gid: undefined } : shellAs(cmd.shell ?? 'false', id);
    // detached: setsid(), so the program leads its own group and one signal to -pgid reaches its children.
    const child = spawn(run.file, run.args, { cwd: cmd.cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'], uid: run.uid, gid: run.gid });
    if (child.pid === undefined) throw await new Promise<Error>((resolve) => child.once('error', resolve));
    // Not awaited: the caller must take stdout in this turn of the event loop. A child that
    // exits before anything listens has its unread output thrown away by Node (flushStdio).
    return new StdioProcess(child, marker);
  }

  private constructor(child: ChildProcess, marker: string) {
    this.child = child;
    this.pid = child.pid!;
    this.marker = marker;
    // EPIPE on stdin once the program stopped reading: its exit says what happened.
    child.stdin!.on('error', () => {});
    child.stdout!.on('error', () => {});
    child.stderr!.on('error', () => {});
    child.on('error', () => {});
    this.statRead = procStat(this.pid).then((stat) => {
      if (stat && stat.pgid === this.pid) this.since = stat.startTime;
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /**
   * Ends the program and everything it started: stdin closed (a line
   * program's cue to finish), SIGTERM to the group and to marked processes
   * outside it, SIGKILL after `graceMs`; resolves once /proc shows none of
   * them. Once per process (later calls get the same promise). Also called
   * after the leader exited on its own: its children may live on.
   */
  stop(graceMs: number): Promise<{ killed: boolean; survivors: number[] }> {
    this.gone ??= (async () => {
      this.child.stdin!.end();
      await this.statRead;
      const result = await stopRun({ pgid: this.pid, marker: this.marker, since: this.since }, graceMs);
      // The leader's exit event, so the caller sees its status (it was killed, or had exited already).
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      return { killed: result.killed, survivors: result.survivors };
    })();
    return this.gone;
  }
}
