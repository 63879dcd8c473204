/**
 * Separate "hosts" for cluster tests: n network namespaces, each joined by a
 * veth pair to one Linux bridge in the root namespace, so the test process
 * reaches every namespace and the namespaces reach each other, while a
 * server bound to a namespace's loopback is reachable from that namespace
 * only.
 *
 *   root ns: bridge ph<X>br 10.213.X.254/24
 *     ├── ph<X>n0h ─veth─ ph<X>n0p 10.213.X.1  (namespace ph<X>n0)
 *     ├── ph<X>n1h ─veth─ ph<X>n1p 10.213.X.2  (namespace ph<X>n1)
 *     └── …
 *
 * X is unique among live test processes: a marker file
 * /run/porthole-test-netns/<X>.json (created with O_EXCL) holds the pid and
 * start time of its owner. Leftovers of an owner that died are removed
 * before X is used again. Nothing here routes anywhere but 10.213.X.0/24:
 * the namespaces have no default route.
 *
 * Needs root (ip netns). Every setup command is checked; a failure throws
 * with the command and its stderr and undoes what was made. There is no
 * fallback: a test that needs namespaces fails and says why.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { atExit, killQuietly } from './exit-cleanup.js';

export const MARKER_DIR = '/run/porthole-test-netns';
const IP = existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : 'ip';

export interface NetHost {
  /** namespace name, for `ip netns exec` */
  ns: string;
  /** the namespace's address on the test bridge (10.213.X.(i+1)) */
  ip: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface Net {
  /** X of 10.213.X.0/24 */
  subnet: number;
  hosts: NetHost[];
  /** the root namespace's address on the bridge (10.213.X.254) */
  rootIp: string;
  bridge: string;
  /** Spawns `cmd args` inside namespace i; killed by close() if still running. */
  spawn(i: number, cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** Runs `cmd args` inside namespace i to completion (never throws on a non-zero code). */
  exec(i: number, cmd: string, args?: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Cuts namespace i off: its veth goes down on both sides. */
  partition(i: number): Promise<void>;
  /** Brings namespace i's link back up. */
  heal(i: number): Promise<void>;
  /** Checks root → namespace 0 and namespace 1 → namespace 0 answer (as makeNet does before returning); throws naming the path that does not. */
  verify(): Promise<void>;
  /** Kills every process in the namespaces, removes namespaces, veths, bridge, any firewall rule added, and the marker. */
  close(): Promise<void>;
}

export interface NetOptions {
  /** Per-command timeout of setup steps (default 10 s). */
  commandTimeoutMs?: number;
}

/** Runs a command, resolves with its output; throws (with the command and stderr) on a non-zero exit. */
function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((ok, fail) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      c.kill('SIGKILL');
      err += `\n(timed out after ${timeoutMs} ms)`;
    }, timeoutMs);
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('error', (e) => {
      clearTimeout(timer);
      fail(new Error(`\`${cmd} ${args.join(' ')}\` could not run: ${e.message}`));
    });
    c.on('close', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) ok(out);
      else fail(new Error(`\`${cmd} ${args.join(' ')}\` failed (${sig ?? `exit ${code}`}): ${err.trim() || out.trim()}`));
    });
  });
}

function runSyncQuiet(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
  return r.stdout?.toString() ?? '';
}

/** Start time (clock ticks since boot) of a pid, or undefined when it does not run: pid + start time name a process uniquely. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 22; fields after the ")" of the command name are space separated
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

interface Marker {
  pid: number;
  start: string;
}

function readMarker(path: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function alive(m: Marker | undefined): boolean {
  return !!m && startTimeOf(m.pid) === m.start;
}

const names = (x: number, i: number) => ({ ns: `ph${x}n${i}`, host: `ph${x}n${i}h`, peer: `ph${x}n${i}p` });
const bridgeName = (x: number) => `ph${x}br`;

/** Removes every namespace and link of subnet X (synchronously: also used at exit). */
function removeAllOf(x: number): void {
  const nsRe = new RegExp(`^ph${x}n\\d+$`);
  const nsList = runSyncQuiet(IP, ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => nsRe.test(n));
  for (const ns of nsList) {
    for (const pid of runSyncQuiet(IP, ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) killQuietly(Number(pid));
    runSyncQuiet(IP, ['netns', 'del', ns]);
  }
  const linkRe = new RegExp(`^ph${x}(n\\d+h|br)$`);
  const links = runSyncQuiet(IP, ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => !!n && linkRe.test(n));
  for (const l of links) runSyncQuiet(IP, ['link', 'del', l]);
  removeFirewallRule(x, true);
}

/** Reaps leftovers of owners that died; only one process reaps a given X (link() to `X.reaping` is exclusive). */
function reapStale(): void {
  for (const f of readdirSync(MARKER_DIR)) {
    const m = /^(\d+)\.json$/.exec(f);
    if (!m) continue;
    const x = Number(m[1]);
    const path = `${MARKER_DIR}/${f}`;
    const before = readMarker(path);
    if (!before || alive(before)) continue;
    const reaping = `${MARKER_DIR}/${x}.reaping`;
    try {
      linkSync(path, reaping);
    } catch {
      continue; // someone else reaps it, or it is gone
    }
    // The marker may have been replaced by a live owner between the read and the link.
    const linked = readMarker(reaping);
    if (alive(linked) || linked?.pid !== before.pid || linked.start !== before.start) {
      unlinkSync(reaping);
      continue;
    }
    removeAllOf(x);
    // marker first: while `reaping` exists nobody else reaps X, and once the marker is gone X may be taken anew
    unlinkSync(path);
    unlinkSync(reaping);
  }
}

/** Takes a free X in 1..250, starting from one derived from the pid. */
function allocate(): number {
  mkdirSync(MARKER_DIR, { recursive: true });
  reapStale();
  const me: Marker = { pid: process.pid, start: startTimeOf(process.pid)! };
  const first = process.pid % 250;
  for (let k = 0; k < 250; k++) {
    const x = ((first + k) % 250) + 1;
    try {
      writeFileSync(`${MARKER_DIR}/${x}.json`, JSON.stringify(me), { flag: 'wx' });
      return x;
    } catch {
      // taken
    }
  }
  throw new Error(`no free test subnet in 10.213.1-250.0/24: every marker in ${MARKER_DIR} belongs to a live process`);
}

// --- bridged traffic and the firewall ---------------------------------------
// With net.bridge.bridge-nf-call-iptables = 1 frames crossing the bridge
// between two namespaces traverse iptables' FORWARD chain of the root
// namespace. When that chain drops by default, a rule scoped to this bridge
// only is inserted and removed again on close.

const fwRules = new Map<number, string[]>();

function bridgeNfCallIptables(): boolean {
  try {
    return readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
  } catch {
    return false; // br_netfilter not loaded: bridged frames never see iptables
  }
}

function which(bin: string): string | undefined {
  for (const d of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (existsSync(`${d}/${bin}`)) return `${d}/${bin}`;
  return undefined;
}

async function openFirewallFor(x: number): Promise<void> {
  if (!bridgeNfCallIptables()) return;
  const br = bridgeName(x);
  const iptables = which('iptables');
  if (iptables) {
    const forward = await run(iptables, ['-S', 'FORWARD']);
    if (!/^-P FORWARD ACCEPT$/m.test(forward) || /-j (DROP|REJECT)/.test(forward)) {
      const rule = ['FORWARD', '-i', br, '-o', br, '-j', 'ACCEPT'];
      await run(iptables, ['-I', ...rule]);
      fwRules.set(x, [iptables, '-D', ...rule]);
    }
  } else {
    // No iptables binary: the legacy tables in use are listed in /proc; any filter table loaded without a tool to inspect it is refused.
    const tables = existsSync('/proc/net/ip_tables_names') ? readFileSync('/proc/net/ip_tables_names', 'utf8') : '';
    if (/\bfilter\b/.test(tables)) throw new Error('bridge-nf-call-iptables is 1 and an iptables filter table is loaded, but no iptables binary is installed to inspect it (apt-get install iptables)');
  }
  const nft = which('nft');
  if (nft) {
    const ruleset = await run(nft, ['list', 'ruleset']);
    if (/hook forward[^;]*;[^}]*policy drop/.test(ruleset)) {
      throw new Error(`nftables has a forward chain with policy drop; bridged traffic between the test namespaces (bridge ${br}) would be dropped: \n${ruleset}`);
    }
  }
}

function removeFirewallRule(x: number, quiet: boolean): void {
  const r = fwRules.get(x);
  if (!r) return;
  fwRules.delete(x);
  if (quiet) runSyncQuiet(r[0]!, r.slice(1));
  else spawnSync(r[0]!, r.slice(1));
}

/**
 * Proves the paths the tests use before handing the net out: root → the
 * first namespace, and (with two or more) the second namespace → the first
 * across the bridge. A SYN to a closed port must come back as a reset
 * (ECONNREFUSED): a timeout means something (a FORWARD chain seeing bridged
 * frames, bridge-nf-call-iptables) drops the traffic.
 */
async function checkPaths(x: number, hosts: NetHost[]): Promise<void> {
  const target = hosts[0]!.ip;
  const fromRoot = await new Promise<string>((ok) => {
    const s = net.connect({ host: target, port: 9 });
    const timer = setTimeout(() => (s.destroy(), ok('TIMEOUT')), 3000);
    s.once('connect', () => (clearTimeout(timer), s.destroy(), ok('CONNECTED')));
    s.once('error', (e: NodeJS.ErrnoException) => (clearTimeout(timer), ok(e.code ?? e.message)));
  });
  const why = `is traffic on bridge ${bridgeName(x)} dropped? net.bridge.bridge-nf-call-iptables=${bridgeNfCallIptables() ? 1 : 0}; check iptables -S FORWARD / nft list ruleset`;
  if (fromRoot !== 'ECONNREFUSED' && fromRoot !== 'CONNECTED') throw new Error(`the root namespace cannot reach ${target} (${fromRoot}): ${why}`);
  if (hosts.length < 2) return;
  // bash's /dev/tcp: no other client is needed inside the namespace
  const probe = await new Promise<string>((ok) => {
    const c = spawn(IP, ['netns', 'exec', hosts[1]!.ns, 'bash', '-c', `timeout 3 bash -c 'exec 3<>/dev/tcp/${target}/9' 2>&1; echo "exit $?"`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.on('data', (d) => (text += d));
    c.stderr.on('data', (d) => (text += d));
    c.on('close', () => ok(text));
    c.on('error', (e) => ok(e.message));
  });
  if (!/Connection refused|exit 0/.test(probe)) throw new Error(`namespace ${hosts[1]!.ns} cannot reach ${target} across the bridge (${probe.trim()}): ${why}`);
}

/** Creates n namespaces on one bridge; see the file comment. */
export async function makeNet(n: number, opts: NetOptions = {}): Promise<Net> {
  if (process.getuid?.() !== 0) throw new Error('makeNet needs root (ip netns add)');
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`makeNet: n must be 1..200, got ${n}`);
  const timeout = opts.commandTimeoutMs ?? 10_000;
  const x = allocate();
  const br = bridgeName(x);
  const rootIp = `10.213.${x}.254`;
  const hosts: NetHost[] = [];
  const spawned = new Set<ChildProcess>();
  let closed = false;

  const teardown = () => {
    for (const c of spawned) killQuietly(c.pid);
    spawned.clear();
    removeAllOf(x);
    try {
      unlinkSync(`${MARKER_DIR}/${x}.json`);
    } catch {
      // already gone
    }
  };
  const removeHook = atExit(teardown);

  const ip = (...args: string[]) => run(IP, args, timeout);
  const sysctl = (ns: string | undefined, key: string, value: string) =>
    ns ? run(IP, ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`], timeout) : run('sysctl', ['-qw', `${key}=${value}`], timeout);

  try {
    await ip('link', 'add', br, 'type', 'bridge');
    // IPv6 off on everything made here: no router solicitations or MLD reports, only the IPv4 the tests use
    await sysctl(undefined, `net.ipv6.conf.${br}.disable_ipv6`, '1');
    await ip('addr', 'add', `${rootIp}/24`, 'dev', br);
    await ip('link', 'set', br, 'up');
    await openFirewallFor(x);
    for (let i = 0; i < n; i++) {
      const nm = names(x, i);
      const addr = `10.213.${x}.${i + 1}`;
      await ip('netns', 'add', nm.ns);
      await sysctl(nm.ns, 'net.ipv6.conf.all.disable_ipv6', '1');
      await sysctl(nm.ns, 'net.ipv6.conf.default.disable_ipv6', '1');
      await ip('-n', nm.ns, 'link', 'set', 'lo', 'up');
      await ip('link', 'add', nm.host, 'type', 'veth', 'peer', 'name', nm.peer, 'netns', nm.ns);
      await sysctl(undefined, `net.ipv6.conf.${nm.host}.disable_ipv6`, '1');
      await ip('link', 'set', nm.host, 'master', br);
      await ip('link', 'set', nm.host, 'up');
      await ip('-n', nm.ns, 'addr', 'add', `${addr}/24`, 'dev', nm.peer);
      await ip('-n', nm.ns, 'link', 'set', nm.peer, 'up');
      hosts.push({ ns: nm.ns, ip: addr });
    }
    await checkPaths(x, hosts);
  } catch (err) {
    teardown();
    removeHook();
    throw err;
  }

  const check = (i: number) => {
    if (closed) throw new Error('net is closed');
    if (!hosts[i]) throw new Error(`no namespace ${i} (have ${hosts.length})`);
    return hosts[i]!;
  };

  const net: Net = {
    subnet: x,
    hosts,
    rootIp,
    bridge: br,
    spawn(i, cmd, args = [], spawnOpts = {}) {
      const h = check(i);
      const c = spawn(IP, ['netns', 'exec', h.ns, cmd, ...args], spawnOpts);
      spawned.add(c);
      c.once('exit', () => spawned.delete(c));
      return c;
    },
    exec(i, cmd, args = [], timeoutMs = 10_000) {
      const h = check(i);
      return new Promise((ok) => {
        const c = spawn(IP, ['netns', 'exec', h.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('error', (e) => {
          clearTimeout(timer);
          ok({ stdout, stderr: stderr + e.message, code: null });
        });
        c.on('close', (code) => {
          clearTimeout(timer);
          ok({ stdout, stderr, code });
        });
      });
    },
    verify: () => checkPaths(x, hosts),
    async partition(i) {
      const h = check(i);
      const nm = names(x, i);
      await ip('link', 'set', nm.host, 'down');
      await ip('-n', h.ns, 'link', 'set', nm.peer, 'down');
    },
    async heal(i) {
      const h = check(i);
      const nm = names(x, i);
      await ip('-n', h.ns, 'link', 'set', nm.peer, 'up');
      await ip('link', 'set', nm.host, 'up');
    },
    async close() {
      if (closed) return;
      closed = true;
      const exits = [...spawned].map((c) => new Promise<void>((ok) => (c.exitCode !== null || c.signalCode !== null ? ok() : c.once('exit', () => ok()))));
      for (const c of spawned) killQuietly(c.pid);
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
      teardown();
      removeHook();
    },
  };
  return net;
}
