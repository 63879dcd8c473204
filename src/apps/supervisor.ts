/**
 * The supervisor: the registry of app processes. It starts, watches,
 * restarts and stops each app's process group (see app-runner.ts), hands
 * out ports, keeps the apps' logs, and after a gateway crash finds the
 * groups the dead gateway left behind.
 *
 * It does not persist app definitions: the caller keeps them in the store
 * and calls `set` for each at start-up.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { AppConfig } from '../config/schema.js';
import { emit as publish } from '../events.js';
import { AppLog, type LogEntry } from './app-log.js';
import { resolveAppUser, type AppIdentity, type UserSpec } from './app-user.js';
import { AppRunner, type EffectivePorts, type RunnerDeps, type StopReason } from './app-runner.js';
import { APP_SPAWN, APP_UNKNOWN, appError, type AppStatus } from './app-status.js';
import { PortAllocator, portTaken } from './ports.js';
import { tcpAnswers } from './readiness.js';
import { DEFAULT_RESTART, type RestartOptions } from './restart-policy.js';
import { RunFiles, recoverOrphans } from './run-files.js';

export type { AppState, AppStatus, LastExit } from './app-status.js';
export type { StopReason } from './app-runner.js';
export { APP_NO_CMD, APP_UNKNOWN } from './app-status.js';

export interface SupervisorOptions extends Partial<RestartOptions> {
  /** Holds `logs/{name}.log`, `run/{name}.json` (and `apps/{name}` unless `appsDir` is given). */
  dataDir: string;
  /**
   * Where apps without `cwd` run: `{appsDir}/{name}`. Default `{dataDir}/apps`;
   * `porthole serve` keeps it out of the directory that holds the token.
   */
  appsDir?: string;
  /** `user`/`group` for apps that set none (the config's `app_defaults`). */
  appDefaults?: AppUserDefaults;
  /** Where ports for apps without `port` come from. Default [9000, 9999]. */
  portRange?: [number, number];
  /** The environment the allowlist picks from (see clean-env.ts). Default `process.env`. */
  baseEnv?: NodeJS.ProcessEnv;
  /** A log file is rotated to `.1` before it would exceed this. Default 5 MiB. */
  logMaxBytes?: number;
}

export interface AppUserDefaults {
  user?: UserSpec;
  group?: UserSpec;
}

const DEFAULT_PORT_RANGE: [number, number] = [9000, 9999];
const DEFAULT_LOG_MAX_BYTES = 5 * 1024 * 1024;

/**
 * Supervises the apps' processes.
 *
 * Events: `'state'` with an {@link AppStatus} on every state change (also
 * published as the `app` diagnostics event of events.ts); `'ports'` with an
 * app's name when a start gave it another port (the one allocated to it was
 * taken by another program): routes to the app must be built again.
 */
export class Supervisor extends EventEmitter {
  readonly dataDir: string;
  readonly appsDir: string;
  #appDefaults: AppUserDefaults;
  readonly #baseEnv: NodeJS.ProcessEnv;
  readonly #logMaxBytes: number;
  readonly #restart: RestartOptions;
  readonly #ports: PortAllocator;
  readonly #runFiles: RunFiles;
  readonly #apps = new Map<string, AppRunner>();
  /** Logs of apps without a runner whose processes the gateway starts (`stdio`): see appLog. */
  readonly #sideLogs = new Map<string, AppLog>();
  /** Apps being removed: their stop must finish before the name is used again. */
  readonly #removing = new Map<string, Promise<void>>();

  constructor(opts: SupervisorOptions) {
    super();
    this.dataDir = opts.dataDir;
    this.appsDir = opts.appsDir ?? join(opts.dataDir, 'apps');
    this.#appDefaults = opts.appDefaults ?? {};
    this.#baseEnv = opts.baseEnv ?? process.env;
    this.#logMaxBytes = opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.#restart = {
      backoffBaseMs: opts.backoffBaseMs ?? DEFAULT_RESTART.backoffBaseMs,
      backoffMaxMs: opts.backoffMaxMs ?? DEFAULT_RESTART.backoffMaxMs,
      crashLimit: opts.crashLimit ?? DEFAULT_RESTART.crashLimit,
      crashWindowMs: opts.crashWindowMs ?? DEFAULT_RESTART.crashWindowMs,
    };
    this.#ports = new PortAllocator(opts.portRange ?? DEFAULT_PORT_RANGE);
    this.#runFiles = new RunFiles(join(this.dataDir, 'run'));
  }

  /**
   * Registers or updates an app. A new app is `stopped` (nothing starts
   * here; see {@link start} and {@link startAutostart}). If the app runs and
   * its `cmd`, `cwd`, `env`, `port`, `ws_port` or `prefix` changed, it is
   * restarted — the old group fully stopped first. An app with `cmd` and no
   * `port` gets one allocated, kept across updates.
   */
  set(app: AppConfig): Promise<AppStatus> {
    // A removal in progress finishes first: its group must be gone before a new one starts.
    const removing = this.#removing.get(app.name);
    if (removing) return removing.then(() => this.set(app));
    const existing = this.#apps.get(app.name);
    const runner = existing ?? new AppRunner(app, this.#runnerDeps(app.name));
    if (!existing) this.#apps.set(app.name, runner);
    const done = runner.reconfigure(app, () => this.#resolvePorts(runner, app));
    if (existing) return done;
    // A new app whose registration failed (no free port) is not half registered.
    return done.catch(async (err: unknown) => {
      if (this.#apps.get(app.name) === runner && runner.state === 'stopped') {
        this.#apps.delete(app.name);
        await runner.log.close();
      }
      throw err;
    });
  }

  /**
   * Who `app` would run as; throws `PH_ERR_APP_USER` (AppUserError) when its
   * user or group does not exist, or the gateway is not root and would have
   * to become someone else. Call before storing a registration.
   */
  checkUser(app: AppConfig): Promise<AppIdentity | undefined> {
    return resolveAppUser(app, this.#appDefaults);
  }

  /** New `app_defaults`: they apply from each app's next start. */
  setAppDefaults(defaults: AppUserDefaults | undefined): void {
    this.#appDefaults = defaults ?? {};
  }

  /** Stops the app and forgets it; false if it was not registered. Its log file stays. */
  async remove(name: string): Promise<boolean> {
    const runner = this.#apps.get(name);
    if (!runner) return false;
    // Forgotten at once, so nothing new is asked of it while it stops.
    this.#apps.delete(name);
    const removal = (async () => {
      await runner.stop();
      if (runner.allocatedPort !== undefined) this.#ports.release(runner.allocatedPort);
      await runner.log.close();
    })();
    this.#removing.set(name, removal);
    try {
      await removal;
    } finally {
      if (this.#removing.get(name) === removal) this.#removing.delete(name);
    }
    return true;
  }

  /**
   * Starts the app; resolves once its process is spawned (state `starting`),
   * or at once if it is already starting or running. Use {@link waitReady}
   * to wait for readiness. A `failed` app starts afresh. `still` (a wake's) is asked when the
   * start's turn comes: false, and the app is left as it is.
   * Rejects with code `PH_ERR_APP_UNKNOWN` or `PH_ERR_APP_NO_CMD`.
   */
  start(name: string, reason?: string, still?: () => boolean): Promise<AppStatus> {
    return this.#call(name, (r) => r.start(reason, still));
  }

  /**
   * Stops the app's whole process group and every process that carries the
   * run's `PORTHOLE_RUN` marker (children that left the group: setsid,
   * daemons, ptys): SIGTERM, SIGKILL after `stop_timeout`; resolves when none
   * of them is left. `why`: the gateway stops it by itself (see StopReason).
   */
  stop(name: string, why?: StopReason): Promise<AppStatus> {
    return this.#call(name, (r) => r.stop(why));
  }

  /** Stops (if running) and starts the app; resolves once the new process is spawned. */
  restart(name: string): Promise<AppStatus> {
    return this.#call(name, (r) => r.restart());
  }

  status(name: string): AppStatus | undefined {
    return this.#apps.get(name)?.status();
  }

  list(): AppStatus[] {
    return [...this.#apps.values()].map((r) => r.status());
  }

  /**
   * Resolves `running` as soon as the app is ready, `stopped` or `failed`
   * when it ends up there (or is not registered), `timeout` after
   * `timeoutMs`. The gateway holds a request for a `starting` app on this.
   */
  waitReady(name: string, timeoutMs: number): Promise<'running' | 'stopped' | 'failed' | 'timeout'> {
    return this.#apps.get(name)?.waitReady(timeoutMs) ?? Promise.resolve('stopped');
  }

  /** The last `lines` lines of the app's output (and supervisor notes), oldest first. */
  logs(name: string, lines: number): string[] {
    return this.#logOf(name)?.last(lines) ?? [];
  }

  /** The last lines with their stream (stdout, stderr, porthole) and time. */
  logEntries(name: string, lines: number): LogEntry[] {
    return this.#logOf(name)?.lastEntries(lines) ?? [];
  }

  /** Calls `onLine` for every new line of the app's output; returns the unsubscribe function. */
  followLogs(name: string, onLine: (line: string, entry: LogEntry) => void): () => void {
    const log = this.#logOf(name);
    if (!log) throw appError(APP_UNKNOWN, `no app named ${JSON.stringify(name)}`);
    return log.follow(onLine);
  }

  /**
   * The log of an app whose processes the gateway starts itself (`stdio`
   * apps: one per WebSocket connection), made on first use at the same place
   * as a supervised app's; `logs` reads it like any app's.
   */
  appLog(name: string): AppLog {
    const runner = this.#apps.get(name);
    if (runner) return runner.log;
    let log = this.#sideLogs.get(name);
    if (!log) {
      log = this.#newLog(name);
      this.#sideLogs.set(name, log);
    }
    return log;
  }

  #logOf(name: string): AppLog | undefined {
    return this.#apps.get(name)?.log ?? this.#sideLogs.get(name);
  }

  /** A port of the range that binds on 127.0.0.1 now and was given to no app. */
  allocPort(): Promise<number> {
    return this.#ports.alloc(this.#portsInUse());
  }

  /**
   * After a gateway crash: stops the app process groups recorded in
   * `{dataDir}/run/` that still exist (same pid and start time), and the
   * processes carrying a recorded run's marker, and deletes the records.
   * Call before {@link startAutostart}. Returns how many runs had something
   * left to stop.
   */
  recoverOrphans(): Promise<number> {
    return recoverOrphans(this.#runFiles);
  }

  /**
   * Starts every app with `autostart: true`; resolves once all are spawned. One app that
   * cannot start (a port of its own taken since the last run, …) does not keep the others
   * down: its failure is published as an `error` event.
   */
  async startAutostart(): Promise<void> {
    const auto = [...this.#apps.values()].filter((r) => r.config.autostart && r.config.cmd);
    const results = await Promise.allSettled(auto.map((r) => r.start()));
    results.forEach((result, i) => {
      if (result.status === 'rejected') {
        publish('error', { code: 'PH_ERR_SUPERVISOR', message: `${auto[i].name}: autostart failed: ${(result.reason as Error).message}`, app: auto[i].name });
      }
    });
  }

  /** Stops every app (shutdown); resolves when none of their processes is left. */
  async stopAll(): Promise<void> {
    const runners = [...this.#apps.values()];
    await Promise.all(runners.map((r) => r.stop()));
    await Promise.all([...this.#removing.values(), ...runners.map((r) => r.log.flush()), ...[...this.#sideLogs.values()].map((l) => l.flush())]);
  }

  async #call(name: string, op: (r: AppRunner) => Promise<AppStatus>): Promise<AppStatus> {
    const runner = this.#apps.get(name);
    if (!runner) throw appError(APP_UNKNOWN, `no app named ${JSON.stringify(name)}`);
    return op(runner);
  }

  async #resolvePorts(runner: AppRunner, app: AppConfig): Promise<EffectivePorts> {
    let port = app.port;
    if (port !== undefined) {
      if (runner.allocatedPort !== undefined) this.#ports.release(runner.allocatedPort);
      runner.allocatedPort = undefined;
    } else if (app.cmd !== undefined && app.bridge === undefined) {
      // A bridge-only app is reached through its bridge target, not an HTTP port: none to allocate.
      runner.allocatedPort ??= await this.#ports.alloc(this.#portsInUse());
      port = runner.allocatedPort;
    }
    return { port, ws_port: app.ws_port };
  }

  /** Every port an app uses or asked for, so allocation skips them. */
  #portsInUse(): Set<number> {
    const used = new Set<number>();
    for (const r of this.#apps.values()) {
      for (const p of [r.config.port, r.config.ws_port, r.ports.port, r.ports.ws_port]) if (p !== undefined) used.add(p);
    }
    return used;
  }

  #newLog(name: string): AppLog {
    return new AppLog({
      path: join(this.dataDir, 'logs', `${name}.log`),
      maxBytes: this.#logMaxBytes,
      onError: (err) => publish('error', { code: 'PH_ERR_APP_LOG', message: `${name}: cannot write log: ${err.message}`, app: name }),
    });
  }

  #runnerDeps(name: string): RunnerDeps {
    const log = this.#newLog(name);
    return {
      appsDir: this.appsDir,
      identity: (app) => resolveAppUser(app, this.#appDefaults),
      baseEnv: this.#baseEnv,
      restart: this.#restart,
      runFiles: this.#runFiles,
      log,
      onChange: (status, exit) => {
        publish('app', { app: status.name, state: status.state, pid: status.pid ?? undefined, exit, message: status.message });
        try {
          this.emit('state', status);
        } catch (err) {
          // A listener's bug must not break the state machine that called it.
          publish('error', { code: 'PH_ERR_SUPERVISOR', message: `'state' listener threw: ${(err as Error).message}`, app: name });
        }
      },
      onError: (message) => publish('error', { code: 'PH_ERR_SUPERVISOR', message, app: name }),
      freePorts: (runner) => this.#freePorts(runner),
    };
  }

  /**
   * RunnerDeps.freePorts: before each start, in the runner's queue. An exchange is announced
   * ('ports') even when a later port refuses the start: the routes must follow the app's port.
   */
  async #freePorts(runner: AppRunner): Promise<void> {
    let moved: [number, number] | null = null;
    try {
      for (const key of ['port', 'ws_port'] as const) {
        const port = runner.ports[key];
        if (port === undefined) continue;
        if (key !== 'port' || runner.allocatedPort !== port) {
          // The app's own port is refused only when another program answers there as the readiness check
          // would take it (its answers would pass for the app's); one held for a moment by a connection's
          // local end is the app's to retry.
          if (await tcpAnswers(port)) throw appError(APP_SPAWN, `port ${port} is in use by another program (${key} of ${runner.name}): the app cannot listen there`);
          continue;
        }
        // An allocated one is exchanged whenever it cannot be bound now: that costs nothing.
        if (!(await portTaken(port))) continue;
        // Still handed out: the new one is searched for while the old one counts as taken.
        const fresh = await this.#ports.alloc(this.#portsInUse());
        this.#ports.release(port);
        runner.allocatedPort = fresh;
        runner.ports = { ...runner.ports, port: fresh };
        moved = [port, fresh];
      }
    } finally {
      if (moved) this.#portsMoved(runner, moved);
    }
  }

  #portsMoved(runner: AppRunner, [from, to]: [number, number]): void {
    runner.log.line(`[porthole] port ${from} is in use by another program: starting on port ${to} instead`);
    try {
      this.emit('ports', runner.name);
    } catch (err) {
      publish('error', { code: 'PH_ERR_SUPERVISOR', message: `'ports' listener threw: ${(err as Error).message}`, app: runner.name });
    }
  }
}
