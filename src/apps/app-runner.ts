/**
 * One app's process lifecycle: spawn it as its own process group, watch it
 * become ready, restart it per policy, stop the whole group — and every
 * process that left the group but carries the run's marker (clean-env.ts).
 *
 * Concurrency: every operation that spawns or stops (start, stop, restart,
 * reconfigure, and the restart a backoff timer asks for) runs through one
 * queue, so two processes of the same app never run at once. The only
 * things outside the queue are event reactions — the child's `exit` and the
 * readiness result — and they check that the run they belong to is still
 * the current one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AppConfig } from '../config/schema.js';
import type { AppLog } from './app-log.js';
import { shellAs, type AppIdentity } from './app-user.js';
import { APP_NO_CMD, APP_SPAWN, appError, type AppState, type AppStatus, type LastExit } from './app-status.js';
import { cleanEnv, newRunMarker, RUN_MARKER_VAR } from './clean-env.js';
import { procStat, stopRun } from './process-group.js';
import { waitUntilReady, type Probe } from './readiness.js';
import { parseHostPort, type HostPort } from '../config/host-port.js';
import { CrashHistory, formatMs, isFailure, wantsRestart, type RestartOptions } from './restart-policy.js';
import type { RunFiles } from './run-files.js';

export const DEFAULT_START_TIMEOUT_MS = 60_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** A readiness failure goes into the app's log once the app has been starting this long. */
const NOT_READY_LOG_AFTER_MS = 2_000;
/** How the log names the marker, for whoever greps /proc/PID/environ next. */
const RUN_MARKER_NOTE = `found by ${RUN_MARKER_VAR}`;

/** The ports an app actually uses: its own or allocated ones. */
export interface EffectivePorts {
  port?: number;
  ws_port?: number;
}

/** What a runner needs from its supervisor. */
export interface RunnerDeps {
  /** Apps without `cwd` run in `{appsDir}/{name}`. */
  appsDir: string;
  /** Who the app runs as (its user/group, else the defaults); throws PH_ERR_APP_USER. */
  identity(config: AppConfig): Promise<AppIdentity | undefined>;
  baseEnv: NodeJS.ProcessEnv;
  restart: RestartOptions;
  runFiles: RunFiles;
  log: AppLog;
  /** Called on every state change; `exit` when an exit caused it. */
  onChange(status: AppStatus, exit?: { code: number | null; signal: string | null }): void;
  /** Called when something went wrong that no state shows (survivors of SIGKILL…). */
  onError(message: string): void;
  /**
   * Before every process of the app starts (by hand, a wake, autostart, a node taking it up,
   * a changed definition, a restart after a crash): its ports must be free, since another
   * program listening on one would pass the readiness check and get the app's traffic. An
   * allocated port that is taken is exchanged for a free one (`runner.ports` and
   * `allocatedPort` updated); a taken port of the app's own definition throws
   * PH_ERR_APP_SPAWN naming it.
   */
  freePorts(runner: AppRunner): Promise<void>;
}

/** One spawned process group. */
interface Run {
  child: ChildProcess;
  pid: number;
  pgid: number;
  /** PORTHOLE_RUN of this run: every process of it carries it, also those that left the group. */
  marker: string;
  /** The leader's start time (field 22 of /proc/PID/stat), once read; narrows the marker scan. */
  startTime?: string;
  startedAt: number;
  /** Resolves when the leader's `exit` event arrived. */
  exited: Promise<void>;
  exit?: { code: number | null; signal: string | null };
  /** A stop was asked for: the exit is expected, no restart policy. */
  stopping: boolean;
  /** Set when the run counts as failed whatever its exit status. */
  failure?: string;
  /** Aborts the readiness polling. */
  ready: AbortController;
  /** The run's stop (SIGTERM → SIGKILL → /proc shows nobody of the group or marked), started once. */
  gone?: Promise<void>;
}

type Waiter = (state: AppState) => void;

/** Why the gateway stops an app by itself (idle_stop), and whether it still should once the stop's turn comes. */
export interface StopReason {
  reason: string;
  still(): boolean;
}

export class AppRunner {
  config: AppConfig;
  ports: EffectivePorts = {};
  /** A port the supervisor allocated for this app (released when it stops being used). */
  allocatedPort: number | undefined;
  readonly #deps: RunnerDeps;
  #state: AppState = 'stopped';
  #ready = false;
  #restarts = 0;
  #lastExit: LastExit | null = null;
  #message: string | undefined;
  /** Why the last readiness check failed (`health_path /api/status answered 404`); cleared once ready. */
  #lastProbe: string | undefined;
  /** Set when the last spawn did not produce a process: start and restart reject with it. */
  #spawnFailure: string | undefined;
  #run: Run | undefined;
  #backoff: NodeJS.Timeout | undefined;
  /** The last group stop and run-file removal; the next spawn waits for it. */
  #cleanup: Promise<void> = Promise.resolve();
  #ops: Promise<unknown> = Promise.resolve();
  readonly #history: CrashHistory;
  readonly #waiters = new Set<Waiter>();

  constructor(config: AppConfig, deps: RunnerDeps) {
    this.config = config;
    this.#deps = deps;
    this.#history = new CrashHistory(deps.restart);
  }

  /** The app's output: file, tail and followers. */
  get log(): AppLog {
    return this.#deps.log;
  }

  get name(): string {
    return this.config.name;
  }

  get state(): AppState {
    return this.#state;
  }

  status(): AppStatus {
    const s: AppStatus = {
      name: this.name,
      state: this.#state,
      pid: this.#run?.pid ?? null,
      ready: this.#ready,
      restarts: this.#restarts,
      last_exit: this.#lastExit,
      started_at: this.#run && !this.#run.exit ? new Date(this.#run.startedAt).toISOString() : null,
    };
    if (this.ports.port !== undefined) s.port = this.ports.port;
    if (this.ports.ws_port !== undefined) s.ws_port = this.ports.ws_port;
    if (this.#message !== undefined) s.message = this.#message;
    if (this.#lastProbe !== undefined) s.last_probe = this.#lastProbe;
    return s;
  }

  /**
   * Starts the app unless it runs already; a `failed` or `backoff` app starts at once, with a clean crash history.
   * `reason` (a request woke it) goes into the app's log and is the `starting` state's message; `still`,
   * asked when the start's turn comes in the app's queue, can call it off (a hand stop came meanwhile).
   */
  start(reason?: string, still?: () => boolean): Promise<AppStatus> {
    return this.#enqueue(async () => {
      if (this.#state === 'starting' || this.#state === 'running') return this.status();
      // A start nobody asked for by hand (a wake) is dropped if, by its turn, it is no longer wanted.
      if (still && !still()) return this.status();
      this.#requireCmd();
      this.#clearBackoff();
      this.#history.reset();
      if (reason !== undefined) this.#log(reason);
      await this.#spawnOrThrow(reason);
      return this.status();
    });
  }

  /**
   * Stops the whole process group and every process marked with the run; resolves when /proc shows none of them.
   * With `why` (the gateway stops it by itself: idle_stop), only a running process is stopped, and only if
   * `why.still()` says so when the stop's turn comes; the reason goes into the app's log and is the state's message.
   */
  stop(why?: StopReason): Promise<AppStatus> {
    return this.#enqueue(async () => {
      if (why && (!this.#run || this.#state !== 'running' || !why.still())) return this.status();
      if (why) this.#log(why.reason);
      await this.#stopNow(why?.reason);
      this.#setState('stopped', why?.reason);
      return this.status();
    });
  }

  /** Stops (if running) and starts again; never two groups at once. */
  restart(): Promise<AppStatus> {
    return this.#enqueue(async () => {
      this.#requireCmd();
      await this.#stopNow();
      this.#history.reset();
      await this.#spawnOrThrow();
      return this.status();
    });
  }

  /**
   * Takes a new definition. A live process is restarted when what it was
   * started with changed (cmd, cwd, env, ports, prefix); other fields apply
   * from the next start. `resolvePorts` runs inside the queue, after the
   * operations before it.
   */
  reconfigure(config: AppConfig, resolvePorts: () => Promise<EffectivePorts>): Promise<AppStatus> {
    return this.#enqueue(async () => {
      const ports = await resolvePorts();
      const changed = startInputsDiffer(this.config, this.ports, config, ports);
      this.config = config;
      this.ports = ports;
      if (!changed || !this.#run) return this.status();
      this.#log(`definition changed: restarting`);
      await this.#stopNow();
      // A start refused (a port of its own taken by another program) leaves the app failed, saying
      // why: the new definition stands, and whoever changed it (an update, a reload) goes on.
      if (config.cmd) await this.#spawn().catch((err: Error) => this.#deps.onError(`${this.name}: restart after the definition changed failed: ${err.message}`));
      else this.#setState('stopped', 'no cmd any more');
      return this.status();
    });
  }

  /**
   * Resolves with `running` once ready, with `stopped`/`failed` when it ends
   * up there, or `timeout`. `backoff`, `starting` and `stopping` are waited out.
   */
  waitReady(timeoutMs: number): Promise<'running' | 'stopped' | 'failed' | 'timeout'> {
    const settled = (s: AppState) => (s === 'running' || s === 'stopped' || s === 'failed' ? s : undefined);
    const now = settled(this.#state);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = (state) => {
        const s = settled(state);
        if (!s) return;
        done();
        resolve(s);
      };
      const timer = setTimeout(() => {
        done();
        resolve('timeout');
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
    });
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(op, op);
    this.#ops = run.catch(() => undefined);
    return run;
  }

  #requireCmd(): void {
    if (!this.config.cmd) throw appError(APP_NO_CMD, `${this.name} has no cmd: Porthole only routes to it, there is nothing to start`);
  }

  /** An explicit start must not answer "ok" when no process came of it (issue 8). */
  async #spawnOrThrow(reason?: string): Promise<void> {
    this.#spawnFailure = undefined;
    await this.#spawn(reason);
    if (this.#spawnFailure !== undefined) throw appError(APP_SPAWN, `${this.name}: ${this.#spawnFailure}`);
  }

  async #spawn(reason?: string): Promise<void> {
    const { config } = this;
    const cmd = config.cmd!;
    if (this.#run) await this.#stopNow(); // never two groups of one app
    await this.#cleanup; // the previous group must be gone first (it may hold the ports)
    try {
      await this.#deps.freePorts(this);
    } catch (err) {
      this.#log(`cannot start: ${(err as Error).message}`);
      // A start asked for is refused (its caller hears why) and the app stays as it was; a
      // restart nobody asked for (after a crash, a changed definition) ends here, and says so.
      if (this.#state !== 'stopped' && this.#state !== 'failed') this.#setState('failed', (err as Error).message);
      throw err;
    }
    let identity: AppIdentity | undefined;
    try {
      identity = await this.#deps.identity(config);
    } catch (err) {
      this.#setState('failed', (err as Error).message);
      this.#log(`cannot start: ${(err as Error).message}`);
      throw err;
    }
    const cwd = config.cwd ?? join(this.#deps.appsDir, this.name);
    if (config.cwd === undefined) {
      mkdirSync(cwd, { recursive: true, mode: 0o700 });
      // Its own directory, whoever it runs as (the user may have changed since it was made).
      if (identity?.switches) {
        const st = statSync(cwd);
        if (st.uid !== identity.uid || st.gid !== identity.gid) chownSync(cwd, identity.uid, identity.gid);
      }
    } else if (!existsSync(cwd) || !statSync(cwd).isDirectory()) {
      this.#spawnFailure = `cwd ${cwd} is not a directory`;
      this.#setState('failed', this.#spawnFailure);
      this.#log(`cannot start: cwd ${cwd} is not a directory`);
      return;
    }
    const marker = newRunMarker();
    const user = identity ? { HOME: identity.home, USER: identity.name, LOGNAME: identity.name } : undefined;
    const env = cleanEnv(this.#deps.baseEnv, { name: this.name, prefix: config.prefix, env: config.env, ...this.ports, run: marker, user });
    const startedAt = Date.now();
    const record = { name: this.name, marker, started_at: new Date(startedAt).toISOString(), stop_timeout: this.#stopTimeout() };
    // The record exists before the process can: a gateway killed right after
    // the spawn leaves a record whose marker finds the run (issue 8, item 4).
    try {
      await this.#deps.runFiles.write(record);
    } catch (err) {
      this.#spawnFailure = `cannot write the run file: ${(err as Error).message}`;
      this.#setState('failed', this.#spawnFailure);
      this.#log(`cannot start: cannot write the run file: ${(err as Error).message}`);
      return;
    }
    // detached: setsid(), so the app leads its own process group and one
    // signal to -pgid reaches everything start.sh sends to the background.
    const shell = shellAs(cmd, identity);
    const child = spawn(shell.file, shell.args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], uid: shell.uid, gid: shell.gid });
    if (child.pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once('error', resolve));
      await this.#deps.runFiles.remove(this.name).catch(() => undefined);
      this.#lastExit = { code: null, signal: null, at: new Date().toISOString() };
      this.#spawnFailure = `cannot spawn /bin/sh: ${err.message}`;
      this.#setState('failed', this.#spawnFailure);
      this.#log(`cannot spawn: ${err.message}`);
      return;
    }
    child.on('error', (err) => this.#deps.onError(`${this.name}: ${err.message}`));
    const pid = child.pid;
    let markExited!: () => void;
    const run: Run = {
      child,
      pid,
      pgid: pid,
      marker,
      startedAt,
      exited: new Promise((r) => (markExited = r)),
      stopping: false,
      ready: new AbortController(),
    };
    this.#run = run;
    this.#deps.log.attach(child.stdout!, 'stdout');
    this.#deps.log.attach(child.stderr!, 'stderr');
    child.once('exit', (code, signal) => {
      this.#onExit(run, code, signal);
      markExited();
    });
    this.#ready = false;
    this.#log(`started pid ${pid}${identity?.switches ? ` as ${identity.name} (uid ${identity.uid}, gid ${identity.gid})` : ''}: ${cmd}`);
    this.#setState('starting', reason);
    this.#watchReadiness(run).catch((err: Error) => this.#deps.onError(`${this.name}: readiness: ${err.message}`));
    const stat = await procStat(pid);
    // The same pid with another start time would be a later process: no lower bound then.
    if (stat && stat.pgid === run.pgid) run.startTime = stat.startTime;
    // The leader narrows a recovery to its group and start time; if it is gone
    // already, the exit's cleanup removes the intent record instead.
    if (stat && !run.exit) {
      await this.#deps.runFiles
        .write({ ...record, pid, pgid: run.pgid, start_time: stat.startTime })
        .catch((err: Error) => this.#deps.onError(`${this.name}: cannot write run file: ${err.message}`));
    }
  }

  async #watchReadiness(run: Run): Promise<void> {
    const timeout = this.config.start_timeout ?? DEFAULT_START_TIMEOUT_MS;
    this.#lastProbe = undefined;
    let logged: string | undefined;
    const onProbe = (p: Probe) => {
      if (this.#run !== run) return;
      this.#lastProbe = p.ok ? undefined : p.cause;
      // Into the app's log when it changes, once the app has had a moment to bind
      // (every start sees "refused" first): whoever reads the log sees why it is not ready.
      if (!p.ok && p.cause !== logged && Date.now() - run.startedAt >= NOT_READY_LOG_AFTER_MS) {
        logged = p.cause;
        this.#log(`not ready yet: ${p.cause}`);
      }
    };
    const probe = await waitUntilReady({ ...this.ports, health_path: this.config.health_path, tcp: bridgeTargets(this.config) }, timeout, run.ready.signal, onProbe);
    if (this.#run !== run || run.stopping || run.exit) return;
    if (probe.ok) {
      this.#ready = true;
      this.#setState('running', undefined);
      return;
    }
    run.failure = `not ready after ${formatMs(timeout)}: ${probe.cause}`;
    this.#log(`${run.failure}: stopping it`);
    void this.#stopGroup(run);
  }

  #onExit(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    const exit = { code, signal };
    run.exit = exit;
    run.ready.abort();
    this.#lastExit = { code, signal, at: new Date().toISOString() };
    this.#log(signal ? `exited on ${signal}` : `exited with code ${code}`);
    // Background children can outlive the leader: stop the rest of the group too.
    this.#cleanup = this.#stopGroup(run)
      .then(() => this.#deps.runFiles.remove(this.name))
      .catch((err: Error) => this.#deps.onError(`${this.name}: cleaning up after exit: ${err.message}`));
    if (run.stopping || this.#run !== run) return; // a stop drives the state from here
    this.#run = undefined;
    this.#ready = false;
    const end = { ...exit, failure: run.failure };
    const what = run.failure ?? (signal ? `killed by ${signal}` : `exited with code ${code}`);
    const policy = this.config.restart ?? 'on-failure';
    if (!wantsRestart(policy, end)) {
      this.#setState('stopped', isFailure(end) ? `${what} (restart: ${policy})` : undefined, exit);
      return;
    }
    const decision = this.#history.record(Date.now(), Date.now() - run.startedAt);
    if (!decision.restart) {
      this.#log(decision.reason);
      this.#setState('failed', `${what}; ${decision.reason}`, exit);
      return;
    }
    this.#log(`restarting in ${formatMs(decision.delayMs)}`);
    this.#setState('backoff', `${what}; restarting in ${formatMs(decision.delayMs)}`, exit);
    this.#backoff = setTimeout(() => {
      this.#backoff = undefined;
      void this.#enqueue(async () => {
        if (this.#state !== 'backoff') return; // a stop or start came first
        this.#restarts++;
        await this.#spawn();
      }).catch((err: Error) => this.#deps.onError(`${this.name}: restart failed: ${err.message}`));
    }, decision.delayMs);
    this.#backoff.unref();
  }

  /** Stops the current run (if any) and waits until its group is gone; does not set the final state. */
  async #stopNow(reason?: string): Promise<void> {
    this.#clearBackoff();
    const run = this.#run;
    if (run) {
      run.stopping = true;
      run.ready.abort();
      this.#ready = false;
      this.#setState('stopping', reason);
      this.#log('stopping: SIGTERM to the process group');
      await this.#stopGroup(run);
      await run.exited;
      this.#run = undefined;
    }
    await this.#cleanup;
  }

  /**
   * SIGTERM to the group and to every process outside it that carries the
   * run's marker, SIGKILL after stop_timeout, until /proc shows none of them;
   * once per run.
   */
  #stopGroup(run: Run): Promise<void> {
    run.gone ??= stopRun({ pgid: run.pgid, marker: run.marker, since: run.startTime }, this.#stopTimeout()).then((result) => {
      const outside = result.escaped.length ? ` and ${result.escaped.length} marked process(es) outside it` : '';
      if (result.escaped.length) this.#log(`stopped processes that had left the process group (${RUN_MARKER_NOTE}): pids ${result.escaped.join(', ')}`);
      if (result.killed) this.#log(`still alive after ${formatMs(this.#stopTimeout())}: sent SIGKILL to the process group${outside}`);
      if (result.survivors.length) this.#deps.onError(`${this.name}: pids ${result.survivors.join(', ')} survived SIGKILL`);
      else if (!result.gone) this.#deps.onError(`${this.name}: could not confirm the run's processes are gone (/proc did not answer in time)`);
    }, (err: Error) => this.#deps.onError(`${this.name}: stopping the process group: ${err.message}`));
    return run.gone;
  }

  #stopTimeout(): number {
    return this.config.stop_timeout ?? DEFAULT_STOP_TIMEOUT_MS;
  }

  #clearBackoff(): void {
    if (this.#backoff) clearTimeout(this.#backoff);
    this.#backoff = undefined;
  }

  #setState(state: AppState, message: string | undefined, exit?: { code: number | null; signal: string | null }): void {
    this.#state = state;
    this.#message = message;
    if (state !== 'running') this.#ready = false;
    this.#deps.onChange(this.status(), exit);
    for (const waiter of [...this.#waiters]) waiter(state);
  }

  /** Supervisor notes go into the app's own log, where whoever debugs the app looks. */
  #log(text: string): void {
    this.#deps.log.line(`[porthole] ${text}`);
  }
}

/** True if a running process would differ: what it was started with changed. */
function startInputsDiffer(a: AppConfig, aPorts: EffectivePorts, b: AppConfig, bPorts: EffectivePorts): boolean {
  return (
    a.cmd !== b.cmd ||
    a.cwd !== b.cwd ||
    a.user !== b.user ||
    a.group !== b.group ||
    a.prefix !== b.prefix ||
    aPorts.port !== bPorts.port ||
    aPorts.ws_port !== bPorts.ws_port ||
    JSON.stringify(sorted(a.env)) !== JSON.stringify(sorted(b.env))
  );
}

function sorted(env: Readonly<Record<string, string>> | undefined): [string, string][] {
  return Object.entries(env ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/** The TCP targets a bridged app's bridge dials: readiness waits for them too. */
function bridgeTargets(config: AppConfig): HostPort[] {
  const out: HostPort[] = [];
  for (const spec of [config.bridge, config.ws_bridge]) {
    if (spec === undefined) continue;
    const t = parseHostPort(spec);
    if (typeof t !== 'string') out.push(t);
  }
  return out;
}
