/**
 * A standalone stdio-over-WebSocket server, what `websocketd PROGRAM` does:
 * every WebSocket connection gets its own process (or all share one), each
 * text message is a line on its stdin, each line of its stdout a text
 * message. Plain HTTP gets a 426 saying what this is.
 *
 * It usually runs a program on loopback that trusts whoever talks to it (an
 * MCP server can read files and run tools), so it refuses what the gateway
 * and `porthole bridge` refuse: pages of another origin (cross-site
 * WebSocket hijacking) and Hosts that are not its names (DNS rebinding).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { emit } from '../events.js';
import { StdioEntry, type HostRefusalWording, type StdioCommand } from '../gateway/stdio-entry.js';
import { listenStandalone } from './standalone-listener.js';

export interface StdioServerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** The program and its arguments (no shell), or `{ shell: 'cmd line' }`. */
  command: readonly string[] | StdioCommand;
  /** The `app` of events and close reasons. Default `stdio`. */
  name?: string;
  /** One process for every connection instead of one each. */
  shared?: boolean;
  /** Raw bytes as binary messages instead of lines. */
  binary?: boolean;
  /** Processes at once (with `shared`: connections). Default 16. */
  maxProcesses?: number;
  /** Largest message either way, bytes. Default 1 MiB. */
  maxMessage?: number;
  /** Messages per second each way (0: no limit). Default 1000. */
  linesPerSecond?: number;
  /** SIGTERM → SIGKILL grace, ms. Default 5 s. */
  killGraceMs?: number;
  /** Close a connection with 1001 after this long without a message either way, ms (0: never). Default 1 h. */
  idleMs?: number;
  /** Ping every client this often, ms (0: never). Default 0. */
  heartbeatMs?: number;
  /** Origins whose pages may connect (omitted: same origin only, and clients that send none; `['*']`: any). */
  allowedOrigins?: readonly string[];
  /** Host names answered besides loopback names and this machine's addresses. */
  serverNames?: readonly string[];
  /** Where the program's stderr lines go. Default: porthole's stderr, each line prefixed `[NAME PID] `. */
  log?: (line: string, stream: 'stderr' | 'porthole', pid: number) => void;
  /** The environment the clean one is picked from. Default `process.env`. */
  baseEnv?: NodeJS.ProcessEnv;
}

export interface StdioServer {
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  readonly id: string;
  /** Open WebSocket connections. */
  readonly connections: number;
  /** Processes running (or being stopped). */
  readonly processes: number;
  /** Their pids. */
  readonly pids: number[];
  /** Stops listening, closes every connection with 1001 and stops every process; resolves once all are gone. */
  close(): Promise<void>;
}

const HOST_WORDING: HostRefusalWording = {
  whose: "this server's",
  fix: 'pass --server-name NAME (names other than loopback and this machine\'s addresses are refused, against DNS rebinding)',
};

export async function startStdioServer(opts: StdioServerOptions): Promise<StdioServer> {
  const id = randomBytes(4).toString('hex');
  const app = opts.name ?? 'stdio';
  const command: StdioCommand = Array.isArray(opts.command) ? { argv: opts.command as readonly string[] } : (opts.command as StdioCommand);
  const log = opts.log ?? ((line: string, _stream: string, pid: number) => process.stderr.write(`[${app} ${pid}] ${line}\n`));
  const entry = new StdioEntry({
    app,
    gateway: id,
    command,
    prefix: '',
    shared: opts.shared,
    binary: opts.binary,
    maxProcesses: opts.maxProcesses,
    maxMessage: opts.maxMessage,
    linesPerSecond: opts.linesPerSecond,
    killGraceMs: opts.killGraceMs,
    idleMs: opts.idleMs,
    heartbeatMs: opts.heartbeatMs,
    log,
    baseEnv: opts.baseEnv,
    allowedOrigins: opts.allowedOrigins,
    originFlag: '--allowed-origin',
    serverNames: opts.serverNames,
    hostWording: HOST_WORDING,
  });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const refused = entry.refuseRequest(req, res);
    emit('request', { gateway: id, app, method: req.method ?? 'GET', path: req.url ?? '/', status: refused ? refused.status : 426, ms: 0, ...(refused ? { code: refused.code } : {}) });
    if (refused) return;
    const body = `This is a WebSocket server that runs ${entry.commandLabel} for each connection: connect with a WebSocket client (porthole connect ws://…).\n`;
    res.writeHead(426, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Upgrade: 'websocket' });
    res.end(body);
  };
  const { server, port, url } = await listenStandalone(id, opts, onRequest, (req, socket, head) => entry.handleUpgrade(req, socket, head));
  let closing: Promise<void> | null = null;

  return {
    port,
    url,
    id,
    get connections() {
      return entry.connections;
    },
    get processes() {
      return entry.sessions.size;
    },
    get pids() {
      return [...entry.sessions].map((s) => s.proc.pid);
    },
    close() {
      closing ??= (async () => {
        emit('gateway', { gateway: id, action: 'draining', tunnels: entry.connections });
        const stopped = new Promise<void>((ok) => server.close(() => ok()));
        entry.drain(`${app}: shutting down`);
        await entry.stopAll();
        server.closeAllConnections();
        await stopped;
        emit('gateway', { gateway: id, action: 'closed' });
      })();
      return closing;
    },
  };
}
