/**
 * `porthole serve`: the gateway on one port, its config file watched, SIGHUP
 * to reload, SIGTERM/SIGINT to drain and exit 0.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { watchConfigFile } from '../config/load.js';
import { AuthUnsetError, ConfigError } from '../errors.js';
import { startLogger } from '../log/logger.js';
import { createServer, defaultDataDir, ServerStartError, type PortholeServer } from '../server/create-server.js';
import { workerCount, workerProblems, workersSchema, type WorkersSetting } from '../config/workers-schema.js';
import { WorkerPool } from '../workers/pool.js';

interface ServeOptions {
  listen?: string;
  config?: string;
  data?: string;
  logFormat?: 'auto' | 'json' | 'text';
  node?: string;
  workers?: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the gateway: every app in the config behind one port')
    .option('-l, --listen <host:port>', 'address to listen on (default: the config\'s "listen", else 127.0.0.1:50000)')
    .option('-c, --config <file>', 'YAML config file (default: ./porthole.yaml when it exists)')
    .option('-d, --data <dir>', `state directory (default: ${defaultDataDir()})`)
    .option('--log-format <format>', 'auto (text on a terminal, JSON lines otherwise), json or text')
    .option('--node <name>', "this node's name in a cluster (default: the config's cluster.node, else the host name)")
    .option('--workers <n>', 'processes that share the port: a number, or auto (one per core); default: the config\'s "workers", else 1')
    .addHelpText(
      'after',
      `
The config file is watched: a valid change is applied at once, without
dropping open WebSocket tunnels; an invalid one is logged and ignored.
SIGHUP reloads it too. SIGTERM or SIGINT drains: new connections are refused,
tunnels get a close frame (1001), requests in flight get drain_timeout to finish.

A minimal porthole.yaml:
  apps:
    - name: notebook          # served at /notebook/
      port: 8888              # HTTP and WebSocket on 127.0.0.1:8888
    - name: vnc
      port: 9002              # HTTP (pages)
      ws_port: 6080           # WebSocket upgrades go here instead

A cluster (docs/cluster.md): nodes that share one Redis.
  store: redis://10.0.0.1:6379/0
  cluster:
    listen: 10.0.0.2:50001    # where the other nodes forward requests for this node's apps

Examples:
  porthole serve
  porthole serve --config examples/porthole.yaml --listen 127.0.0.1:8080
  porthole serve --config cluster.yaml --node b
  porthole serve --workers auto      # one gateway process per core (docs/workers.md)

Exit codes: 0 after a drain, 1 on a runtime failure (port in use), 2 on an invalid config or option.`,
    )
    .action(async (opts: ServeOptions) => {
      await serve(opts);
    });
}

async function serve(opts: ServeOptions): Promise<void> {
  const configFile = opts.config ?? (existsSync('porthole.yaml') ? 'porthole.yaml' : undefined);
  let server: PortholeServer;
  let workers = 1;
  try {
    const flag = opts.workers === undefined ? undefined : parseWorkersFlag(opts.workers);
    server = createServer({
      configFile,
      listen: opts.listen,
      dataDir: opts.data,
      node: opts.node,
      workers: (config) => {
        const setting = flag ?? config.workers;
        // The flag is checked against the config as the config's own key would be.
        if (flag !== undefined) {
          const problems = workerProblems({ ...config, workers: flag }).map((p) => p.replace(/^workers:/, '--workers'));
          if (problems.length) throw new ConfigError(problems);
        }
        const count = workerCount(setting);
        workers = count;
        return count > 1 ? new WorkerPool(count) : undefined;
      },
    });
    if (opts.logFormat && !['auto', 'json', 'text'].includes(opts.logFormat)) {
      throw new ConfigError([`--log-format: expected auto, json or text, got ${JSON.stringify(opts.logFormat)}`]);
    }
  } catch (err) {
    if (err instanceof ConfigError || err instanceof AuthUnsetError) {
      process.stderr.write(`porthole: ${err instanceof AuthUnsetError ? `${err.code}: ` : ''}${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { config } = server;
  const stopLogger = startLogger({ format: opts.logFormat ?? config.log.format, quietRequests: !config.log.requests });

  let started;
  try {
    started = await server.listen();
  } catch (err) {
    if (!(err instanceof ServerStartError)) throw err;
    process.stderr.write(`porthole: ${err.message}\n`);
    process.exit(err.stage === 'registry' && err.cause.code === 'PH_ERR_STORE_CORRUPT' ? 2 : 1);
  }
  // Before the "listening on" line: a supervisor that reads it and stops the gateway at once gets a drain, not a kill.
  let stopping = false;
  let unwatch = () => {};
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    unwatch();
    await server.drain();
    stopLogger();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A rejected config is reported by the server's `config rejected` event; the old one stays.
  const reload = () => {
    if (configFile) server.reload().catch(() => {});
  };
  process.on('SIGHUP', reload);
  if (configFile) unwatch = watchConfigFile(configFile, reload);

  // The token is the gateway's secret: apps never see it (see clean-env.ts), and it is shown once.
  if (started.tokenCreated) process.stderr.write(`porthole: admin token (saved in ${started.tokenFile}, mode 0600): ${started.token}\n`);
  process.stderr.write(`porthole: listening on ${started.url} (${config.apps.length} app${config.apps.length === 1 ? '' : 's'}${workers > 1 ? `, ${workers} workers` : ''})\n`);
  // Like Jupyter's token URL: a browser opens it once and stays logged in ("porthole dashboard" prints another).
  try {
    process.stderr.write(`porthole: dashboard (this link logs in once): ${server.loginUrl()}\n`);
  } catch (err) {
    // Apps own every address of the gateway: no link, rather than one an app would receive.
    process.stderr.write(`porthole: dashboard: ${(err as Error).message}\n`);
  }
  if (started.metricsUrl) process.stderr.write(`porthole: metrics on ${started.metricsUrl}\n`);
  if (started.node) process.stderr.write(`porthole: cluster node ${started.node.name}, peer listener on ${started.node.peer}\n`);

}

function parseWorkersFlag(value: string): WorkersSetting {
  const issues: string[] = [];
  const parsed = workersSchema().parse(/^\d+$/.test(value) ? Number(value) : value, '--workers', issues);
  if (parsed === undefined) throw new ConfigError(issues);
  return parsed;
}
