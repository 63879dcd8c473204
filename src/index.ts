/**
 * Porthole as a library. See docs/library.md for the seed 001 pattern:
 * an existing `http.Server` hands the paths it wants proxied to a gateway.
 */
export * from './errors.js';
export { parseConfig, parseApp } from './config/schema.js';
export type { Config, AppConfig, TlsConfig } from './config/schema.js';
export { subscribe, EVENT_NAMES } from './events.js';
export type { EventMap, EventName } from './events.js';
export { createGateway, Gateway } from './gateway/gateway.js';
export type { GatewayOptions, ListenAddress, PeerListenOptions, PeerTarget, RouteExtras } from './gateway/gateway.js';
export { loadConfigFile, watchConfigFile } from './config/load.js';
// The whole server (gateway, supervised apps, admin API and token), as `porthole serve` runs it.
export { createServer, ServerStartError, defaultDataDir } from './server/create-server.js';
export type { ServerOptions, ServerStarted, PortholeServer } from './server/create-server.js';
export { createMetrics, listenMetrics, metricsEndpoint, METRICS_PATH } from './metrics/index.js';
export type { AppSnapshot, Metrics, MetricsListener, MetricsOptions, OpenConnection } from './metrics/index.js';
export { startLogger } from './log/logger.js';
export type { LoggerOptions, LogFormat } from './log/logger.js';
// The toolkit, for scripts and tests of your own.
export { startEchoServer } from './toolkit/echo.js';
export type { EchoServer, EchoServerOptions } from './toolkit/echo.js';
export { runBench } from './toolkit/bench.js';
export type { BenchOptions, BenchResult, LatencySummary } from './toolkit/bench.js';
export { runDoctor } from './toolkit/doctor.js';
export type { DoctorOptions, DoctorReport, DoctorStep } from './toolkit/doctor.js';
export { startBridgeServer } from './toolkit/bridge-server.js';
export type { BridgeServer, BridgeServerOptions } from './toolkit/bridge-server.js';
export { startStdioServer } from './toolkit/stdio-server.js';
export type { StdioServer, StdioServerOptions } from './toolkit/stdio-server.js';
export { describeCloseCode } from './toolkit/close-codes.js';
