/**
 * Prometheus metrics (issue 9, section 3), built from the events of
 * src/events.ts: nothing here is called from the gateway's hot path, and the
 * gateway never imports this module. What is state rather than a stream of
 * events (open connections, the apps) is read when Prometheus scrapes,
 * through callbacks the composition root gives (createServer reads the
 * gateway's tunnel and bridge sets and the app registry).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import { subscribe, type EventMap } from '../events.js';
import { appMetrics, type AppSnapshot } from './app-metrics.js';
import { clusterMetrics, type ClusterSnapshot } from './cluster-metrics.js';
import { HotCounter, HotHistogram } from './hot-series.js';
import { tunnelMetrics, type OpenConnection } from './tunnel-metrics.js';

export interface MetricsOptions {
  /** Count only the events of this gateway (its `id`); default: every gateway in the process. */
  gatewayId?: string;
  /** The gateway's open WebSocket tunnels and bridge connections, read at scrape time. */
  openConnections?: () => Iterable<OpenConnection>;
  /**
   * Every app with its state, readiness, restarts and last exit, read at
   * scrape time (`registry.list()` fits). Without it, the app series come
   * from the `app` events (supervised apps only).
   */
  apps?: () => Promise<readonly AppSnapshot[]> | readonly AppSnapshot[];
  /** A cluster node's view (nodes up, store up, version, lease), read at scrape time. */
  cluster?: () => ClusterSnapshot;
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

const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** `2xx`…`5xx`; anything else (0 for a request cut before an answer) is `other`. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100)] : 'other';
}

/** The app label: admin and unrouted requests have none. */
const appLabel = (app: string | null) => app ?? '';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const mine = (e: { gateway?: string }) => options.gatewayId === undefined || e.gateway === options.gatewayId;

  // Updated per request and per upgrade: hot-series.ts says why these are not prom-client's own.
  const requests = new HotCounter({ name: 'porthole_http_requests_total', help: 'HTTP requests answered, by app, method and status class.', labelNames: ['app', 'method', 'status_class'], registry });
  const requestSeconds = new HotHistogram({ name: 'porthole_http_request_duration_seconds', help: 'Time to answer an HTTP request, by app.', labelNames: ['app'], buckets: REQUEST_BUCKETS, registry });
  const upgrades = new HotCounter({ name: 'porthole_ws_upgrades_total', help: 'WebSocket upgrades, by app and result (accepted, or the refusal code).', labelNames: ['app', 'result'], registry });
  const handshakeSeconds = new HotHistogram({ name: 'porthole_ws_handshake_duration_seconds', help: 'Time from connecting to the app to the 101 sent back (proxied apps), by app.', labelNames: ['app'], buckets: REQUEST_BUCKETS, registry });

  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'porthole_' });

  const offs = [
    subscribe('request', (e: EventMap['request']) => {
      if (!mine(e)) return;
      const app = appLabel(e.app);
      requests.inc(app, e.method, statusClass(e.status));
      requestSeconds.observe(e.ms / 1000, app);
    }),
    subscribe('upgrade', (e: EventMap['upgrade']) => {
      if (!mine(e)) return;
      upgrades.inc(appLabel(e.app), e.accepted ? 'accepted' : (e.code ?? `status_${e.status ?? 'none'}`));
      if (e.accepted && e.ms !== undefined) handshakeSeconds.observe(e.ms / 1000, appLabel(e.app));
    }),
    tunnelMetrics(registry, mine, options.openConnections),
    appMetrics(registry, options.apps),
    clusterMetrics(registry, options.cluster),
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
