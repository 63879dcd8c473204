/**
 * The apps' series: state, readiness, automatic restarts, last exit code
 * (and starts, counted from the events). They are gauges of *state*, so they
 * are read when Prometheus scrapes, from the registry the composition root
 * hands in (`apps`): an app that never changed state since the gateway
 * started (an external app, a stopped one) still has its series, and a
 * removed app loses them. Without `apps`, the same series are kept from the
 * `app` events (supervised apps only).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { subscribe, type EventMap } from '../events.js';

/** One app as the registry (and the admin API) shows it; `AppView` fits. */
export interface AppSnapshot {
  name: string;
  /** A supervised app's state, `external` (an app Porthole does not run) or `invalid`. */
  state: string;
  /** Traffic may be sent: a supervised app's readiness check passed, or an external app answered its probe. */
  ready: boolean;
  /** Automatic restarts since the app was registered. */
  restarts: number;
  last_exit: { code: number | null; signal: string | null } | null;
}

/** Every state an app can show; each app gets a series per state, 1 for the current one. */
export const APP_STATES = ['stopped', 'starting', 'running', 'backoff', 'failed', 'stopping', 'external', 'invalid'] as const;
const SUPERVISED = new Set<string>(['stopped', 'starting', 'running', 'backoff', 'failed', 'stopping']);

/** Registers the app series; returns the unsubscribe of the events it follows. */
export function appMetrics(registry: Registry, apps: (() => Promise<readonly AppSnapshot[]> | readonly AppSnapshot[]) | undefined): () => void {
  // Without a registry to read, the events make one (supervised apps only).
  const fromEvents = new Map<string, AppSnapshot>();
  const read = apps ?? (() => [...fromEvents.values()]);
  // The four gauges' collect() are called together when a scrape starts: they share one read.
  let reading: Promise<readonly AppSnapshot[]> | undefined;
  const snapshot = () => (reading ??= Promise.resolve(read()).finally(() => (reading = undefined)));

  new Gauge({
    name: 'porthole_app_state',
    help: 'An app\'s state: 1 for the current one, 0 for the others.',
    labelNames: ['app', 'state'],
    registers: [registry],
    async collect() {
      const list = await snapshot();
      this.reset();
      for (const a of list) for (const s of APP_STATES) this.set({ app: a.name, state: s }, s === a.state ? 1 : 0);
    },
  });
  new Gauge({
    name: 'porthole_app_ready',
    help: 'Whether an app takes traffic: 1 when its readiness check (or, for an external app, its probe) passes.',
    labelNames: ['app'],
    registers: [registry],
    async collect() {
      const list = await snapshot();
      this.reset();
      for (const a of list) this.set({ app: a.name }, a.ready ? 1 : 0);
    },
  });
  new Counter({
    name: 'porthole_app_restarts_total',
    help: 'Automatic restarts of a supervised app (after a crash, or an exit with restart: always) since it was registered.',
    labelNames: ['app'],
    registers: [registry],
    async collect() {
      const list = await snapshot();
      this.reset();
      for (const a of list) if (SUPERVISED.has(a.state)) this.inc({ app: a.name }, a.restarts);
    },
  });
  new Gauge({
    name: 'porthole_app_last_exit_code',
    help: 'A supervised app\'s last exit code (-1 when a signal killed it); absent until it has exited once.',
    labelNames: ['app'],
    registers: [registry],
    async collect() {
      const list = await snapshot();
      this.reset();
      for (const a of list) if (a.last_exit) this.set({ app: a.name }, a.last_exit.code ?? -1);
    },
  });
  const starts = new Counter({ name: 'porthole_app_starts_total', help: 'Times a supervised app was started (the first start and every restart).', labelNames: ['app'], registers: [registry] });

  return subscribe('app', (e: EventMap['app']) => {
    if (!SUPERVISED.has(e.state)) return;
    if (e.state === 'starting') starts.inc({ app: e.app });
    if (apps) return;
    const before = fromEvents.get(e.app);
    fromEvents.set(e.app, {
      name: e.app,
      state: e.state,
      // The runner is ready exactly while it is running (app-runner.ts sets both together).
      ready: e.state === 'running',
      // From backoff straight to starting is the supervisor's automatic restart.
      restarts: (before?.restarts ?? 0) + (before?.state === 'backoff' && e.state === 'starting' ? 1 : 0),
      last_exit: e.exit ?? before?.last_exit ?? null,
    });
  });
}
