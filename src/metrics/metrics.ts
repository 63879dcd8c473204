/**
 * Prometheus metrics (issue 9, section 3), built from the events of
 * src/events.ts: nothing here is called from the gateway's hot path, and the
 * gateway never imports this module. The open-tunnel gauge is read when
 * Prometheus scrapes, through a callback the composition root gives
 * (createServer reads the gateway's tunnel and bridge sets).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { subscribe, type EventMap } from '../events.js';

export interface MetricsOptions {
  /** Count only the events of this gateway (its `id`); default: every gateway in the process. */
  gatewayId?: string;
  /** The app of each open tunnel and bridge connection, read at scrape time. */
  openTunnels?: () => Iterable<string>;
  /** Process CPU, memory, open fds, event loop lag (prom-client's defaults). Default true. */
  processMetrics?: boolean;
}

export interface Metrics {
  /** A registry of its own (never prom-client's global one). */
  readonly registry: Registry;
  /** The `Content-Type` of `text()`. */
  readonly contentType: string;
  /** Every metric in Prometheus' text format. */
  text(): Promise<string>;
  /** Unsubscribes from the events. */
  close(): void;
}

/** Seconds; requests and handshakes are mostly milliseconds. */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds; tunnels live from a moment to days. */
const TUNNEL_BUCKETS = [0.1, 1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600];

/** `2xx`…`5xx`; anything else (0 for a request cut before an answer) is `other`. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** The app label: admin and unrouted requests have none. */
const appLabel = (app: string | null) => app ?? '';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const mine = (e: { gateway?: string }) => options.gatewayId === undefined || e.gateway === options.gatewayId;

  const requests = new Counter({ name: 'porthole_http_requests_total', help: 'HTTP requests answered, by app, method and status class.', labelNames: ['app', 'method', 'status_class'], registers: [registry] });
  const requestSeconds = new Histogram({ name: 'porthole_http_request_duration_seconds', help: 'Time to answer an HTTP request, by app.', labelNames: ['app'], buckets: REQUEST_BUCKETS, registers: [registry] });
  const upgrades = new Counter({ name: 'porthole_ws_upgrades_total', help: 'WebSocket upgrades, by app and result (accepted, or the refusal code).', labelNames: ['app', 'result'], registers: [registry] });
  const handshakeSeconds = new Histogram({ name: 'porthole_ws_handshake_duration_seconds', help: 'Time from connecting to the app to the 101 sent back (proxied apps), by app.', labelNames: ['app'], buckets: REQUEST_BUCKETS, registers: [registry] });
  new Gauge({
    name: 'porthole_tunnels_open',
    help: 'Open WebSocket tunnels and bridge connections, by app.',
    labelNames: ['app'],
    registers: [registry],
    collect() {
      if (!options.openTunnels) return;
      const counts = new Map<string, number>();
      for (const app of options.openTunnels()) counts.set(app, (counts.get(app) ?? 0) + 1);
      this.reset();
      for (const [app, n] of counts) this.set({ app }, n);
    },
  });
  const tunnelBytes = new Counter({ name: 'porthole_tunnel_bytes_total', help: 'Bytes carried by closed tunnels, by app and direction (in: client to app, out: app to client).', labelNames: ['app', 'direction'], registers: [registry] });
  const tunnelMessages = new Counter({ name: 'porthole_tunnel_messages_total', help: 'Frames carried by closed tunnels, by app and direction.', labelNames: ['app', 'direction'], registers: [registry] });
  const tunnelCloses = new Counter({ name: 'porthole_tunnel_closes_total', help: 'Tunnels closed, by app, close code (none: no close frame) and the side that closed first.', labelNames: ['app', 'code', 'closed_by'], registers: [registry] });
  const tunnelSeconds = new Histogram({ name: 'porthole_tunnel_duration_seconds', help: 'How long tunnels stayed open, by app.', labelNames: ['app'], buckets: TUNNEL_BUCKETS, registers: [registry] });
  const appState = new Gauge({ name: 'porthole_app_state', help: 'A supervised app\'s state: 1 for the current one.', labelNames: ['app', 'state'], registers: [registry] });
  const appStarts = new Counter({ name: 'porthole_app_starts_total', help: 'Times a supervised app was started (the first start and every restart).', labelNames: ['app'], registers: [registry] });
  const appExitCode = new Gauge({ name: 'porthole_app_last_exit_code', help: 'A supervised app\'s last exit code (-1 when killed by a signal).', labelNames: ['app'], registers: [registry] });
  const STATES = ['stopped', 'starting', 'running', 'backoff', 'failed', 'stopping'];

  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'porthole_' });

  const offs = [
    subscribe('request', (e: EventMap['request']) => {
      if (!mine(e)) return;
      const app = appLabel(e.app);
      requests.inc({ app, method: e.method, status_class: statusClass(e.status) });
      requestSeconds.observe({ app }, e.ms / 1000);
    }),
    subscribe('upgrade', (e: EventMap['upgrade']) => {
      if (!mine(e)) return;
      upgrades.inc({ app: appLabel(e.app), result: e.accepted ? 'accepted' : (e.code ?? `status_${e.status ?? 'none'}`) });
      if (e.accepted && e.ms !== undefined) handshakeSeconds.observe({ app: appLabel(e.app) }, e.ms / 1000);
    }),
    subscribe('tunnel.close', (e: EventMap['tunnel.close']) => {
      if (!mine(e)) return;
      const app = e.app;
      tunnelBytes.inc({ app, direction: 'in' }, e.bytesIn);
      tunnelBytes.inc({ app, direction: 'out' }, e.bytesOut);
      tunnelMessages.inc({ app, direction: 'in' }, e.framesIn);
      tunnelMessages.inc({ app, direction: 'out' }, e.framesOut);
      tunnelCloses.inc({ app, code: e.closeCode === null ? 'none' : String(e.closeCode), closed_by: e.closedBy });
      tunnelSeconds.observe({ app }, e.ms / 1000);
    }),
    subscribe('app', (e: EventMap['app']) => {
      if (!STATES.includes(e.state)) return;
      for (const s of STATES) appState.set({ app: e.app, state: s }, s === e.state ? 1 : 0);
      if (e.state === 'starting') appStarts.inc({ app: e.app });
      if (e.exit) appExitCode.set({ app: e.app }, e.exit.code ?? -1);
    }),
  ];

  return {
    registry,
    contentType: registry.contentType,
    text: () => registry.metrics(),
    close() {
      for (const off of offs.splice(0)) off();
    },
  };
}
