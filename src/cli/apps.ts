/**
 * `porthole apps …`: a thin client of the admin REST API of a running gateway.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readToken } from '../admin/token.js';
import { defaultDataDir } from '../server/create-server.js';

interface ClientOptions {
  gateway?: string;
  data?: string;
  json?: boolean;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function client(opts: ClientOptions) {
  const base = (opts.gateway ?? process.env.PORTHOLE_URL ?? 'http://127.0.0.1:50000').replace(/\/+$/, '');
  const token = process.env.PORTHOLE_TOKEN ?? readToken(opts.data ?? defaultDataDir());
  const call = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    let res: Response;
    try {
      res = await fetch(`${base}/_porthole/api/${path}`, {
        method,
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new ApiError(0, 'PH_ERR_UNREACHABLE', `cannot reach the gateway at ${base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); is "porthole serve" running? (--gateway URL or PORTHOLE_URL)`);
    }
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown> & { error?: { code: string; message: string } };
    if (!res.ok) {
      const hint = res.status === 401 && !token ? ' (no token found: pass --data DIR of the gateway or set PORTHOLE_TOKEN)' : '';
      throw new ApiError(res.status, json.error?.code ?? 'PH_ERR_HTTP', `${json.error?.message ?? `HTTP ${res.status}`}${hint}`);
    }
    return json;
  };
  return { base, token, call };
}

type AppRow = Record<string, unknown> & { name: string; state: string; route: string; urls?: string[] };

function upstreamOf(a: AppRow): string {
  if (typeof a.url === 'string') return a.url;
  if (typeof a.socket === 'string') return `unix:${a.socket}`;
  if (a.port === undefined) return '-';
  return `127.0.0.1:${a.port}${a.ws_port !== undefined ? ` (ws ${a.ws_port})` : ''}`;
}

function table(apps: AppRow[]): string {
  // In a cluster every app says which node runs it.
  const clustered = apps.some((a) => a.node !== undefined);
  const rows = [['NAME', 'STATE', ...(clustered ? ['NODE'] : []), 'PID', 'ROUTE', 'UPSTREAM', 'RESTARTS', 'SOURCE', 'URLS']];
  for (const a of apps) {
    const node = a.node === null || a.node === undefined ? (a.source === 'config' ? '(config)' : '-') : String(a.node);
    const down = (a.error as { code?: string } | undefined)?.code === 'PH_ERR_NODE_DOWN';
    rows.push([a.name, down ? 'node down' : a.state, ...(clustered ? [node] : []), a.pid === null || a.pid === undefined ? '-' : String(a.pid), a.route, upstreamOf(a), String(a.restarts ?? 0), String(a.source ?? ''), (a.urls ?? []).join(' ')]);
  }
  return columns(rows);
}

function columns(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

interface NodeRow {
  name: string;
  up: boolean;
  self: boolean;
  leader: boolean;
  advertise: string | null;
  last_seen: string | null;
  version: number | null;
  apps: string[];
}

/** `porthole nodes`: the cluster as the node asked sees it. */
function nodesTable(c: { node: string; version: number; store: { url: string; up: boolean; down_since?: string }; nodes: NodeRow[] }): string {
  const rows = [['NODE', 'STATE', 'ROLE', 'PEER ADDRESS', 'VERSION', 'LAST SEEN', 'APPS']];
  for (const n of c.nodes) {
    const role = [n.leader ? 'leader' : '', n.self ? 'this node' : ''].filter(Boolean).join(', ') || '-';
    rows.push([n.name, n.up ? 'up' : 'down', role, n.advertise ?? '-', n.version === null ? '-' : String(n.version), n.last_seen ?? 'never', n.apps.join(' ') || '-']);
  }
  const store = `store ${c.store.url}: ${c.store.up ? 'up' : `DOWN since ${c.store.down_since ?? '?'} (serving the last registry; changes get 503)`}, registry version ${c.version}`;
  return `${columns(rows)}\n${store}`;
}

/** The state, and for an app Porthole does not run, whether it answers. */
function stateOf(a: AppRow): string {
  return a.state === 'external' ? `external (${a.ready ? 'answers' : 'not answering'})` : a.state;
}

function describe(a: AppRow): string {
  const lines = [`${a.name}: ${stateOf(a)}${a.ready && a.state !== 'external' ? ' (ready)' : ''}`, ...(a.node !== undefined && a.node !== null ? [`  node      ${a.node}`] : []), `  route     ${a.route}`, ...(a.urls ?? []).map((u, i) => `  ${i ? '         ' : 'open     '} ${u}`), `  upstream  ${upstreamOf(a)}`];
  if (a.cmd) lines.push(`  cmd       ${a.cmd}`);
  if (a.pid) lines.push(`  pid       ${a.pid}`);
  lines.push(`  restarts  ${a.restarts ?? 0}`);
  const le = a.last_exit as { code: number | null; signal: string | null; at: string } | null;
  if (le) lines.push(`  last exit ${le.signal ?? `code ${le.code}`} at ${le.at}`);
  if (a.message) lines.push(`  note      ${a.message}`);
  if (a.last_probe) lines.push(`  last check ${a.last_probe}`);
  return lines.join('\n');
}

/** Runs an action, printing API errors as one line and exiting 1. */
function act<A extends any[]>(fn: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof ApiError) {
        process.stderr.write(`porthole: ${err.message} [${err.code}]\n`);
        process.exit(1);
      }
      throw err;
    }
  };
}

const collectEnv = (v: string, prev: Record<string, string> = {}) => {
  const eq = v.indexOf('=');
  if (eq < 1) {
    process.stderr.write(`porthole: --env expects KEY=VALUE, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
};
const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) {
    process.stderr.write(`porthole: expected an integer, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};

export function register(program: Command): void {
  const apps = program
    .command('apps')
    .description('list, register, start and stop the apps of a running gateway (a client of its admin API)')
    .addHelpText(
      'after',
      `
The token is read from the gateway's data directory (--data, default ${defaultDataDir()})
or from PORTHOLE_TOKEN; the gateway from --gateway or PORTHOLE_URL (default http://127.0.0.1:50000).

Examples:
  porthole apps ls
  porthole apps add notebook --cmd "jupyter lab --port \\$PORT --no-browser" --autostart
  porthole apps add vnc --port 9002 --ws-port 6080 --cmd "bash start.sh" --cwd /srv/vnc
  porthole apps logs notebook -f
  porthole apps stop notebook`,
    );
  const common = (c: Command) =>
    c
      .option('--gateway <url>', 'the gateway (default: PORTHOLE_URL or http://127.0.0.1:50000)')
      .option('--data <dir>', 'the gateway\'s data directory, where its token is')
      .option('--json', 'print the API\'s JSON');

  common(
    program
      .command('dashboard')
      .description('print a new one-time login link to the dashboard of a running gateway')
      .addHelpText(
        'after',
        `
"porthole serve" prints a link at start; each link works once, within 24 hours.
The link is made with the admin token (from --data or PORTHOLE_TOKEN) and opens
the dashboard at /_porthole/ in a browser, where a session cookie keeps you in.

Example:
  porthole dashboard --data /var/lib/porthole`,
      ),
  ).action(
    act(async (opts: ClientOptions) => {
      const c = client(opts);
      const r = await c.call('POST', 'login-link');
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${c.base}${String(r.path)}\n`);
    }),
  );

  common(apps.command('ls').alias('list').description('list every app with its state')).action(
    act(async (opts: ClientOptions) => {
      const r = await client(opts).call('GET', 'apps');
      process.stdout.write(opts.json ? `${JSON.stringify(r.apps, null, 2)}\n` : `${table(r.apps as AppRow[])}\n`);
    }),
  );

  common(
    apps
      .command('add <name>')
      .description('register (or update) an app; the gateway routes /<name>/ to it')
      .option('--port <n>', 'HTTP port on 127.0.0.1 (omit with --cmd to have one allocated, passed as $PORT)', int)
      .option('--ws-port <n>', 'WebSocket upgrades go to this port instead', int)
      .option('--url <url>', 'a remote http(s):// or ws(s):// upstream instead of a port')
      .option('--socket <path>', 'a unix socket upstream instead of a port')
      .option('--cmd <command>', 'command that runs the app (through /bin/sh)')
      .option('--cwd <dir>', 'working directory for --cmd')
      .option('--env <KEY=VALUE>', 'environment for the app (repeatable)', collectEnv)
      .option('--autostart', 'start the app whenever the gateway starts')
      .option('--node <name>', 'in a cluster: the node that runs it, or "any" (default: the node you call)')
      .option('--health-path <path>', 'ready when GET <path> answers 2xx/3xx (default: when the ports accept connections)')
      .option('--description <text>', 'a line about the app')
      .addOption(new Option('--restart <policy>', 'restart policy').choices(['on-failure', 'always', 'never']))
      .option('--file <file>', 'read the app definition from a JSON or YAML file, or the entry named <name> in a porthole.yaml\'s apps: list (flags override it)')
      .option('--start', 'start it after registering'),
  ).action(
    act(async (name: string, opts: ClientOptions & Record<string, unknown>) => {
      const fromFile = opts.file ? appFromFile(String(opts.file), name) : {};
      const map: Record<string, string> = { port: 'port', wsPort: 'ws_port', url: 'url', socket: 'socket', cmd: 'cmd', cwd: 'cwd', env: 'env', autostart: 'autostart', healthPath: 'health_path', description: 'description', restart: 'restart', node: 'node' };
      const body: Record<string, unknown> = { ...fromFile, name };
      for (const [flag, key] of Object.entries(map)) if (opts[flag] !== undefined) body[key] = opts[flag];
      const c = client(opts);
      let r = await c.call('PUT', `apps/${encodeURIComponent(name)}`, body);
      if (opts.start) r = await c.call('POST', `apps/${encodeURIComponent(name)}/start`);
      const app = r.app as AppRow;
      process.stdout.write(opts.json ? `${JSON.stringify(app, null, 2)}\n` : `${describe(app)}\n`);
    }),
  );

  common(
    program
      .command('nodes')
      .description('list the nodes of the cluster a running gateway belongs to, and its store')
      .option('--forget <node>', 'forget a node that is gone for good (it must be down, and no app may name it)')
      .addHelpText(
        'after',
        `
Any node answers for the whole cluster (docs/cluster.md). A node is down when
its heartbeat is older than cluster.heartbeat_ttl; the leader places the apps
with node: any.

Example:
  porthole nodes --gateway http://10.0.0.2:50000 --data /var/lib/porthole`,
      ),
  ).action(
    act(async (opts: ClientOptions & { forget?: string }) => {
      if (opts.forget !== undefined) {
        await client(opts).call('DELETE', `cluster/nodes/${encodeURIComponent(opts.forget)}`);
        return void process.stdout.write(`forgot node ${opts.forget}\n`);
      }
      const r = await client(opts).call('GET', 'cluster');
      if (opts.json) return void process.stdout.write(`${JSON.stringify(r.cluster, null, 2)}\n`);
      if (!r.cluster) {
        process.stderr.write('porthole: this gateway is not a node of a cluster (docs/cluster.md)\n');
        process.exit(1);
      }
      process.stdout.write(`${nodesTable(r.cluster as Parameters<typeof nodesTable>[0])}\n`);
    }),
  );

  common(apps.command('rm <name>').alias('remove').description('stop an app and forget it')).action(
    act(async (name: string, opts: ClientOptions) => {
      const r = await client(opts).call('DELETE', `apps/${encodeURIComponent(name)}`);
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `removed ${name}\n`);
    }),
  );

  for (const verb of ['start', 'stop', 'restart'] as const) {
    common(apps.command(`${verb} <name>`).description(`${verb} an app's process`)).action(
      act(async (name: string, opts: ClientOptions) => {
        const r = await client(opts).call('POST', `apps/${encodeURIComponent(name)}/${verb}`);
        const app = r.app as AppRow;
        process.stdout.write(opts.json ? `${JSON.stringify(app, null, 2)}\n` : `${describe(app)}\n`);
      }),
    );
  }

  common(apps.command('status <name>').description('show one app')).action(
    act(async (name: string, opts: ClientOptions) => {
      const r = await client(opts).call('GET', `apps/${encodeURIComponent(name)}`);
      const app = r.app as AppRow;
      process.stdout.write(opts.json ? `${JSON.stringify(app, null, 2)}\n` : `${describe(app)}\n`);
    }),
  );

  common(
    apps
      .command('logs <name>')
      .description('show an app\'s output')
      .option('-n, --lines <n>', 'how many lines (default 100)', int)
      .option('-f, --follow', 'keep printing new lines until interrupted'),
  ).action(
    act(async (name: string, opts: ClientOptions & { lines?: number; follow?: boolean }) => {
      const c = client(opts);
      const q = `lines=${opts.lines ?? 100}`;
      if (!opts.follow) {
        const r = await c.call('GET', `apps/${encodeURIComponent(name)}/logs?${q}`);
        process.stdout.write(opts.json ? `${JSON.stringify(r.lines)}\n` : (r.lines as string[]).map((l) => `${l}\n`).join(''));
        return;
      }
      await followLogs(c.base, c.token, name, q);
    }),
  );
}

/**
 * The definition in `--file`: one app (JSON or YAML), or a porthole.yaml
 * whose `apps:` list holds one named NAME (what `porthole init` writes). A
 * relative `cwd` is next to the file, as in a config file: the gateway would
 * read it from its own directory otherwise.
 */
function appFromFile(file: string, name: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    process.stderr.write(`porthole: --file ${file}: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let app = (doc ?? {}) as Record<string, unknown>;
  if (Array.isArray(app.apps)) {
    const found = (app.apps as Record<string, unknown>[]).find((a) => a?.name === name);
    if (!found) {
      const names = (app.apps as Record<string, unknown>[]).map((a) => String(a?.name)).join(', ');
      process.stderr.write(`porthole: --file ${file}: its apps: list has no app named ${name} (it has ${names || 'none'})\n`);
      process.exit(2);
    }
    app = found;
  }
  if (typeof app.cwd === 'string' && !isAbsolute(app.cwd)) app = { ...app, cwd: resolve(dirname(resolve(file)), app.cwd) };
  return app;
}

async function followLogs(base: string, token: string | undefined, name: string, q: string): Promise<void> {
  const res = await fetch(`${base}/_porthole/api/apps/${encodeURIComponent(name)}/logs?${q}&follow=1`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  }).catch((err: Error) => {
    throw new ApiError(0, 'PH_ERR_UNREACHABLE', `cannot reach the gateway at ${base} (${err.message})`);
  });
  if (!res.ok || !res.body) {
    const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    throw new ApiError(res.status, json.error?.code ?? 'PH_ERR_HTTP', json.error?.message ?? `HTTP ${res.status}`);
  }
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split('\n')) if (line.startsWith('data: ')) process.stdout.write(`${line.slice(6)}\n`);
    }
  }
}
