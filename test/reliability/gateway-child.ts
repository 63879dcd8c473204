/**
 * The gateway under attack: a real `porthole serve` child (so a crash is a
 * dead process, not a test exception), optionally under a low open-file limit,
 * with its JSON log parsed as it comes and its fds and RSS read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';

export interface LogEvent {
  event: string;
  [key: string]: unknown;
}

export interface GatewayChild {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  dataDir: string;
  /** Every JSON log line parsed so far. */
  events: LogEvent[];
  stderr(): string;
  /** True while the process has not exited. */
  alive(): boolean;
  /** Open file descriptors of the gateway process (/proc/PID/fd). */
  fds(): number;
  /** Its TCP sockets, `local -> remote STATE`. */
  sockets(): string[];
  /** What each fd is (`socket:[inode]`, `pipe:[…]`, a path), by fd number. */
  fdLinks(): Map<string, string>;
  /** Resident set size of the gateway process in MiB (/proc/PID/status). */
  rssMiB(): number;
  /** GET /_porthole/health on a fresh connection: status and milliseconds (status 0 when it failed). */
  health(timeoutMs?: number): Promise<{ status: number; ms: number; body: string }>;
  /** Waits until the log has been quiet for `quietMs` (the logger batches lines per turn). */
  settleLog(quietMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after 10 s; removes the data directory. Resolves with the exit code or signal. */
  stop(): Promise<number | string>;
}

export interface GatewayChildOptions {
  /** The config, written as JSON (YAML is a superset of it). */
  config: Record<string, unknown>;
  /** Soft and hard open-file limit of the gateway process (via prlimit). */
  nofile?: number;
}

export async function startGatewayChild(opts: GatewayChildOptions): Promise<GatewayChild> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-rel-'));
  const configFile = join(dataDir, 'porthole.yaml');
  writeFileSync(configFile, JSON.stringify(opts.config, null, 2));
  const args = [CLI, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--config', configFile, '--log-format', 'json'];
  // prlimit execs the command: the pid is the gateway's own.
  const child = opts.nofile
    ? spawn('prlimit', [`--nofile=${opts.nofile}:${opts.nofile}`, '--', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: LogEvent[] = [];
  let partial = '';
  let lastLine = Date.now();
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    lastLine = Date.now();
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      try {
        events.push(JSON.parse(l) as LogEvent);
      } catch {
        events.push({ event: 'unparsable-log-line', line: l });
      }
    }
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    if (err.length < 1_000_000) err += d;
  });
  const exited = new Promise<number | string>((ok) => child.once('exit', (code, signal) => ok(code ?? signal ?? -1)));
  let done = false;
  void exited.then(() => (done = true));

  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`porthole serve did not start:\n${err}`)), 20_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        ok(m[1]);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`porthole serve exited ${code}:\n${err}`));
    });
  });
  const port = Number(new URL(url).port);
  const pid = child.pid!;

  return {
    child,
    pid,
    port,
    url,
    dataDir,
    events,
    stderr: () => err,
    alive: () => !done && child.exitCode === null && child.signalCode === null,
    fds: () => procFds(pid),
    sockets: () => describeSockets(pid),
    fdLinks: () => fdLinks(pid),
    rssMiB: () => procRssMiB(pid),
    health: (timeoutMs = 5000) => health(port, timeoutMs),
    settleLog: async (quietMs = 300) => {
      while (Date.now() - lastLine < quietMs) await new Promise((r) => setTimeout(r, quietMs / 3));
    },
    stop: async () => {
      if (!done) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dataDir, { recursive: true, force: true });
      return exited;
    },
  };
}

/** Open file descriptors of a process. */
export function procFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export function fdLinks(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

/**
 * The TCP sockets a process holds, as `local -> remote STATE` (from
 * /proc/PID/fd and /proc/net/tcp): says which connection an fd that did not
 * come back belongs to.
 */
export function describeSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const addr = (hex: string) => {
    const [ip, port] = hex.split(':');
    const b = Buffer.from(ip, 'hex');
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}:${parseInt(port, 16)}`;
  };
  const out: string[] = [];
  const found = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && inodes.has(f[9])) {
      found.add(f[9]);
      out.push(`${addr(f[1])} -> ${addr(f[2])} ${TCP_STATES[parseInt(f[3], 16)] ?? f[3]}`);
    }
  }
  const unix = new Set(readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)[6]));
  // A TCP socket the kernel has finished with (reset, or closed both ways) but the process never closed.
  for (const inode of inodes) if (!found.has(inode)) out.push(unix.has(inode) ? `unix socket ${inode}` : `socket ${inode} with no connection left (closed by the peer, never by the gateway)`);
  return out;
}

/** Resident set size of a process, MiB, one decimal. */
export function procRssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : NaN;
}

/** One health probe on a fresh connection (no agent: a pooled socket would hide a stuck accept). */
export function health(port: number, timeoutMs = 5000): Promise<{ status: number; ms: number; body: string }> {
  const started = performance.now();
  return new Promise((ok) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/_porthole/health', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, ms: performance.now() - started, body }));
      res.on('error', () => ok({ status: 0, ms: performance.now() - started, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => ok({ status: 0, ms: performance.now() - started, body: '' }));
  });
}

/**
 * Polls until the gateway's fd count is at most `baseline` (sockets close a
 * moment after their peers do); returns the last count read.
 */
export async function fdsBackTo(gw: GatewayChild, baseline: number, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = gw.fds();
  while (n > baseline && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    n = gw.fds();
  }
  return n;
}

/** Nearest-rank percentile of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
