/**
 * Apps that sleep when idle and wake on demand (docs/apps.md, "Apps that
 * sleep when idle").
 *
 * - `idle_stop`: a running app is stopped once it has had no request in
 *   flight, no open tunnel (proxied WebSocket or bridge connection) and no
 *   new request or handshake for that long. An open tunnel is use for as
 *   long as it is open, however quiet. The requests are counted by the
 *   gateway (gateway/app-activity.ts: a Map lookup and two field writes per
 *   request, nothing else); the tunnels are the gateway's own sets, looked
 *   through only when an app's idle time is up. One timer per running app
 *   with idle_stop, re-armed for the time that is left.
 * - `wake_on_request`: a request for the stopped app starts it (once,
 *   however many requests arrive together) and is held until it is ready,
 *   up to `start_timeout`; a browser's GET that is not answered within
 *   WAKING_PAGE_AFTER_MS gets the waiting page instead (AppWakingError).
 *
 * An app stopped by hand (`porthole apps stop`, the API, the dashboard)
 * stays stopped: requests do not wake it until it is started by hand again.
 * A crash-looping (`failed`) app is not woken either, and a wake that failed
 * is not tried again by requests for WAKE_RETRY_MS: the requests meanwhile
 * get why, rather than each one spawning a process that dies.
 */
import type { IncomingMessage } from 'node:http';
import type { AppConfig } from '../config/schema.js';
import { AppStartingError, AppStoppedError, AppWakingError, type PortholeError } from '../errors.js';
import { emit, subscribe } from '../events.js';
import { DEFAULT_START_TIMEOUT_MS } from '../apps/app-runner.js';
import { formatMs } from '../apps/restart-policy.js';
import type { AppStatus, Supervisor } from '../apps/supervisor.js';
import { wantsJson } from '../gateway/error-response.js';
import type { Gateway } from '../gateway/gateway.js';

/** A browser's GET for a waking app is held this long before it gets the waiting page: an app that wakes quickly shows none. */
export const WAKING_PAGE_AFTER_MS = 1_000;
/** The reason of a start a wake asks for (in the app's states, events and log). */
const WAKE_REASON = 'woken by a request (wake_on_request)';
/** After a wake that failed (the woken process ended, or never became ready), requests get why for this long instead of waking it again. */
export const WAKE_RETRY_MS = 10_000;

export interface AppSleepDeps {
  gateway: Gateway;
  supervisor: Supervisor;
  /** The app's definition when this gateway runs it (undefined: unknown, or another node's). */
  localApp(name: string): AppConfig | undefined;
  /** Every app this gateway runs (for `sync`). */
  localApps(): readonly AppConfig[];
}

export class AppSleep {
  readonly #deps: AppSleepDeps;
  /** One idle timer per running app with idle_stop. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** When each running app became ready (performance.now()): its idle time counts from there at the earliest. */
  readonly #runningSince = new Map<string, number>();
  /** Apps stopped by hand: requests do not wake them. */
  readonly #handStopped = new Set<string>();
  /** The start a wake asked for, shared by every request that arrives meanwhile. */
  readonly #starting = new Map<string, Promise<PortholeError | null>>();
  /** Apps whose start a wake has asked for and that has not begun yet. */
  readonly #wakeStarts = new Set<string>();
  /** A wake that failed, and when (performance.now()). */
  readonly #failedWake = new Map<string, { at: number; why: string }>();
  readonly #offTunnelClose: () => void;
  /**
   * Set when workers carry the traffic (workers/pool.ts): asks each for what it carried since its
   * last report. They report every second on their own, which may be longer than an idle_stop, so
   * an app is stopped only after the primary has heard from every worker.
   */
  freshActivity: (() => Promise<void>) | undefined;
  /** Apps whose idle check is waiting for the workers' answers. */
  readonly #asking = new Set<string>();
  readonly #onState = (status: AppStatus) => this.#stateChanged(status);

  constructor(deps: AppSleepDeps) {
    this.#deps = deps;
    deps.supervisor.on('state', this.#onState);
    // A tunnel that closes is the app's latest use: its idle time counts from the close.
    // Once per tunnel, off the hot path; the event carries the gateway's id (several may share a process).
    const id = deps.gateway.id;
    this.#offTunnelClose = subscribe('tunnel.close', (d) => void (d.gateway === id && deps.gateway.activity.touch(d.app)));
  }

  /** Stops watching (the server shuts down). */
  close(): void {
    this.#deps.supervisor.off('state', this.#onState);
    this.#offTunnelClose();
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** The app was stopped by hand: requests do not wake it. */
  stoppedByHand(name: string): void {
    this.#handStopped.add(name);
  }

  /** The app was started (or restarted) by hand: a hand stop and a failed wake are forgotten. */
  startedByHand(name: string): void {
    this.#handStopped.delete(name);
    this.#failedWake.delete(name);
  }

  /** The app was removed: a later app of that name starts with a clean slate. */
  forget(name: string): void {
    this.startedByHand(name);
    this.#disarm(name);
    this.#runningSince.delete(name);
  }

  /** The apps changed (registered, updated, config reloaded): idle_stop added, changed or removed on a running app takes effect now. */
  sync(): void {
    const watched = new Set<string>();
    for (const app of this.#deps.localApps()) {
      if (app.idle_stop === undefined || this.#deps.supervisor.status(app.name)?.state !== 'running') continue;
      watched.add(app.name);
      this.#arm(app.name, 0);
    }
    for (const name of [...this.#timers.keys()]) if (!watched.has(name)) this.#disarm(name);
  }

  /**
   * For appGate, when a `wake_on_request` app is not running (`st`): null
   * once it is ready, or the error to answer with. A stopped app is started;
   * `req` (a plain HTTP request) that is a browser's GET gets AppWakingError
   * (the waiting page) when the app is not ready within WAKING_PAGE_AFTER_MS.
   */
  wake(app: AppConfig, st: AppStatus, req?: IncomingMessage): Promise<PortholeError | null> {
    const refused = this.#refusal(app.name, st);
    if (refused) return Promise.resolve(refused);
    const ready = this.#wakeOnce(app);
    if (!req || !wantsPage(req)) return ready;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const state = this.#deps.supervisor.status(app.name)?.state ?? 'stopped';
        resolve(new AppWakingError(`app ${app.name} is waking up (${state}); this page reloads when it is ready`, state, { app: app.name }));
      }, WAKING_PAGE_AFTER_MS);
      void ready.then((err) => {
        clearTimeout(timer);
        resolve(err);
      });
    });
  }

  /** One wake per app at a time: every request that arrives while it runs waits on the same one. */
  #wakeOnce(app: AppConfig): Promise<PortholeError | null> {
    let running = this.#starting.get(app.name);
    if (!running) {
      running = this.#wakeNow(app).finally(() => this.#starting.delete(app.name));
      this.#starting.set(app.name, running);
    }
    return running;
  }

  async #wakeNow(app: AppConfig): Promise<PortholeError | null> {
    const { name } = app;
    const { supervisor } = this.#deps;
    const timeout = app.start_timeout ?? DEFAULT_START_TIMEOUT_MS;
    const deadline = performance.now() + timeout;
    let started = false;
    for (;;) {
      const st = supervisor.status(name);
      if (!st) return new AppStoppedError(`app ${name} is no longer registered`, { app: name });
      if (st.state === 'running') return null;
      if (st.state === 'stopped' || st.state === 'failed') {
        // The process this wake started ended before it was ready (unless a hand stop ended it: said below).
        if (started && !this.#handStopped.has(name)) return this.#wakeFailed(name, st.message ?? (st.last_exit ? `exited with code ${st.last_exit.code}` : 'it stopped'));
        const refused = this.#refusal(name, st);
        if (refused) return refused;
        try {
          this.#wakeStarts.add(name);
          // A hand stop that comes before the start's turn in the app's queue calls it off: no process is started.
          await supervisor.start(name, WAKE_REASON, () => !this.#handStopped.has(name)).finally(() => this.#wakeStarts.delete(name));
        } catch (err) {
          return this.#wakeFailed(name, (err as Error).message);
        }
        started = true;
        continue;
      }
      // starting, backoff, or stopping (an idle stop under way): waited out, then looked at again.
      const left = deadline - performance.now();
      const outcome = left > 0 ? await supervisor.waitReady(name, left) : 'timeout';
      if (outcome === 'running') return null;
      if (outcome === 'timeout') {
        const probe = supervisor.status(name)?.last_probe;
        return new AppStartingError(`app ${name} not ready${probe ? `: ${probe}` : ''} (waited ${timeout / 1000} s)`, { app: name });
      }
    }
  }

  /** Why a request does not wake the app, or null when it does. */
  #refusal(name: string, st: AppStatus): PortholeError | null {
    if (st.state === 'failed') return new AppStoppedError(`app ${name} is failed${st.message ? ` (${st.message})` : ''}: start it by hand`, { app: name });
    if (st.state !== 'stopped') return null;
    if (this.#handStopped.has(name)) return new AppStoppedError(`app ${name} was stopped by hand: requests do not wake it until it is started again (porthole apps start ${name})`, { app: name });
    const failed = this.#failedWake.get(name);
    if (failed && performance.now() - failed.at < WAKE_RETRY_MS) {
      const left = Math.ceil((WAKE_RETRY_MS - (performance.now() - failed.at)) / 1000);
      return new AppStoppedError(`app ${name} did not wake: ${failed.why} (requests wake it again in ${left} s)`, { app: name });
    }
    return null;
  }

  #wakeFailed(name: string, why: string): PortholeError {
    this.#failedWake.set(name, { at: performance.now(), why });
    emit('error', { code: 'PH_ERR_APP_STOPPED', app: name, message: `app ${name} did not wake: ${why}` });
    return new AppStoppedError(`app ${name} did not wake: ${why}`, { app: name });
  }

  #stateChanged(status: AppStatus): void {
    const { name, state } = status;
    // Whoever started it, a hand stop no longer holds; except a wake's start, which a hand stop
    // queued behind it (and so issued after the request) overrides.
    if (state === 'starting' && !this.#wakeStarts.has(name)) this.#handStopped.delete(name);
    if (state !== 'running') {
      this.#runningSince.delete(name);
      this.#disarm(name);
      return;
    }
    this.#failedWake.delete(name);
    this.#runningSince.set(name, performance.now());
    const idle = this.#deps.localApp(name)?.idle_stop;
    if (idle !== undefined) this.#arm(name, idle);
  }

  #arm(name: string, ms: number): void {
    this.#disarm(name);
    const timer = setTimeout(() => this.#check(name), Math.max(0, Math.ceil(ms)));
    // The server's own lifetime is not held by a sleeping app's timer.
    timer.unref();
    this.#timers.set(name, timer);
  }

  #disarm(name: string): void {
    const timer = this.#timers.get(name);
    if (timer) clearTimeout(timer);
    this.#timers.delete(name);
  }

  /** The app's idle time may be up: stop it, or look again when it could be. */
  #check(name: string): void {
    this.#timers.delete(name);
    const idle = this.#deps.localApp(name)?.idle_stop;
    if (idle === undefined || this.#deps.supervisor.status(name)?.state !== 'running') return;
    if (this.#busy(name)) return this.#arm(name, idle);
    const last = this.#lastUse(name);
    const left = last + idle - performance.now();
    if (left > 0) return this.#arm(name, left);
    if (this.freshActivity && !this.#asking.has(name)) {
      this.#asking.add(name);
      void this.freshActivity().then(() => {
        this.#asking.delete(name);
        // Looked at again with every worker's requests counted (an idle timer armed meanwhile decides instead).
        if (!this.#timers.has(name)) this.#decide(name, last);
      });
      return;
    }
    this.#decide(name, last);
  }

  /** Stops the app if it is idle still: `last` is its last use as the idle check saw it. */
  #decide(name: string, seen: number): void {
    const idle = this.#deps.localApp(name)?.idle_stop;
    if (idle === undefined || this.#deps.supervisor.status(name)?.state !== 'running') return;
    if (this.#busy(name)) return this.#arm(name, idle);
    const last = this.#lastUse(name);
    if (last !== seen) return this.#arm(name, Math.max(0, last + idle - performance.now()));
    const reason = `stopped after ${formatMs(idle)} idle (idle_stop: no request and no open tunnel)`;
    // Looked at again when the stop's turn comes: a request or a tunnel that came meanwhile keeps it running.
    const still = () => !this.#busy(name) && this.#lastUse(name) === last;
    this.#deps.supervisor.stop(name, { reason, still }).then(
      (st) => {
        // Not stopped after all (busy again): watched on.
        if (st.state === 'running' && this.#deps.localApp(name)?.idle_stop !== undefined && !this.#timers.has(name)) this.#arm(name, idle);
      },
      (err: Error) => emit('error', { code: 'PH_ERR_SUPERVISOR', app: name, message: `${name}: idle stop failed: ${err.message}` }),
    );
  }

  /** A request in flight, or an open tunnel or bridge connection of the app. */
  #busy(name: string): boolean {
    const { gateway } = this.#deps;
    if ((gateway.activity.get(name)?.inflight ?? 0) > 0) return true;
    for (const t of gateway.tunnels) if (t.info.app === name) return true;
    for (const b of gateway.bridges) if (b.info.app === name) return true;
    return false;
  }

  #lastUse(name: string): number {
    return Math.max(this.#runningSince.get(name) ?? 0, this.#deps.gateway.activity.get(name)?.last ?? 0);
  }
}

/** A browser navigating: a GET that asks for HTML first (an API client asking for JSON is held instead). */
function wantsPage(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return req.method === 'GET' && accept !== undefined && accept.includes('text/html') && !wantsJson(accept);
}
