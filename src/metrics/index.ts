export { createMetrics, statusClass, type Metrics, type MetricsOptions } from './metrics.js';
export { metricsEndpoint, METRICS_PATH } from './endpoint.js';
export { listenMetrics, METRICS_LISTEN_PATH, type MetricsListener, type MetricsListenOptions } from './listener.js';
