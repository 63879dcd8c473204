/**
 * `porthole serve`: the gateway on one port, its config file watched, SIGHUP
 * to reload, SIGTERM/SIGINT to drain and exit 0.
 */
import type { Command } from 'commander';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { loadConfigFile, watchConfigFile } from '../config/load.js';
import { parseConfig, type Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { emit } from '../events.js';
import { createAdminApi } from '../admin/api.js';
import { AppRegistry } from '../admin/registry.js';
import { ensureToken } from '../admin/token.js';
import { Supervisor } from '../apps/supervisor.js';
import { createGateway } from '../gateway/gateway.js';
import { startLogger } from '../log/logger.js';
import { prepareDataDir } from './data-dir.js';
import { FileStore } from '../store/file-store.js';

export function defaultDataDir(): string {
  const base = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'porthole');
}

export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError([`--listen: expected HOST:PORT such as 127.0.0.1:50000, got ${JSON.stringify(value)}`]);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

interface ServeOptions {
  listen?: string;
  config?: string;
  data?: string;
  logFormat?: 'auto' | 'json' | 'text';
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the gateway: every app in the config behind one port')
    .option('-l, --listen <host:port>', 'address to listen on (default: the config\'s "listen", else 127.0.0.1:50000)')
    .option('-c, --config <file>', 'YAML config file (default: ./porthole.yaml when it exists)')
    .option('-d, --data <dir>', `state directory (default: ${defaultDataDir()})`)
    .option('--log-format <format>', 'auto (text on a terminal, JSON lines otherwise), json or text')
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

Examples:
  porthole serve
  porthole serve --config examples/porthole.yaml --listen 127.0.0.1:8080

Exit codes: 0 after a drain, 1 on a runtime failure (port in use), 2 on an invalid config or option.`,
    )
    .action(async (opts: ServeOptions) => {
      await serve(opts);
    });
}

async function serve(opts: ServeOptions): Promise<void> {
  const configFile = opts.config ?? (existsSync('porthole.yaml') ? 'porthole.yaml' : undefined);
  let config: Config;
  let listen: { host: string; port: number };
  try {
    config = configFile ? loadConfigFile(configFile) : parseConfig({});
    listen = parseListen(opts.listen ?? config.listen ?? '127.0.0.1:50000');
    if (opts.logFormat && !['auto', 'json', 'text'].includes(opts.logFormat)) {
      throw new ConfigError([`--log-format: expected auto, json or text, got ${JSON.stringify(opts.logFormat)}`]);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`porthole: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const stopLogger = startLogger({ format: opts.logFormat ?? config.log.format, quietRequests: !config.log.requests });
  const dataDir = resolve(opts.data ?? config.data ?? defaultDataDir());
  // The token and the registry in private/ (0700), apps' directories beside it (see data-dir.ts).
  const layout = prepareDataDir(dataDir);

  const baseDir = configFile ? dirname(resolve(configFile)) : process.cwd();
  // Read once the gateway listens (below): a start that fails must not create and print a new token.
  let token: string | undefined;

  let registry: AppRegistry | undefined;
  let admin: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const gateway = createGateway(config, {
    baseDir,
    appGate: (name) => registry?.appGate(name) ?? null,
    intercept: (req, res) => admin?.(req, res) ?? false,
  });
  const supervisor = new Supervisor({ dataDir: layout.privateDir, appsDir: layout.appsDir, appDefaults: config.app_defaults });
  registry = new AppRegistry(gateway, supervisor, new FileStore(layout.privateDir), config);
  let current = config;
  admin = createAdminApi({
    registry,
    supervisor,
    gatewayId: gateway.id,
    // No token yet means nothing matches it (sameToken never matches the empty string).
    guard: () => ({ token: token ?? '', localNoAuth: current.admin.local_no_auth, hosts: current.admin.hosts }),
  });
  if (configFile) emit('config', { action: 'loaded', source: configFile, apps: config.apps.length });
  try {
    await registry.init();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`porthole: cannot load the app registry in ${dataDir}: ${e.message}\n`);
    await supervisor.stopAll();
    process.exit(e.code === 'PH_ERR_STORE_CORRUPT' ? 2 : 1);
  }

  let address;
  try {
    address = await gateway.listen(listen.host, listen.port);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`porthole: cannot listen on ${listen.host}:${listen.port}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message}\n`);
    await supervisor.stopAll();
    process.exit(1);
  }
  registry.gatewayPort = address.port;
  try {
    const t = ensureToken(dataDir);
    token = t.token;
    // The token is the gateway's secret: apps never see it (see clean-env.ts), and it is shown once.
    if (t.created) process.stderr.write(`porthole: admin token (saved in ${t.file}, mode 0600): ${t.token}\n`);
  } catch (err) {
    process.stderr.write(`porthole: cannot create the admin token in ${dataDir}: ${(err as Error).message}\n`);
    await gateway.drain();
    await supervisor.stopAll();
    process.exit(1);
  }
  process.stderr.write(`porthole: listening on ${address.url} (${config.apps.length} app${config.apps.length === 1 ? '' : 's'})\n`);

  const reload = () => {
    if (!configFile) return;
    try {
      const next = loadConfigFile(configFile);
      // Built whole before anything changes: a bad error_page path rejects the file here.
      gateway.validate(next);
      supervisor.setAppDefaults(next.app_defaults);
      registry!.setConfig(next).then(
        () => {
          current = next;
          emit('config', { action: 'reloaded', source: configFile, apps: next.apps.length });
        },
        (err: Error & { code?: string }) => {
          supervisor.setAppDefaults(current.app_defaults);
          emit('config', { action: 'rejected', source: configFile, error: err.message, code: err.code ?? 'PH_ERR_CONFIG' });
        },
      );
    } catch (err) {
      const e = err as Error & { code?: string };
      emit('config', { action: 'rejected', source: configFile, error: e.message, code: e.code ?? 'PH_ERR_CONFIG' });
    }
  };
  const unwatch = configFile ? watchConfigFile(configFile, reload) : () => {};
  process.on('SIGHUP', reload);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    unwatch();
    await gateway.drain();
    await supervisor.stopAll();
    stopLogger();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
