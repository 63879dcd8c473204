/**
 * The app registry: the config file's apps and the apps registered through
 * the API, side by side. It keeps the three views in step — the store (what
 * survives a restart), the supervisor (the processes) and the gateway's
 * route table (what is routed) — and answers whether an app can take traffic.
 */
import { appSetProblems, parseApp, RESERVED_NAMES, withApps, type AppConfig, type Config } from '../config/schema.js';
import {
  AppInvalidError,
  AppNotSupervisedError,
  AppStartingError,
  AppStoppedError,
  AppUnknownError,
  BadRequestError,
  ConfigError,
  ConflictError,
  PortholeError,
} from '../errors.js';
import { emit } from '../events.js';
import { probeOnce, type Probe, type ReadinessTarget } from '../apps/readiness.js';
import type { AppStatus, Supervisor } from '../apps/supervisor.js';
import { parseHostPort } from '../config/host-port.js';
import { isBridgeOnly } from '../gateway/bridge.js';
import type { Gateway } from '../gateway/gateway.js';
import type { AppStore, StoredApp } from '../store/file-store.js';
import { StoreConflict, StoreEpochChanged } from '../store/store-errors.js';
import type { IncomingMessage } from 'node:http';
import { AppSleep } from './app-sleep.js';

/**
 * What the registry asks of the cluster (src/cluster/), when the gateway is
 * a node of one: who runs an app, how to reach that node, whether it is up.
 * Without it every app is this gateway's own.
 */
export interface ClusterHooks {
  readonly node: string;
  /** The node that runs the app (undefined: a `node: any` app not placed yet). */
  ownerOf(app: AppConfig): string | undefined;
  /** Null when the app's node can take traffic; the refusal (PH_ERR_NODE_DOWN) otherwise. */
  nodeGate(app: AppConfig): PortholeError | null;
  /** Where requests for another node's apps go. */
  peerOf(node: string): { node: string; url: string; secret: string; ca?: string } | undefined;
  /** The app's state as its node last published it. */
  remoteStatus(node: string, app: string): Partial<AppStatus> | undefined;
  /** Whether a node of this name is part of the cluster (up or down). */
  isKnown(node: string): boolean;
  /** The nodes' names, for error messages. */
  knownNodes(): string[];
  /** Reads the nodes again from the store (a node that joined since the last look). */
  refreshNodes(): Promise<void>;
  /** Asks the app's node to start, stop or restart it (through its peer listener). */
  act(node: string, app: string, action: 'start' | 'stop' | 'restart', version: number): Promise<AppView>;
  /** The registry version this node holds (sent along, so the other node waits until it has it). */
  version(): number;
  /** Reads the shared registry again (a write found it changed by another node). Inside exclusive(). */
  catchUp(): Promise<void>;
}

/**
 * A change that another node's change beat is read again, checked again and
 * retried: every such conflict means another node's write went in, but not
 * that this one will ever win on its own. A node that just won writes its
 * next change at once, while the loser first reads the registry again: with
 * several nodes registering at once the same node could lose ten times in a
 * row (a 409 for a caller who collided with nothing). So it waits a random
 * moment first (full jitter, growing to CONFLICT_BACKOFF_MAX_MS), and keeps
 * trying for CONFLICT_BUDGET_MS and at least CONFLICT_MIN_ATTEMPTS times;
 * only then 409 PH_ERR_CONFLICT ("the registry kept changing").
 * test/cluster/concurrent-writes.test.ts.
 */
const CONFLICT_MIN_ATTEMPTS = 10;
const CONFLICT_BUDGET_MS = 5_000;
const CONFLICT_BACKOFF_BASE_MS = 2;
const CONFLICT_BACKOFF_MAX_MS = 100;

const DEFAULT_START_TIMEOUT = 60_000;
/** Stands in for the port a supervised app will be given, so its route can be built (and checked) now. */
const PLACEHOLDER_PORT = 9;

/**
 * An external app (no cmd) is probed when the API shows it; the result is
 * reused this long, so listing many apps costs one connect each at most this
 * often, and a probe never holds an API call longer than its timeout.
 */
const EXTERNAL_PROBE_TTL_MS = 2_000;
const EXTERNAL_PROBE_TIMEOUT_MS = 500;

/** A stored (or config) app that no longer passes validation: shown, never routed. */
interface InvalidApp {
  /** What was stored, shown as it is. */
  raw: Record<string, unknown>;
  reason: string;
  /** A route at the app's prefix whose gate answers PH_ERR_APP_INVALID, so its requests get a clear error. */
  stub?: AppConfig;
}

/** An app as the API shows it: its definition, where it came from, and its process state. */
export interface AppView extends Record<string, unknown> {
  name: string;
  source: 'config' | 'api';
  /** Where the gateway serves it: `/{name}/` (the app's own `url`, if any, is its upstream). */
  route: string;
  /** Where to open it: under its prefix, and at the root of `{name}.localhost` (and `{name}.{base_domain}`). */
  urls: string[];
  state: AppStatus['state'] | 'external' | 'invalid';
  pid: number | null;
  ready: boolean;
  restarts: number;
  last_exit: AppStatus['last_exit'];
  /** `process` (Porthole runs it), `bridge` (the built-in WebSocket→TCP bridge) or `external` (runs elsewhere). */
  kind: 'process' | 'bridge' | 'external';
  /** When the running process started (uptime); null when none runs. */
  started_at: string | null;
}

export class AppRegistry {
  private config: Config;
  private apiApps = new Map<string, AppConfig>();
  private invalid = new Map<string, InvalidApp>();
  private externalProbes = new Map<string, { at: number; probe: Probe }>();
  private probing = new Map<string, Promise<void>>();
  /** The port the gateway listens on, once it does: an app there would route requests back into the gateway. */
  gatewayPort: number | undefined;
  /** Serializes changes, so two registrations never interleave their store/supervisor/route steps. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Set when the gateway is a node of a cluster (before init). */
  cluster: ClusterHooks | undefined;
  /** idle_stop and wake_on_request (app-sleep.ts). */
  readonly sleep: AppSleep;

  constructor(
    private readonly gateway: Gateway,
    private readonly supervisor: Supervisor,
    private readonly store: AppStore,
    config: Config,
  ) {
    this.config = config;
    const localApp = (name: string) => {
      const app = this.get(name);
      return app?.cmd !== undefined && this.isLocal(app) ? app : undefined;
    };
    this.sleep = new AppSleep({ gateway, supervisor, localApp, localApps: () => this.all().filter((a) => localApp(a.name) !== undefined) });
    // A start gave an app another port (the allocated one was taken): routes go to the new one before it is ready.
    supervisor.on('ports', () => this.rebuild());
  }

  /** Whether this gateway runs (or routes to) the app itself, rather than another node. */
  isLocal(app: AppConfig): boolean {
    if (!this.cluster || this.fileApp(app.name)) return true;
    return this.cluster.ownerOf(app) === this.cluster.node;
  }

  /** The node that runs the app, in a cluster (null for this gateway's own config-file apps, and outside a cluster). */
  nodeOf(app: AppConfig): string | null {
    if (!this.cluster || this.fileApp(app.name)) return null;
    return this.cluster.ownerOf(app) ?? null;
  }

  /** Loads the stored apps, stops what a killed gateway left running, then starts autostart apps. */
  async init(): Promise<void> {
    // A stored app that no longer validates is marked invalid, never fatal: the others must run.
    for (const raw of await this.store.load()) this.admitStored(raw);
    const stopped = await this.supervisor.recoverOrphans();
    if (stopped) emit('error', { code: 'PH_ERR_ORPHANS', message: `stopped the leftover processes of ${stopped} app run(s) of a previous gateway` });
    for (const app of this.all()) {
      if (!app.cmd || !this.isLocal(app)) continue;
      // One app the supervisor cannot take (no free port) does not keep the gateway down.
      await this.supervisor.set(app).catch((err: Error) => emit('error', { code: 'PH_ERR_SUPERVISOR', app: app.name, message: `${app.name}: ${err.message}` }));
    }
    this.rebuild();
    await this.supervisor.startAutostart();
  }

  /** A stored app taken in (at start, or changed by another node): valid, or marked invalid with why. */
  private admitStored(raw: StoredApp): void {
    // A stored app that no longer validates is marked invalid, never fatal: the others must run.
    let app: AppConfig;
    try {
      if (raw.__unreadable !== undefined) throw new BadRequestError(['app: the stored JSON cannot be read']);
      app = parseApp(withoutAction(raw), 'app');
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof BadRequestError)) throw err;
      this.markInvalid(String(raw.name), raw, err.problems);
      return;
    }
    if (this.fileApp(app.name)) {
      emit('error', { code: 'PH_ERR_CONFLICT', app: app.name, message: `stored app ${app.name} is shadowed by the config file's app of that name` });
      return;
    }
    // Taken together too: the config file may since have taken this app's prefix or host name.
    const others = [...this.config.apps, ...[...this.apiApps.values()].filter((a) => a.name !== app.name)];
    const clash = appSetProblems([...others, app])
      .filter((p) => p.startsWith(`apps[${others.length}]`))
      .map((p) => `app${p.slice(`apps[${others.length}]`.length)}`);
    const problems = clash.length ? clash : this.routeProblems(app);
    if (problems.length) this.markInvalid(app.name, raw, problems);
    else {
      this.apiApps.set(app.name, app);
      this.invalid.delete(app.name);
    }
  }

  /** Runs `fn` in the registry's queue: a change from another node never interleaves with a local one. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial(fn);
  }

  /** The API apps as stored (for writing them back into a store that lost them). Inside exclusive(). */
  storedApps(): StoredApp[] {
    return [...[...this.apiApps.values()].map((a) => ({ ...a }) as StoredApp), ...[...this.invalid.entries()].filter(([n]) => !this.fileApp(n)).map(([, inv]) => inv.raw as StoredApp)];
  }

  /**
   * Another node changed the shared registry (cluster): `changes` are the
   * changed apps as now stored (undefined: removed), or with `whole` every
   * stored app; `place` changes where `node: any` apps run. Then the
   * processes follow: an app that is now this node's is set up (and started
   * when `autostart`, or when `wasRunning` says it ran on the node it moved
   * from); one that is no longer is stopped here. Inside exclusive().
   */
  async adopt(update: { changes: ReadonlyMap<string, StoredApp | undefined>; whole?: boolean; place?: () => void; wasRunning?: (app: AppConfig) => boolean }): Promise<void> {
    const before = new Map([...this.apiApps].map(([n, a]) => [n, { app: a, local: this.isLocal(a) }]));
    update.place?.();
    if (update.whole) {
      for (const name of [...this.apiApps.keys(), ...this.invalid.keys()]) {
        if (!update.changes.has(name) && !this.fileApp(name)) (this.apiApps.delete(name), this.invalid.delete(name));
      }
    }
    for (const [name, raw] of update.changes) {
      if (this.fileApp(name)) continue;
      const now = this.apiApps.get(name);
      // Unchanged (as parsed: the store keeps what was sent, the registry what it means): nothing to do.
      if (raw && now && sameApp(raw, now)) continue;
      this.externalProbes.delete(name);
      if (!raw) {
        this.apiApps.delete(name);
        this.invalid.delete(name);
        continue;
      }
      this.apiApps.delete(name);
      this.admitStored(raw);
    }
    await this.reconcile(before, update.wasRunning ?? (() => false));
  }

  /** Starts an app nobody waits for (a node takes it up); a failure is an error event. */
  private startInBackground(name: string): void {
    this.supervisor.start(name).catch((err: Error) => emit('error', { code: 'PH_ERR_SUPERVISOR', app: name, message: `${name}: ${err.message}` }));
  }

  private async reconcile(before: Map<string, { app: AppConfig; local: boolean }>, wasRunning: (app: AppConfig) => boolean): Promise<void> {
    for (const [name, was] of before) {
      const now = this.apiApps.get(name);
      if ((!now || !this.isLocal(now)) && was.local && was.app.cmd) await this.supervisor.remove(name);
      else if (now && !now.cmd && was.app.cmd) await this.supervisor.remove(name);
    }
    for (const app of this.apiApps.values()) {
      if (!app.cmd || !this.isLocal(app)) continue;
      const was = before.get(app.name);
      const isNew = !was || !was.local || !this.supervisor.status(app.name);
      if (!isNew && was.app === app) continue;
      try {
        await this.supervisor.set(app);
        if (isNew && (app.autostart || wasRunning(app))) this.startInBackground(app.name);
      } catch (err) {
        emit('error', { code: 'PH_ERR_SUPERVISOR', app: app.name, message: `${app.name}: ${(err as Error).message}` });
      }
    }
    this.rebuild();
  }

  /** Every valid app: config file first, then API-registered. */
  all(): AppConfig[] {
    const apps = [...this.config.apps, ...this.apiApps.values()];
    return this.invalid.size ? apps.filter((a) => !this.invalid.has(a.name)) : apps;
  }

  get(name: string): AppConfig | undefined {
    if (this.invalid.has(name)) return undefined;
    return this.fileApp(name) ?? this.apiApps.get(name);
  }

  view(name: string): AppView {
    const inv = this.invalid.get(name);
    if (inv) return this.invalidView(name, inv);
    const app = this.get(name);
    if (!app) throw new AppUnknownError(`no app named ${JSON.stringify(name)}`, { app: name });
    if (this.cluster && !this.isLocal(app)) return this.remoteView(app, this.cluster.ownerOf(app));
    const node = this.nodeOf(app);
    const st = this.supervisor.status(name);
    // An app Porthole does not run is "external": whether it answers comes from a probe (checkExternal).
    const ext = st ? undefined : app.cmd ? undefined : this.externalProbes.get(name)?.probe;
    const extMessage = st || app.cmd ? undefined : !ext ? 'not checked yet' : ext.ok ? undefined : ext.cause;
    return {
      ...app,
      ...(st?.port !== undefined ? { port: st.port } : {}),
      ...(st?.ws_port !== undefined ? { ws_port: st.ws_port } : {}),
      name,
      source: this.fileApp(name) ? 'config' : 'api',
      route: `${app.prefix ?? `/${name}`}/`,
      urls: this.gateway.urlsOf(app),
      state: st ? st.state : 'external',
      pid: st?.pid ?? null,
      ready: st ? st.ready : (ext?.ok ?? false),
      restarts: st?.restarts ?? 0,
      last_exit: st?.last_exit ?? null,
      kind: app.cmd ? 'process' : isBridgeOnly(app) ? 'bridge' : 'external',
      started_at: st?.started_at ?? null,
      ...(st?.message ? { message: st.message } : {}),
      ...(extMessage ? { message: extMessage } : {}),
      ...(st?.last_probe ? { last_probe: st.last_probe } : {}),
      ...(node !== null ? { node } : {}),
    };
  }

  /** An app another node runs: its state as that node last published it. */
  private remoteView(app: AppConfig, node: string | undefined): AppView {
    const st = node ? this.cluster?.remoteStatus(node, app.name) : undefined;
    const down = this.cluster?.nodeGate(app);
    return {
      ...app,
      ...(st?.port !== undefined ? { port: st.port } : {}),
      ...(st?.ws_port !== undefined ? { ws_port: st.ws_port } : {}),
      name: app.name,
      source: 'api',
      route: `${app.prefix ?? `/${app.name}`}/`,
      urls: this.gateway.urlsOf(app),
      state: st?.state ?? (app.cmd ? 'stopped' : 'external'),
      pid: st?.pid ?? null,
      ready: down ? false : (st?.ready ?? false),
      restarts: st?.restarts ?? 0,
      last_exit: st?.last_exit ?? null,
      kind: app.cmd ? 'process' : isBridgeOnly(app) ? 'bridge' : 'external',
      started_at: st?.started_at ?? null,
      node: node ?? null,
      ...(down ? { message: down.message, error: { code: down.code } } : st?.message ? { message: st.message } : {}),
    };
  }

  list(): AppView[] {
    return [...this.all().map((a) => a.name), ...this.invalid.keys()].map((n) => this.view(n));
  }

  private invalidView(name: string, inv: InvalidApp): AppView {
    return {
      ...inv.raw,
      name,
      source: this.fileApp(name) ? 'config' : 'api',
      route: `${inv.stub?.prefix ?? `/${name}`}/`,
      urls: [], // not routed while invalid
      state: 'invalid',
      pid: null,
      ready: false,
      restarts: 0,
      last_exit: null,
      kind: typeof inv.raw.cmd === 'string' ? 'process' : inv.raw.bridge !== undefined ? 'bridge' : 'external',
      started_at: null,
      message: inv.reason,
      error: { code: 'PH_ERR_APP_INVALID' },
    };
  }

  /**
   * Registers or updates an API app. The body is checked by the config
   * schema (400 naming the field), may not take a config-file or reserved
   * name (409), and is stored durably before this resolves.
   */
  async put(body: unknown): Promise<AppView> {
    const stored = await this.putNow(body);
    await this.checkExternal([stored.name]);
    return this.view(stored.name);
  }

  /**
   * Probes the external apps among `names` (default: all) whose last result
   * is older than EXTERNAL_PROBE_TTL_MS: TCP to `port` and `ws_port` (or GET
   * `health_path`), the unix `socket`, the `url`'s host and port, the bridge
   * target. One probe per app runs at a time; each takes at most
   * EXTERNAL_PROBE_TIMEOUT_MS.
   */
  async checkExternal(names?: readonly string[]): Promise<void> {
    const now = Date.now();
    const apps = (names ? names.map((n) => this.get(n)) : this.all()).filter((a): a is AppConfig => a !== undefined && !a.cmd && this.isLocal(a));
    await Promise.all(
      apps.map((app) => {
        const cached = this.externalProbes.get(app.name);
        if (cached && now - cached.at < EXTERNAL_PROBE_TTL_MS) return undefined;
        let running = this.probing.get(app.name);
        if (!running) {
          running = probeOnce(externalTarget(app), EXTERNAL_PROBE_TIMEOUT_MS)
            .then((probe) => void this.externalProbes.set(app.name, { at: Date.now(), probe }))
            .finally(() => this.probing.delete(app.name));
          this.probing.set(app.name, running);
        }
        return running;
      }),
    );
  }

  /**
   * Runs a change; when another node changed the shared registry since this
   * node validated against it, reads it again and checks the change again
   * (so two nodes never both take one prefix), after a random backoff, until
   * CONFLICT_BUDGET_MS is spent (and CONFLICT_MIN_ATTEMPTS made), then 409.
   */
  private async againOnConflict<T>(change: () => Promise<T>): Promise<T> {
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await change();
      } catch (err) {
        if (!(err instanceof StoreConflict || err instanceof StoreEpochChanged) || !this.cluster) throw err;
        const left = CONFLICT_BUDGET_MS - (performance.now() - started);
        if (attempt >= CONFLICT_MIN_ATTEMPTS && left <= 0) throw new ConflictError('the registry kept changing on other nodes while this change was checked: try again');
        // Random, so that the nodes that lost do not all come back at the moment the winner writes again.
        const backoff = Math.random() * Math.min(CONFLICT_BACKOFF_MAX_MS, CONFLICT_BACKOFF_BASE_MS * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(backoff, left))));
        await this.cluster.catchUp();
      }
    }
  }

  private putNow(body: unknown): Promise<AppView> {
    return this.serial(() => this.againOnConflict(async () => {
      const raw = withoutAction(body);
      const name = typeof raw.name === 'string' ? raw.name : undefined;
      await this.nodeField(raw);
      if (name && RESERVED_NAMES.includes(name)) throw new ConflictError(`"${name}" is reserved for the gateway`, { app: name });
      if (name && this.fileApp(name)) throw new ConflictError(`app ${name} is defined in the config file; change it there`, { app: name });
      let app: AppConfig;
      try {
        app = parseApp(raw, 'app');
      } catch (err) {
        if (err instanceof ConfigError) throw new BadRequestError(err.problems);
        throw err;
      }
      // Validated whole before anything is stored: whatever the route table would refuse
      // (an unreadable error_page…) is a 400 now, not a stored entry that breaks every rebuild.
      const problems = [...this.portProblems(app), ...this.routeProblems(app)];
      if (problems.length) throw new BadRequestError(problems);
      // The whole set must still be a valid config (prefixes and host names unique).
      const next = new Map(this.apiApps).set(app.name, app);
      try {
        withApps(this.config, [...this.config.apps, ...next.values()]);
      } catch (err) {
        if (err instanceof ConfigError) throw new ConflictError(err.problems.join('; '), { app: app.name });
        throw err;
      }
      // Who it would run as, checked before anything is stored (PH_ERR_APP_USER).
      if (app.cmd) await this.supervisor.checkUser(app);
      const isNew = !this.apiApps.has(app.name) && !this.invalid.has(app.name);
      await this.store.put(raw as StoredApp);
      this.apiApps.set(app.name, app);
      this.invalid.delete(app.name);
      this.externalProbes.delete(app.name);
      try {
        if (app.cmd && this.isLocal(app)) {
          await this.supervisor.set(app);
          // In a cluster `autostart` also means "whenever its node takes it up", as when another node adopts it.
          if (this.cluster && isNew && app.autostart) this.startInBackground(app.name);
        } else await this.supervisor.remove(app.name);
      } catch (err) {
        // A new app the supervisor cannot take (no free port) is not left stored half registered.
        if (isNew) {
          this.apiApps.delete(app.name);
          await this.store.delete(app.name);
        }
        throw err;
      }
      this.rebuild();
      return this.view(app.name);
    }));
  }

  remove(name: string): Promise<{ removed: string }> {
    return this.serial(() => this.againOnConflict(async () => {
      if (this.fileApp(name)) throw new ConflictError(`app ${name} is defined in the config file; remove it there`, { app: name });
      if (this.invalid.has(name)) {
        await this.supervisor.remove(name);
        await this.store.delete(name);
        this.invalid.delete(name);
        this.apiApps.delete(name);
        this.sleep.forget(name);
        this.rebuild();
        return { removed: name };
      }
      if (!this.apiApps.has(name)) throw new AppUnknownError(`no app named ${JSON.stringify(name)}`, { app: name });
      if (this.cluster) {
        // Shared: forgotten in the store first, so a store that cannot be reached leaves the app running and registered.
        await this.store.delete(name);
        await this.supervisor.remove(name);
      } else {
        await this.supervisor.remove(name);
        await this.store.delete(name);
      }
      this.apiApps.delete(name);
      this.externalProbes.delete(name);
      this.sleep.forget(name);
      this.rebuild();
      return { removed: name };
    }));
  }

  async act(name: string, action: 'start' | 'stop' | 'restart'): Promise<AppView> {
    this.refuseInvalid(name);
    const app = this.get(name);
    if (!app) throw new AppUnknownError(`no app named ${JSON.stringify(name)}`, { app: name });
    if (!app.cmd) throw new AppNotSupervisedError(`app ${name} has no cmd: Porthole only routes to it`, { app: name });
    if (this.cluster && !this.isLocal(app)) {
      // Carried out by the node that runs it.
      const node = this.cluster.ownerOf(app);
      const down = this.cluster.nodeGate(app);
      if (down || node === undefined) throw down ?? new AppStoppedError(`app ${name} is not placed on a node`, { app: name });
      return this.cluster.act(node, name, action, this.cluster.version());
    }
    // A hand stop sticks: requests do not wake the app (wake_on_request) until it is started again.
    if (action === 'stop') this.sleep.stoppedByHand(name);
    else this.sleep.startedByHand(name);
    await this.supervisor[action](name);
    this.rebuild(); // a first start may have allocated the port
    return this.view(name);
  }

  /** Turns autostart on or off for an API app (stored like any update). */
  async autostart(name: string, enabled: boolean): Promise<AppView> {
    this.refuseInvalid(name);
    const app = this.apiApps.get(name);
    if (!app) {
      if (this.fileApp(name)) throw new ConflictError(`app ${name} is defined in the config file; change autostart there`, { app: name });
      throw new AppUnknownError(`no app named ${JSON.stringify(name)}`, { app: name });
    }
    return this.put({ ...app, autostart: enabled });
  }

  /** A new config file: config apps added, changed or removed; API apps untouched. */
  setConfig(config: Config): Promise<void> {
    return this.serial(async () => {
      const shadowing = new Set(config.apps.map((a) => a.name));
      // Checked before anything changes: a new file app may not take an API app's prefix or host.
      withApps(config, [...config.apps, ...[...this.apiApps.values()].filter((a) => !shadowing.has(a.name))]);
      const before = new Map(this.config.apps.map((a) => [a.name, a]));
      this.config = config;
      for (const app of config.apps) {
        if (app.cmd) await this.supervisor.set(app);
        else if (before.get(app.name)?.cmd) await this.supervisor.remove(app.name);
        this.apiApps.delete(app.name); // the config file wins a name
        this.invalid.delete(app.name); // checked whole by the caller (gateway.validate)
      }
      for (const name of before.keys()) {
        if (config.apps.some((a) => a.name === name)) continue;
        await this.supervisor.remove(name);
        if (!this.apiApps.has(name)) this.invalid.delete(name);
      }
      this.rebuild();
    });
  }

  /**
   * Whether an app can take traffic now. Null (no promise) for a running or
   * unsupervised app, so the hot path stays synchronous; for a starting app,
   * a promise that settles when it is ready or cannot be.
   */
  readonly appGate = (name: string, req?: IncomingMessage): null | Promise<PortholeError | null> => {
    const inv = this.invalid.get(name);
    if (inv) return Promise.resolve(invalidError(name, inv));
    if (this.cluster) {
      const app = this.get(name);
      if (app && !this.isLocal(app)) {
        // Another node's app: its node answers for it; this node only knows whether that node is up.
        const down = this.cluster.nodeGate(app);
        return down ? Promise.resolve(down) : null;
      }
    }
    const st = this.supervisor.status(name);
    if (!st || st.state === 'running') return null;
    const app = this.get(name);
    // wake_on_request: a stopped app is started, a browser may get the waiting page (app-sleep.ts).
    if (app?.wake_on_request) return this.sleep.wake(app, st, req);
    if (st.state === 'stopped' || st.state === 'failed') {
      return Promise.resolve(new AppStoppedError(`app ${name} is ${st.state}${st.message ? ` (${st.message})` : ''}`, { app: name }));
    }
    const timeout = app?.start_timeout ?? DEFAULT_START_TIMEOUT;
    // The cause comes first: a WebSocket close reason keeps only 123 bytes.
    return this.supervisor.waitReady(name, timeout).then((r) => {
      if (r === 'running') return null;
      const now = this.supervisor.status(name);
      if (r === 'timeout') {
        const cause = now?.last_probe ? `: ${now.last_probe}` : '';
        return new AppStartingError(`app ${name} not ready${cause} (waited ${timeout / 1000} s)`, { app: name });
      }
      return new AppStoppedError(`app ${name} is ${r}${now?.message ? `: ${now.message}` : ''}`, { app: name });
    });
  };

  /**
   * Rebuilds the gateway's routes from every app, with the ports the
   * supervisor allocated. An app whose route can no longer be built (its
   * error_page was deleted since it was checked) turns `invalid` and the
   * others stay routed.
   */
  private rebuild(): void {
    this.sleep.sync();
    try {
      this.gateway.reload(this.routedConfig(), { peers: this.peers() });
      return;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
    }
    for (const app of this.all()) {
      const problems = this.routeProblems(app);
      if (!problems.length) continue;
      this.markInvalid(app.name, { ...app }, problems);
      void this.supervisor.remove(app.name).catch((err: Error) => emit('error', { code: 'PH_ERR_SUPERVISOR', app: app.name, message: err.message }));
    }
    this.gateway.reload(this.routedConfig(), { peers: this.peers() });
  }

  /** The apps another node runs, and how to reach that node (cluster). */
  private peers(): Map<string, { node: string; url: string; secret: string; ca?: string }> {
    const peers = new Map<string, { node: string; url: string; secret: string; ca?: string }>();
    if (!this.cluster) return peers;
    for (const app of this.apiApps.values()) {
      const node = this.cluster.ownerOf(app);
      if (node === undefined || node === this.cluster.node) continue;
      const peer = this.cluster.peerOf(node);
      if (peer) peers.set(app.name, peer);
    }
    return peers;
  }

  /** Routes again (cluster: a node came up at a new address, or went down). */
  refreshRoutes(): void {
    this.rebuild();
  }

  /**
   * The app's \`node\`: in a cluster, the node it is registered through when
   * not given, and a node that is part of the cluster (or \`any\`); outside
   * a cluster, not allowed (400).
   */
  private async nodeField(raw: Record<string, unknown>): Promise<void> {
    const node = raw.node;
    if (!this.cluster) {
      if (node !== undefined) throw new BadRequestError(['app.node: this gateway is not a node of a cluster (docs/cluster.md): leave node out']);
      return;
    }
    if (node === undefined) {
      raw.node = this.cluster.node;
      return;
    }
    if (typeof node === 'string' && node !== 'any' && !this.cluster.isKnown(node)) await this.cluster.refreshNodes().catch(() => undefined);
    if (typeof node === 'string' && node !== 'any' && !this.cluster.isKnown(node)) {
      throw new BadRequestError([`app.node: no node named ${JSON.stringify(node)} in this cluster (nodes: ${this.cluster.knownNodes().join(', ')}; or "any")`]);
    }
  }

  /** The valid apps with their ports, plus a stub route for each invalid app that collides with none. */
  private routedConfig(): Config {
    const apps = this.all().map((app) => {
      if (app.port !== undefined || app.url !== undefined || app.socket !== undefined) return app;
      const port = this.supervisor.status(app.name)?.port ?? (this.isLocal(app) ? undefined : PLACEHOLDER_PORT);
      return port === undefined ? app : { ...app, port };
    });
    const names = new Set(apps.map((a) => a.name));
    const prefixes = new Set(apps.map((a) => a.prefix ?? `/${a.name}`));
    for (const { stub } of this.invalid.values()) {
      if (!stub || names.has(stub.name) || prefixes.has(stub.prefix ?? `/${stub.name}`)) continue;
      apps.push(stub);
      prefixes.add(stub.prefix ?? `/${stub.name}`);
    }
    return withApps(this.config, apps);
  }

  /**
   * What the route table would refuse in this app alone (an unreadable
   * error_page, a bridge token file…), with paths such as `app.error_page`.
   * A supervised app without a port yet is checked with a stand-in port.
   */
  private routeProblems(app: AppConfig): string[] {
    const unrouted = app.port === undefined && app.url === undefined && app.socket === undefined && !isBridgeOnly(app);
    try {
      this.gateway.validate(withApps(this.config, [unrouted ? { ...app, port: PLACEHOLDER_PORT } : app]));
      return [];
    } catch (err) {
      // Anything the route table throws is this app's problem, never the gateway's end.
      if (!(err instanceof ConfigError)) return [`app: ${(err as Error).message}`];
      // Problems of the global config (its own error_page) are not this app's to answer for.
      return err.problems.filter((p) => p.startsWith('apps[0]')).map((p) => `app${p.slice('apps[0]'.length)}`);
    }
  }

  private portProblems(app: AppConfig): string[] {
    const own = this.gatewayPort;
    if (own === undefined) return [];
    return (['port', 'ws_port'] as const)
      .filter((k) => app[k] === own)
      .map((k) => `app.${k}: ${own} is the gateway's own port (requests would loop back into the gateway)`);
  }

  private markInvalid(name: string, raw: Record<string, unknown>, problems: readonly string[]): void {
    const reason = problems.join('; ');
    let stub: AppConfig | undefined;
    try {
      stub = parseApp({ name, port: PLACEHOLDER_PORT, ...(typeof raw.prefix === 'string' ? { prefix: raw.prefix } : {}) });
    } catch {
      try {
        stub = parseApp({ name, port: PLACEHOLDER_PORT });
      } catch {
        stub = undefined; // not even a valid name: nothing to route
      }
    }
    this.invalid.set(name, { raw, reason, stub });
    this.apiApps.delete(name);
    emit('error', { code: 'PH_ERR_APP_INVALID', app: name, message: `app ${name} is invalid and not routed (register it again to fix it): ${reason}` });
  }

  private refuseInvalid(name: string): void {
    const inv = this.invalid.get(name);
    if (inv) throw invalidError(name, inv);
  }

  private fileApp(name: string): AppConfig | undefined {
    return this.config.apps.find((a) => a.name === name);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

/** What to probe to tell whether an app Porthole does not run answers. */
function externalTarget(app: AppConfig): ReadinessTarget {
  const tcp: { host: string; port: number }[] = [];
  if (app.url !== undefined) {
    const u = new URL(app.url);
    const secure = u.protocol === 'https:' || u.protocol === 'wss:';
    tcp.push({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : secure ? 443 : 80 });
  }
  for (const spec of [app.bridge, app.ws_bridge]) {
    const t = spec === undefined ? undefined : parseHostPort(spec);
    if (t && typeof t !== 'string') tcp.push(t);
  }
  return { port: app.port, ws_port: app.ws_port, health_path: app.health_path, socket: app.socket, tcp };
}

/** Whether a stored app means the same as the registry's parsed one. */
function sameApp(raw: StoredApp, now: AppConfig): boolean {
  try {
    return JSON.stringify(parseApp(withoutAction(raw), 'app')) === JSON.stringify(now);
  } catch {
    return false;
  }
}

function invalidError(name: string, inv: InvalidApp): AppInvalidError {
  return new AppInvalidError(`app ${name} is invalid and not routed: ${inv.reason}`, { app: name });
}

function withoutAction(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('app: expected a JSON object');
  const { action: _action, ...rest } = body as Record<string, unknown>;
  return rest;
}
