/**
 * The one public entry to stdio over WebSocket (websocketd's job, and how an
 * MCP server that speaks stdio is reached from a browser or a remote agent):
 * a policy (the command, shared or one process per connection, text or
 * binary, limits, origins and Host names) and the upgrades it serves. The
 * gateway's `stdio` apps and the standalone `porthole stdio`
 * (src/toolkit/stdio-server.ts) both go through it, as both bridges go
 * through bridge-entry.ts.
 *
 * Two ways in: `handleUpgrade` runs the edge checks of a server that is only
 * a stdio bridge (Host, handshake, shutdown, Origin), then `attach`; the
 * gateway runs its own edge checks (shared with every app: auth, origins,
 * ws_paths) and calls `attach`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { WebSocketServer } from 'ws';
import { HOST_NAME, originProblem } from '../config/schema.js';
import type { AppIdentity } from '../apps/app-user.js';
import { DrainingError, OriginRefusedError, PortholeError, StdioLimitError, StdioSpawnError } from '../errors.js';
import { emit } from '../events.js';
import { acceptAndClose, sendHttpError, sendRawHttpError } from './error-response.js';
import { checkHandshake, checkOriginOf, wsProtocol } from './handshake.js';
import { HostPolicy, type HostRefusalWording } from './host-policy.js';
import { StdioProcess, type StdioCommand } from './stdio-process.js';
import { StdioClient, StdioSession } from './stdio-session.js';
import { peerOf } from './tunnel.js';
import { refuseUpgrade } from './upgrade-refusal.js';

export type { StdioCommand } from './stdio-process.js';
export type { HostRefusalWording } from './host-policy.js';

/** Default limits, the same for `porthole stdio` and `stdio` apps. */
export const STDIO_DEFAULTS = {
  /** Programs running at once (one per connection); the next upgrade gets 503 / close 1013. */
  maxProcesses: 16,
  /** Largest message either way: 1 MiB. */
  maxMessage: 1024 * 1024,
  /** Messages per second each way. */
  linesPerSecond: 1000,
  /** SIGTERM → SIGKILL. */
  killGraceMs: 5000,
  /** A connection without a message either way is closed (1001) after this long, as a tunnel is. */
  idleMs: 3_600_000,
} as const;

export interface StdioEntryOptions {
  /** The `app` of events, logs and close reasons. */
  app: string;
  /** The `gateway` id of events. */
  gateway: string;
  /** What to run for each connection (or once, `shared`). */
  command: StdioCommand;
  /** `BASE_PATH` of the program's environment: where the app is mounted. Default `/{app}`. */
  prefix?: string;
  /** One program for every connection: each client's lines go to it, its lines go to every client. */
  shared?: boolean;
  /** Raw bytes as binary messages, both ways, instead of lines. */
  binary?: boolean;
  /** Programs at once; default 16. With `shared`, connections at once (there is one program). */
  maxProcesses?: number;
  /** Largest message either way in bytes; default 1 MiB (a bigger one from the client closes it with 1009). */
  maxMessage?: number;
  /** Messages per second each way; default 1000 (0: no limit). Beyond it the sender is paused, nothing is dropped. */
  linesPerSecond?: number;
  /** SIGTERM → SIGKILL grace in ms; default 5 s. */
  killGraceMs?: number;
  /** Close a connection with 1001 (and stop its program) after this long without a message either way, in ms (0: never). Default 1 h. */
  idleMs?: number;
  /** Ping every client this often, in ms (0: never). Default 0. */
  heartbeatMs?: number;
  /** Where each stderr line (and Porthole's notes about the program) goes: the app's log, or porthole's stderr. */
  log?: (line: string, stream: 'stderr' | 'porthole', pid: number) => void;
  /** Takes each program's stderr stream instead of `log` taking its lines: a sink that pauses the pipe while it lags behind (the gateway's app log). */
  stderr?: (stream: Readable, pid: number) => void;
  /** Who each program runs as (an app's user/group); resolved at every start, so a missing user fails that upgrade (PH_ERR_APP_USER). */
  identity?: () => Promise<AppIdentity | undefined>;
  /** The environment the clean one is picked from (see src/apps/clean-env.ts). Default `process.env`. */
  baseEnv?: NodeJS.ProcessEnv;
  /** What an upgrade refused or given up by a drain is told (PH_ERR_DRAINING, 1001). Default `APP: shutting down; reconnect in a moment`. */
  drainingReason?: string;
  /** handleUpgrade only: origins whose pages may connect (see BridgeEntryOptions.allowedOrigins). */
  allowedOrigins?: readonly string[];
  /** handleUpgrade only: the option named in an Origin refusal. Default `--allowed-origin`. */
  originFlag?: string;
  /** handleUpgrade and refuseRequest only: Host names besides loopback and this machine's addresses. */
  serverNames?: readonly string[];
  hostWording?: HostRefusalWording;
}

export class StdioEntry {
  readonly app: string;
  readonly gateway: string;
  /** Programs running (or being stopped) now. */
  readonly sessions = new Set<StdioSession>();
  private readonly opts: StdioEntryOptions;
  private readonly wss: WebSocketServer;
  private readonly allowedOrigins: ReadonlySet<string> | '*' | null;
  private hostPolicy: HostPolicy | null = null;
  private shared: StdioSession | null = null;
  private starting: Promise<StdioSession> | null = null;
  private pending = 0;
  /** Upgrades waiting for their program to start, each as the function that gives it up (a drain calls them). */
  private readonly waiting = new Set<() => void>();
  private draining = false;

  /** Throws TypeError for a policy that cannot work (no command, a malformed origin or server name). */
  constructor(opts: StdioEntryOptions) {
    if (!opts.command.argv?.length && !opts.command.shell) throw new TypeError('stdio: a command to run is needed');
    for (const o of opts.allowedOrigins ?? []) {
      const problem = originProblem(o);
      if (problem) throw new TypeError(`allowedOrigins: ${problem}`);
    }
    for (const n of opts.serverNames ?? []) if (!HOST_NAME.test(n)) throw new TypeError(`serverNames: ${JSON.stringify(n)} is not a host name`);
    const list = opts.allowedOrigins;
    this.allowedOrigins = !list ? null : list.includes('*') ? '*' : new Set(list.map((o) => new URL(o).origin));
    this.opts = opts;
    this.app = opts.app;
    this.gateway = opts.gateway;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.maxMessage,
      // A client that offers subprotocols (the MCP SDK offers "mcp") gets its first one: the program speaks whatever it speaks.
      handleProtocols: (offered: Set<string>) => [...offered][0] ?? false,
    });
  }

  private get maxMessage(): number {
    return this.opts.maxMessage ?? STDIO_DEFAULTS.maxMessage;
  }

  /** Open WebSocket connections. */
  get connections(): number {
    let n = 0;
    for (const s of this.sessions) n += s.clients.size;
    return n;
  }

  /** What the dashboard shows of the open connections. */
  snapshots() {
    return [...this.sessions].flatMap((s) => [...s.clients].map((c) => c.snapshot(this.app)));
  }

  /** The clients' sockets (a logout ends the connections of its login). */
  closeClientsOf(sockets: ReadonlySet<Duplex>, code: number, reason: string): Duplex[] {
    const closed: Duplex[] = [];
    for (const s of this.sessions) for (const c of s.clients) if (sockets.has(c.socket)) (c.close(code, reason, 'gateway'), closed.push(c.socket));
    return closed;
  }

  /** A standalone server's upgrade: Host, handshake, shutdown and Origin checks, then `attach`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const { app, gateway } = this;
    const path = req.url ?? '/';
    const hostRefused = this.hosts.check(req.headers.host, req.socket);
    if (hostRefused) return refuseUpgrade(gateway, req, socket, hostRefused, { app, wsErrors: 'ws', path });
    const bad = checkHandshake(req);
    if (bad) {
      emit('upgrade', { gateway, app, path, accepted: false, status: bad.status, code: bad.code, reason: bad.message, protocol: wsProtocol(req) });
      return sendRawHttpError(socket, bad, req.headers.accept, undefined, bad.status === 426 ? { 'Sec-WebSocket-Version': '13' } : {});
    }
    const fail = (err: PortholeError) => {
      emit('upgrade', { gateway, app, path, accepted: false, status: 101, code: err.code, reason: err.message, closeCode: err.closeCode, protocol: wsProtocol(req) });
      acceptAndClose(socket, req.headers['sec-websocket-key'] as string, req.headers['sec-websocket-protocol'], err.closeCode, `${err.code}: ${err.message}`);
    };
    if (this.draining) return fail(new DrainingError(this.drainingReason, { app }));
    if (checkOriginOf(req, app, this.allowedOrigins)) return refuseUpgrade(gateway, req, socket, this.originRefusal(req.headers.origin ?? ''), { app, wsErrors: 'ws', path });
    this.attach(req, socket, head, fail);
  }

  /** Plain HTTP under a Host that is not ours: answered and returned; null when it may proceed. */
  refuseRequest(req: IncomingMessage, res: ServerResponse): PortholeError | null {
    const refused = this.hosts.check(req.headers.host, req.socket);
    if (!refused) return null;
    res.setHeader('Connection', 'close');
    sendHttpError(res, refused, req.headers.accept);
    return refused;
  }

  /**
   * Serves an upgrade whose edge checks have run: starts the program (or
   * joins the shared one), completes the handshake, relays. A failure before
   * the handshake (the limit, a program that cannot start) goes to `fail`.
   */
  attach(req: IncomingMessage, socket: Duplex, head: Buffer, fail: (err: PortholeError) => void): void {
    const { app } = this;
    const max = this.opts.maxProcesses ?? STDIO_DEFAULTS.maxProcesses;
    const busy = this.opts.shared ? this.connections + this.pending : this.sessions.size + this.pending;
    if (busy >= max) {
      const what = this.opts.shared ? `${max} connection${max === 1 ? '' : 's'}` : `${max} process${max === 1 ? '' : 'es'}`;
      return fail(new StdioLimitError(`${app}: ${what} at once already; try again later`, { app }));
    }
    this.pending++;
    let counted = true;
    const settle = () => {
      if (counted) this.pending--;
      counted = false;
      this.waiting.delete(drained);
    };
    // A drain while the program is being started (its user is looked up first, which may wait
    // on a directory server for seconds) gives the upgrade up at once, as the gateway gives up
    // an upgrade waiting for its upstream.
    const drained = () => {
      settle();
      fail(new DrainingError(this.drainingReason, { app }));
    };
    this.waiting.add(drained);
    this.session(req).then(
      (session) => {
        const givenUp = !counted;
        settle();
        if (givenUp || socket.destroyed) {
          // The client gave up (or a drain did) while the program started: nobody else may be using it (a shared one either).
          if (session.clients.size === 0) void session.stop();
          return;
        }
        this.complete(req, socket, head, session);
      },
      (err: Error) => {
        const givenUp = !counted;
        settle();
        if (givenUp || socket.destroyed) return;
        if (err instanceof PortholeError) return fail(err);
        fail(new StdioSpawnError(`${app}: cannot start ${this.commandLabel}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { app, cause: err }));
      },
    );
  }

  /**
   * Refuses new upgrades (1001), gives up those whose program is still being started the same
   * way, and closes every connection with 1001 and `reason`; the programs are stopped.
   */
  drain(reason: string): void {
    this.draining = true;
    for (const giveUp of [...this.waiting]) giveUp();
    for (const s of this.sessions) s.close(1001, reason);
  }

  /** Stops every program now-ish and resolves when all are gone (each within the kill grace). */
  async stopAll(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.sessions].map((s) => s.stop()));
  }

  private get drainingReason(): string {
    return this.opts.drainingReason ?? `${this.app}: shutting down; reconnect in a moment`;
  }

  /** What logs say is run. */
  get commandLabel(): string {
    return this.opts.command.argv ? this.opts.command.argv.join(' ') : this.opts.command.shell!;
  }

  private session(req: IncomingMessage): Promise<StdioSession> {
    if (!this.opts.shared) return this.spawn(req);
    // A shared program that ended, or is being stopped (its last client left), is not joined: a new one starts.
    if (this.shared && !this.shared.proc.exit && !this.shared.stopping) return Promise.resolve(this.shared);
    this.starting ??= this.spawn(req).then(
      (s) => {
        this.shared = s;
        this.starting = null;
        return s;
      },
      (err) => {
        this.starting = null;
        throw err;
      },
    );
    return this.starting;
  }

  private async spawn(req: IncomingMessage): Promise<StdioSession> {
    const { opts } = this;
    const sock = req.socket as Socket;
    // websocketd's CGI-style variables, for a program that wants to know who is there (not for a shared one).
    // QUERY_STRING: all after the first '?' (a query may hold more of them).
    const url = req.url ?? '';
    const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
    const perClient: Record<string, string> = opts.shared ? {} : { REMOTE_ADDR: sock.remoteAddress ?? '', REMOTE_PORT: String(sock.remotePort ?? ''), QUERY_STRING: query };
    const identity = await opts.identity?.();
    // A drain began meanwhile: no program is started after it (its stopAll() may have run already).
    if (this.draining) throw new DrainingError(this.drainingReason, { app: this.app });
    const command: StdioCommand = { ...opts.command, env: { ...opts.command.env, ...perClient }, identity };
    const proc = await StdioProcess.start(this.app, opts.prefix, command, opts.baseEnv);
    const log = opts.log ?? (() => {});
    log(`[porthole] started pid ${proc.pid}: ${this.commandLabel}`, 'porthole', proc.pid);
    const session = new StdioSession(proc, {
      app: this.app,
      gateway: this.gateway,
      binary: Boolean(opts.binary),
      maxMessage: this.maxMessage,
      linesPerSecond: opts.linesPerSecond ?? STDIO_DEFAULTS.linesPerSecond,
      killGraceMs: opts.killGraceMs ?? STDIO_DEFAULTS.killGraceMs,
      log: (line, stream) => log(line, stream, proc.pid),
      stderr: opts.stderr ? (s) => opts.stderr!(s, proc.pid) : undefined,
      onGone: (s) => {
        this.sessions.delete(s);
        if (this.shared === s) this.shared = null;
      },
    });
    this.sessions.add(session);
    return session;
  }

  private complete(req: IncomingMessage, socket: Duplex, head: Buffer, session: StdioSession): void {
    const path = req.url ?? '/';
    // `ws` refuses a handshake it finds invalid with a 400 of its own and never calls back.
    const lost = () => {
      if (session.clients.size === 0) void session.stop();
    };
    socket.once('close', lost);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', lost);
      emit('upgrade', { gateway: this.gateway, app: this.app, path, accepted: true, status: 101, protocol: wsProtocol(req) });
      // A program that ended meanwhile still has its output and its exit status delivered.
      const client = new StdioClient(ws, socket, path, peerOf(socket as Socket), this.opts.linesPerSecond ?? STDIO_DEFAULTS.linesPerSecond, this.opts.idleMs ?? STDIO_DEFAULTS.idleMs, this.opts.heartbeatMs ?? 0);
      session.add(client);
    });
  }

  private get hosts(): HostPolicy {
    this.hostPolicy ??= HostPolicy.forNames(this.opts.serverNames ?? [], this.opts.hostWording);
    return this.hostPolicy;
  }

  private originRefusal(origin: string): PortholeError {
    const { app } = this;
    const flag = this.opts.originFlag ?? '--allowed-origin';
    let normalized: string | undefined;
    try {
      normalized = new URL(origin).origin;
    } catch {
      /* not a URL */
    }
    if (!normalized || normalized === 'null') return new OriginRefusedError(`${app}: WebSocket from Origin ${JSON.stringify(origin.slice(0, 60))} refused: only ${flag} '*' admits it`, { app });
    const what = this.allowedOrigins === null ? 'cross-origin WebSocket refused' : 'origin not allowed';
    return new OriginRefusedError(`${app}: ${what}: pass ${flag} ${normalized}`, { app });
  }
}
