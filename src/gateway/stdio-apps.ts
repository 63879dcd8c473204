/**
 * The gateway's `stdio` apps: one StdioEntry per app, kept across reloads
 * (the process limit counts the app's programs, whatever snapshot their
 * connection started with). An app whose stdio settings changed gets a new
 * entry for new connections; the programs of the old one run until their
 * connections end, and a drain still reaches them.
 */
import type { Duplex, Readable } from 'node:stream';
import { resolveAppUser } from '../apps/app-user.js';
import type { AppConfig, Config } from '../config/schema.js';
import type { LiveConnection } from './tunnel.js';
import { StdioEntry } from './stdio-entry.js';

/** Where a stdio app's stderr lines and Porthole's notes about its programs go (the app's log). */
export type StdioLog = (app: string) => ((line: string, stream: 'stderr' | 'porthole') => void) | undefined;

/** Where a stdio app's programs' stderr streams go, read with backpressure (the app's log); when unset, StdioLog gets the lines. */
export type StdioStderr = (app: string) => ((stderr: Readable) => void) | undefined;

/** The settings an entry is built from (user and group too: its starts resolve them from its app): a change means a new entry. */
function settingsOf(app: AppConfig): string {
  return JSON.stringify([app.stdio, app.stdio_shared, app.stdio_binary, app.stdio_max_processes, app.stdio_max_message, app.stdio_lines_per_second, app.stop_timeout, app.cwd, app.env, app.prefix, app.user, app.group]);
}

export class StdioApps {
  private readonly current = new Map<string, { key: string; entry: StdioEntry }>();
  /** Entries replaced by a reload whose programs still run. */
  private readonly retired = new Set<StdioEntry>();

  constructor(
    private readonly gateway: string,
    private readonly log: StdioLog,
    /** Resolves the app's `cwd` (relative to the config's directory). */
    private readonly resolvePath: (p: string) => string,
    /** The config's `app_defaults` now (user/group of apps that set none). */
    private readonly appDefaults: () => Config['app_defaults'],
    private readonly stderr?: StdioStderr,
  ) {}

  /** The entry that serves `app`'s next upgrade. */
  entryFor(app: AppConfig, timing: { idleMs: number; pingMs: number }): StdioEntry {
    const key = `${settingsOf(app)} ${timing.idleMs} ${timing.pingMs}`;
    const had = this.current.get(app.name);
    if (had?.key === key) return had.entry;
    if (had) this.retire(had.entry);
    const sink = this.log(app.name);
    const stderr = this.stderr?.(app.name);
    const entry = new StdioEntry({
      app: app.name,
      gateway: this.gateway,
      command: { shell: app.stdio!, cwd: app.cwd !== undefined ? this.resolvePath(app.cwd) : undefined, env: app.env },
      prefix: app.prefix,
      shared: app.stdio_shared,
      binary: app.stdio_binary,
      maxProcesses: app.stdio_max_processes,
      maxMessage: app.stdio_max_message,
      linesPerSecond: app.stdio_lines_per_second,
      killGraceMs: app.stop_timeout,
      idleMs: timing.idleMs,
      heartbeatMs: timing.pingMs,
      log: sink ? (line, stream) => sink(line, stream) : undefined,
      stderr: stderr ? (s) => stderr(s) : undefined,
      identity: () => resolveAppUser(app, this.appDefaults()),
      drainingReason: `${app.name}: the gateway is shutting down; reconnect in a moment`,
    });
    this.current.set(app.name, { key, entry });
    return entry;
  }

  /** Every entry that may have programs running. */
  private entries(): StdioEntry[] {
    for (const e of this.retired) if (e.sessions.size === 0) this.retired.delete(e);
    return [...[...this.current.values()].map((c) => c.entry), ...this.retired];
  }

  private retire(entry: StdioEntry): void {
    if (entry.sessions.size > 0) this.retired.add(entry);
  }

  /** Open WebSocket connections of every stdio app. */
  get connections(): number {
    return this.entries().reduce((n, e) => n + e.connections, 0);
  }

  /** Programs running (or being stopped). */
  get processes(): number {
    return this.entries().reduce((n, e) => n + e.sessions.size, 0);
  }

  /** The pids of the programs running now (the group leaders). */
  pids(): number[] {
    return this.entries().flatMap((e) => [...e.sessions].map((s) => s.proc.pid));
  }

  snapshots(): LiveConnection[] {
    return this.entries().flatMap((e) => e.snapshots());
  }

  /** Closes the connections whose client socket is in `sockets` (a logout); returns those sockets. */
  closeClientsOf(sockets: ReadonlySet<Duplex>, code: number, reason: string): Duplex[] {
    return this.entries().flatMap((e) => e.closeClientsOf(sockets, code, reason));
  }

  /** Refuses new upgrades, closes every connection with 1001 and stops every program. */
  drain(reason: string): void {
    for (const e of this.entries()) e.drain(reason);
  }

  /** Resolves once every program of every stdio app is gone. */
  async stopAll(): Promise<void> {
    await Promise.all(this.entries().map((e) => e.stopAll()));
  }
}
