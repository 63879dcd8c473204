/**
 * The primary's side of `workers: N` (docs/workers.md): forks the workers, gives each the
 * route table before it listens, pushes the table again on every change, answers their
 * questions, keeps what they report, drains them, and replaces one that dies.
 *
 * node:cluster shares the listening socket. The workers accept on it themselves
 * (SCHED_NONE), not the primary round-robin: with round-robin, a connection the primary
 * handed to a worker in the moment it died was never answered nor closed (node:cluster
 * waits for the dead worker's reply), and the primary spent CPU on every connection that
 * the workers need on a 2-core machine. NODE_CLUSTER_SCHED_POLICY=rr still chooses
 * round-robin (docs/workers.md has the numbers of both).
 */
import cluster, { type Worker } from 'node:cluster';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { InternalError, PortholeError, WorkerExitError } from '../errors.js';
import { emit } from '../events.js';
import type { AppRegistry } from '../admin/registry.js';
import type { Supervisor } from '../apps/supervisor.js';
import type { Gateway, ListenAddress } from '../gateway/gateway.js';
import type { LiveConnection } from '../gateway/tunnel.js';
import { listenInternal, newSecret, type InternalListener } from './internal-hop.js';
import { toWire, type Snapshot, type ToPrimary, type ToWorker } from './protocol.js';
import { RestartBudget } from './restart-budget.js';

/** What the pool needs of the server it serves (create-server.ts hands it over at listen). */
export interface PoolDeps {
  gateway: Gateway;
  registry: AppRegistry;
  supervisor: Supervisor;
  baseDir: string;
  dataDir: string;
}

/** How long workers get to listen at start (a config with many apps' error pages to read is still far below). */
const LISTEN_TIMEOUT_MS = 30_000;
/** An admin call waits at most this for the workers' fresh connection lists, then answers with the last ones. */
const REFRESH_WAIT_MS = 300;

interface Slot {
  worker: Worker;
  listening: boolean;
  connections: (LiveConnection & { worker: number })[];
  reported?: () => void;
}

export class WorkerPool {
  readonly #count: number;
  readonly #slots = new Map<number, Slot>();
  readonly #budget = new RestartBudget();
  #deps: PoolDeps | undefined;
  #internal: InternalListener | undefined;
  #secret = newSecret();
  #listen: { host: string; port: number } | undefined;
  #draining = false;
  #pushQueued = false;
  /** The worker whose `/_porthole/` request the primary is answering (set around a synchronous call, see health()). */
  #serving = 0;

  constructor(count: number) {
    this.#count = count;
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [] });
  }

  get size(): number {
    return this.#count;
  }

  /** Starts the internal listener and the workers; resolves once every worker listens on `host:port`. */
  async listen(at: { host: string; port: number }, deps: PoolDeps): Promise<ListenAddress> {
    this.#deps = deps;
    this.#listen = at;
    this.#internal = await listenInternal({
      secret: this.#secret,
      gatewayId: deps.gateway.id,
      handle: (req, res, client) => {
        // Fresh lists first: a scrape or the dashboard right after a tunnel opened must count it.
        void this.refresh().then(() => {
          this.#serving = client.worker;
          try {
            deps.gateway.requestListener(req, res);
          } finally {
            this.#serving = 0;
          }
        });
      },
    });
    deps.supervisor.on('state', () => this.routesChanged());
    // idle_stop hears from every worker before it stops an app (their own reports come every second).
    deps.registry.sleep.freshActivity = () => this.refresh();
    try {
      const first = await this.#fork();
      // Every worker asks for the same address: node:cluster keys the shared socket on it (port 0 included).
      await Promise.all(Array.from({ length: this.#count - 1 }, () => this.#fork()));
      const shown = first.host.includes(':') ? `[${first.host}]` : first.host;
      return { host: first.host, port: first.port, url: `http://${shown}:${first.port}` };
    } catch (err) {
      await this.drain(0);
      throw err;
    }
  }

  #fork(): Promise<{ host: string; port: number }> {
    const deps = this.#deps!;
    const worker = cluster.fork();
    const pool = this;
    const slot: Slot = { worker, listening: false, connections: [] };
    this.#slots.set(worker.id, slot);
    worker.on('message', (msg: ToPrimary) => this.#onMessage(slot, msg));
    worker.on('exit', (code, signal) => this.#onExit(slot, code, signal));
    // A message to a worker that has just died (before its exit is read here) fails with EPIPE,
    // emitted on the worker: unhandled, it would end the primary and every other worker's tunnels.
    // A worker the primary cannot write to gets no route changes: it is ended, and its exit is
    // reported and replaced like any other (PH_ERR_WORKER_EXIT); one already dead is left to that.
    worker.on('error', () => void worker.process.kill('SIGKILL'));
    worker.once('message', function ready(msg: ToPrimary) {
      if (msg.t !== 'ready') return void worker.once('message', ready);
      // The routes in force now, not at fork: a replacement gets the ones of the moment it can take them.
      const start: ToWorker = { t: 'start', gatewayId: deps.gateway.id, baseDir: deps.baseDir, dataDir: deps.dataDir, listen: pool.#listen!, primary: { port: pool.#internal!.port, secret: pool.#secret }, snapshot: pool.#snapshot() };
      worker.send(start);
    });
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(Object.assign(new Error(`worker ${worker.process.pid} did not listen within ${LISTEN_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })), LISTEN_TIMEOUT_MS);
      const onMessage = (msg: ToPrimary) => {
        if (msg.t === 'listening') (clearTimeout(timer), worker.off('message', onMessage), ok({ host: msg.host, port: msg.port }));
        if (msg.t === 'listen-failed') (clearTimeout(timer), worker.off('message', onMessage), fail(Object.assign(new Error(msg.message), { code: msg.code })));
      };
      worker.on('message', onMessage);
      worker.once('exit', () => (clearTimeout(timer), fail(Object.assign(new Error(`worker ${worker.process.pid} exited before it listened`), { code: 'PH_ERR_WORKER_EXIT' }))));
    });
  }

  #onMessage(slot: Slot, msg: ToPrimary): void {
    switch (msg.t) {
      case 'listening':
        slot.listening = true;
        return;
      case 'events':
        // Re-published here: the logger, the metrics, the activity feed and idle_stop see every worker's.
        for (const [name, data] of msg.batch) emit(name, data);
        return;
      case 'gate':
        return this.#gate(slot, msg.id, msg.app, msg.method, msg.accept);
      case 'report': {
        slot.connections = msg.connections as Slot['connections'];
        for (const app of msg.busy) this.#deps?.gateway.activity.touch(app);
        const done = slot.reported;
        slot.reported = undefined;
        return done?.();
      }
    }
  }

  /** The registry decides (it may wake a sleeping app); the worker waits for the answer. */
  #gate(slot: Slot, id: number, app: string, method?: string, accept?: string): void {
    const answer = (err: PortholeError | null) => {
      if (slot.worker.isConnected()) slot.worker.send({ t: 'gate', id, error: err ? toWire(err) : null } satisfies ToWorker);
    };
    // Only the method and Accept matter (a browser's GET gets the waiting page): app-sleep.ts.
    const req = { method, headers: accept === undefined ? {} : { accept } } as unknown as IncomingMessage;
    const decided = this.#deps!.registry.appGate(app, req);
    if (decided === null) return answer(null);
    decided.then(answer, (err: Error) => answer(err instanceof PortholeError ? err : new InternalError(err.message, { app })));
  }

  #onExit(slot: Slot, code: number | null, signal: string | null): void {
    this.#slots.delete(slot.worker.id);
    slot.reported?.();
    if (this.#draining) return;
    const pid = slot.worker.process.pid;
    const err = new WorkerExitError(`worker ${pid} exited (${signal ? `signal ${signal}` : `code ${code}`}); its tunnels are closed, the other workers' stay open`);
    emit('error', { code: err.code, message: err.message, gateway: this.#deps?.gateway.id });
    // Before it listened, the start is failing: listen() rejects; no replacement.
    if (!slot.listening) return;
    const refused = this.#budget.take();
    if (refused) return emit('error', { code: refused.code, message: refused.message, gateway: this.#deps?.gateway.id });
    this.#fork().catch((e: Error) => emit('error', { code: 'PH_ERR_WORKER_EXIT', message: `the worker that replaces ${pid} did not start: ${e.message}`, gateway: this.#deps?.gateway.id }));
  }

  /** The route table changed, or an app's state did: every worker gets the new snapshot (once per turn of the event loop). */
  routesChanged(): void {
    if (this.#pushQueued || !this.#deps) return;
    this.#pushQueued = true;
    setImmediate(() => {
      this.#pushQueued = false;
      const snap = this.#snapshot();
      for (const slot of this.#slots.values()) if (slot.worker.isConnected()) slot.worker.send(snap);
    });
  }

  #snapshot(): Snapshot {
    const { gateway, registry, supervisor } = this.#deps!;
    const config = gateway.config;
    const open = config.apps
      .filter((a) => {
        const st = supervisor.status(a.name);
        return registry.get(a.name) !== undefined && (st === undefined || st.state === 'running');
      })
      .map((a) => a.name);
    return { t: 'snapshot', config, open };
  }

  /** Asks every worker for its open connections; resolves when all answered, or after REFRESH_WAIT_MS. */
  refresh(): Promise<void> {
    const waits = [...this.#slots.values()]
      .filter((s) => s.worker.isConnected())
      .map(
        (slot) =>
          new Promise<void>((ok) => {
            const prev = slot.reported;
            slot.reported = () => (prev?.(), ok());
            slot.worker.send({ t: 'report' } satisfies ToWorker);
          }),
      );
    return Promise.race([Promise.all(waits).then(() => undefined), new Promise<void>((ok) => setTimeout(ok, REFRESH_WAIT_MS).unref())]);
  }

  /** Every worker's open tunnels and bridge connections, as last reported (each with its worker's pid). */
  connections(): LiveConnection[] {
    return [...this.#slots.values()].flatMap((s) => s.connections);
  }

  /** For `/_porthole/health`: each worker, and the tunnels of all (the primary holds none). */
  health(): Record<string, unknown> {
    const workers = [...this.#slots.values()].map((s) => ({ pid: s.worker.process.pid, listening: s.listening, tunnels: s.connections.length }));
    return { tunnels: workers.reduce((n, w) => n + w.tunnels, 0), workers, ...(this.#serving ? { worker: this.#serving } : {}) };
  }

  /**
   * Every worker drains (close frames 1001, requests finish within `timeoutMs`) and exits;
   * one still there after the timeout and a grace second is killed. No worker is replaced
   * from here on.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    const exits = [...this.#slots.values()].map((slot) => new Promise<void>((ok) => (slot.worker.process.exitCode !== null || slot.worker.process.signalCode !== null ? ok() : slot.worker.once('exit', () => ok()))));
    for (const slot of this.#slots.values()) if (slot.worker.isConnected()) slot.worker.send({ t: 'drain', timeoutMs } satisfies ToWorker);
    const grace = setTimeout(() => {
      for (const slot of this.#slots.values()) slot.worker.process.kill('SIGKILL');
    }, timeoutMs + 1_000);
    await Promise.all(exits);
    clearTimeout(grace);
    await this.#internal?.close();
  }
}
