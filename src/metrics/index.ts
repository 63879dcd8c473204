export { createMetrics, statusClass, type Metrics, type MetricsOptions } from './metrics.js';
export { APP_STATES, type AppSnapshot } from './app-metrics.js';
export type { OpenConnection } from './tunnel-metrics.js';
export { metricsEndpoint, METRICS_PATH } from './endpoint.js';
export { listenMetrics, METRICS_LISTEN_PATH, type MetricsListener, type MetricsListenOptions } from './listener.js';
