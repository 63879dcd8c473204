export { createMetrics, statusClass, type Metrics, type MetricsOptions } from './metrics.js';
export { metricsEndpoint, METRICS_PATH } from './endpoint.js';
