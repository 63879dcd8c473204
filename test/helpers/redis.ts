/**
 * A real Debian redis-server for one test: a free port, its own directory,
 * no daemonizing, optional persistence (AOF fsynced on every write), and
 * optionally inside a network namespace (test/helpers/netns.ts).
 *
 * Never leaves a server behind: callers close() it in t.after, the process
 * exit hook SIGKILLs any that is left, and the server is started under
 * `setpriv --pdeathsig KILL` so the kernel kills it even when the test
 * process itself is SIGKILLed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atExit, killQuietly } from './exit-cleanup.js';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';
const SETPRIV = '/usr/bin/setpriv';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

export interface RedisOptions {
  /** AOF with `appendfsync always` in a directory that survives restart(); default off (no RDB, no AOF). */
  persist?: boolean;
  /** Address to bind; default 127.0.0.1, or with `netns` that namespace's own (first global IPv4) address. */
  host?: string;
  /** Run inside this network namespace (`ip netns exec`); pass `host: '127.0.0.1'` to keep it private to the namespace. */
  netns?: string;
  /** Working directory; default a fresh temp dir (removed by close()). */
  dir?: string;
  /** requirepass */
  password?: string;
  /** More redis-server arguments (e.g. `['--notify-keyspace-events', 'KEA']`), after the helper's own. */
  args?: string[];
}

export interface RedisHandle {
  host: string;
  port: number;
  /** `redis://host:port` (no password, no db) */
  url: string;
  dir: string;
  /** pid of the running server (changes on restart) */
  pid: number;
  /** SIGTERM, wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL, wait for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port and dir; resolves when it answers PING. */
  restart(): Promise<void>;
  /** stop() and remove the dir if this helper made it. */
  close(): Promise<void>;
  /** The last lines redis logged (for failure messages). */
  logTail(): string;
}

/** A port free on 127.0.0.1 right now (the kernel's pick; redis may still lose a race, which start retries). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

/** Answers true when a RESP PING (after AUTH when a password is set) gets +PONG. */
export function pingRedis(host: string, port: number, password?: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((ok) => {
    const sock = net.connect(port, host);
    let buf = '';
    const done = (v: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      ok(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => {
      const cmds = password ? [['AUTH', password], ['PING']] : [['PING']];
      sock.write(cmds.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`).join(''));
    });
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('+PONG')) done(true);
      else if (buf.includes('-')) done(false);
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/** PING from inside a namespace (the server may listen on that namespace's loopback only). */
function pingInNetns(ns: string, host: string, port: number, password?: string): Promise<boolean> {
  return new Promise((ok) => {
    const args = ['netns', 'exec', ns, REDIS_CLI, '-h', host, '-p', String(port)];
    const env = { ...process.env };
    if (password) env.REDISCLI_AUTH = password;
    const c = spawn('ip', [...args, 'PING'], { stdio: ['ignore', 'pipe', 'ignore'], env });
    let out = '';
    const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => {
      clearTimeout(timer);
      ok(out.includes('PONG'));
    });
    c.on('error', () => ok(false));
  });
}

/** The first global IPv4 address of a namespace (its address on the test bridge). */
function addressOf(ns: string): Promise<string> {
  return new Promise((ok, fail) => {
    const c = spawn('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'scope', 'global'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', fail);
    c.on('close', (code) => {
      const m = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out);
      if (code === 0 && m) ok(m[1]!);
      else fail(new Error(`no IPv4 address in network namespace ${ns} (ip -n ${ns} addr: exit ${code}) ${err.trim()}`));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startRedis(opts: RedisOptions = {}): Promise<RedisHandle> {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (apt-get install redis-server; scripts/ensure-tools.mjs installs it)`);
  const host = opts.host ?? (opts.netns ? await addressOf(opts.netns) : '127.0.0.1');
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'porthole-redis-'));
  const removeDirHook = ownDir ? atExit(() => rmSync(dir, { recursive: true, force: true })) : () => false;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log: string[] = [];
  let port = 0;

  const logTail = () => log.join('').split('\n').slice(-20).join('\n');

  const argv = (p: number): string[] => {
    const a = ['--port', String(p), '--bind', host, '--daemonize', 'no', '--dir', dir, '--protected-mode', 'no', '--logfile', '', '--save', ''];
    if (opts.persist) a.push('--appendonly', 'yes', '--appendfsync', 'always');
    else a.push('--appendonly', 'no');
    if (opts.password) a.push('--requirepass', opts.password);
    a.push(...(opts.args ?? []));
    return a;
  };

  /** Spawns one server on `p`; resolves when it answers PING, rejects (with its log) when it exits or times out. */
  const launch = async (p: number): Promise<void> => {
    log = [];
    const server = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', REDIS_SERVER] : [REDIS_SERVER];
    const cmd = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...server] : server;
    const c = spawn(cmd[0]!, [...cmd.slice(1), ...argv(p)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const keep = (d: Buffer) => {
      log.push(d.toString());
      if (log.length > 200) log = log.slice(-100);
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    const removeHook = atExit(() => killQuietly(c.pid));
    let exitInfo: string | undefined;
    exited = new Promise<void>((ok) => {
      c.once('exit', (code, sig) => {
        exitInfo = `exited with ${sig ?? code}`;
        removeHook();
        ok();
      });
      c.once('error', (err) => {
        exitInfo = `failed to spawn: ${err.message}`;
        removeHook();
        ok();
      });
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exitInfo) throw new Error(`redis-server on ${host}:${p} ${exitInfo}${opts.netns ? ` (netns ${opts.netns})` : ''}; its log:\n${logTail()}`);
      const up = opts.netns ? await pingInNetns(opts.netns, host, p, opts.password) : await pingRedis(host, p, opts.password, 500);
      if (up) return;
      await sleep(50);
    }
    killQuietly(c.pid);
    await exited;
    throw new Error(`redis-server on ${host}:${p} did not answer PING within ${START_TIMEOUT_MS} ms; its log:\n${logTail()}`);
  };

  for (let attempt = 1; ; attempt++) {
    // inside a namespace any port is free; an address that is not local here is redis's to report
    port = await freePort(opts.netns ? '127.0.0.1' : host).catch(() => freePort('127.0.0.1'));
    try {
      await launch(port);
      break;
    } catch (err) {
      if (attempt < 5 && /Address already in use/i.test(logTail())) continue;
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      removeDirHook();
      throw err;
    }
  }

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    killQuietly(c.pid, sig);
    const timer = setTimeout(() => killQuietly(c.pid), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const handle: RedisHandle = {
    host,
    port,
    url: `redis://${host.includes(':') ? `[${host}]` : host}:${port}`,
    dir,
    pid: child!.pid!,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      // The old socket may linger for a moment; redis sets SO_REUSEADDR, but retry a few times anyway.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(port);
          break;
        } catch (err) {
          if (attempt < 5 && /Address already in use/i.test(logTail())) {
            await sleep(200);
            continue;
          }
          throw err;
        }
      }
      handle.pid = child!.pid!;
    },
    close: async () => {
      await signal('SIGTERM');
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      removeDirHook();
    },
    logTail,
  };
  return handle;
}

/** In `dir`: a CA, Redis's certificate (localhost and 127.0.0.1) and a client certificate, all signed by the CA; their paths. */
export function redisCertificates(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string } {
  const ssl = (args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=porthole test store CA']);
  for (const [name, ext] of [
    ['redis', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['node', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  return { ca: join(dir, 'ca.pem'), serverCert: join(dir, 'redis.pem'), serverKey: join(dir, 'redis.key'), clientCert: join(dir, 'node.pem'), clientKey: join(dir, 'node.key') };
}
