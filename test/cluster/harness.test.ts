/**
 * Proves the harnesses the cluster tests stand on: a real redis-server
 * (test/helpers/redis.ts) and separate hosts made of network namespaces
 * (test/helpers/netns.ts). If these lie, every cluster test lies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { makeNet, MARKER_DIR, type Net } from '../helpers/netns.js';
import { pingRedis, startRedis } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function client(url: string, t: { after(fn: () => unknown): void }): Promise<Redis> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => {});
  await r.connect();
  t.after(() => r.disconnect());
  return r;
}

function pidAlive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/^\S+ \(\S+\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** Processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) found.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Connects from the test process (root namespace); 'ok' when the server greets, else the error code. */
function reach(host: string, port: number, timeoutMs = 1000): Promise<string> {
  return new Promise((ok) => {
    const s = net.connect({ host, port });
    const timer = setTimeout(() => {
      s.destroy();
      ok('TIMEOUT');
    }, timeoutMs);
    s.once('data', (d) => {
      clearTimeout(timer);
      s.destroy();
      ok(d.toString().trim() === 'hello' ? 'ok' : `got ${d}`);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      ok(e.code ?? e.message);
    });
  });
}

const CLIENT = `const s=require('net').connect({host:process.argv[1],port:+process.argv[2]});const t=setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},1000);s.on('data',d=>{console.log(String(d).trim()==='hello'?'ok':'got '+d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)})`;

/** Connects from inside namespace i. */
async function reachFrom(nw: Net, i: number, host: string, port: number): Promise<string> {
  const r = await nw.exec(i, process.execPath, ['-e', CLIENT, host, String(port)]);
  return r.stdout.trim() || `exit ${r.code}: ${r.stderr}`;
}

/** Starts a TCP server that greets "hello" inside namespace i; resolves once it listens. */
async function greeter(nw: Net, i: number, host: string, tag: string): Promise<{ port: number; pid: number }> {
  const code = `const s=require('net').createServer(c=>c.end('hello\\n'));s.listen(0,process.argv[1],()=>console.log('port '+s.address().port))`;
  const c = nw.spawn(i, process.execPath, ['-e', code, host, tag], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  c.stderr!.on('data', (d) => (err += d));
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`greeter did not start: ${err}`)), 10_000);
    c.stdout!.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(Number(m[1]));
      }
    });
    c.once('exit', (code) => fail(new Error(`greeter exited ${code}: ${err}`)));
  });
  return { port, pid: c.pid! };
}

test('redis: a real redis-server answers PING, SET and GET on its own port', async (t) => {
  const r = await startRedis();
  t.after(() => r.close());
  assert.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(pidAlive(r.pid));
  const c = await client(r.url, t);
  assert.equal(await c.ping(), 'PONG');
  await c.set('k', 'v');
  assert.equal(await c.get('k'), 'v');
  assert.equal(await c.config('GET', 'appendonly').then((a) => (a as string[])[1]), 'no');
  assert.equal(await c.config('GET', 'save').then((a) => (a as string[])[1]), '');
});

test('redis: extra arguments reach the server', async (t) => {
  const r = await startRedis({ args: ['--notify-keyspace-events', 'KA'] });
  t.after(() => r.close());
  const c = await client(r.url, t);
  assert.equal(((await c.config('GET', 'notify-keyspace-events')) as string[])[1], 'AK');
});

test('redis: two servers get two ports', async (t) => {
  const [a, b] = await Promise.all([startRedis(), startRedis()]);
  t.after(() => Promise.all([a.close(), b.close()]));
  assert.notEqual(a.port, b.port);
});

test('redis: with persist, restart() keeps every acknowledged write', async (t) => {
  const r = await startRedis({ persist: true });
  t.after(() => r.close());
  const c = await client(r.url, t);
  for (let i = 0; i < 50; i++) await c.set(`k${i}`, String(i));
  const port = r.port;
  const oldPid = r.pid;
  await r.restart();
  assert.equal(r.port, port);
  assert.notEqual(r.pid, oldPid);
  assert.equal(pidAlive(oldPid), false);
  const c2 = await client(r.url, t);
  assert.equal(await c2.get('k49'), '49');
  assert.equal(await c2.dbsize(), 50);
});

test('redis: with persist, kill() (SIGKILL, no shutdown save) then restart() keeps every acknowledged write (appendfsync always)', async (t) => {
  const r = await startRedis({ persist: true });
  t.after(() => r.close());
  const c = await client(r.url, t);
  await c.set('acked', 'yes');
  const pid = r.pid;
  await r.kill();
  assert.equal(pidAlive(pid), false);
  assert.equal(await pingRedis(r.host, r.port), false, 'a killed redis does not answer');
  await r.restart();
  const c2 = await client(r.url, t);
  assert.equal(await c2.get('acked'), 'yes');
});

test('redis: without persist, restart() loses the data', async (t) => {
  const r = await startRedis();
  t.after(() => r.close());
  const c = await client(r.url, t);
  await c.set('k', 'v');
  await r.restart();
  const c2 = await client(r.url, t);
  assert.equal(await c2.get('k'), null);
});

test('redis: a password is required when set', async (t) => {
  const r = await startRedis({ password: 's3cret' });
  t.after(() => r.close());
  assert.equal(await pingRedis(r.host, r.port), false);
  assert.equal(await pingRedis(r.host, r.port, 's3cret'), true);
  const c = await client(`redis://:s3cret@${r.host}:${r.port}`, t);
  assert.equal(await c.ping(), 'PONG');
});

test('redis: close() ends the server and removes its dir; a stopped server fails start with its log', async () => {
  const r = await startRedis({ persist: true });
  const { pid, dir } = r;
  await r.close();
  assert.equal(pidAlive(pid), false);
  assert.equal(existsSync(dir), false);
  await assert.rejects(startRedis({ host: '10.213.255.253' }), /redis-server on 10\.213\.255\.253:\d+ exited with 1.*its log:[\s\S]*(Cannot assign|bind)/s);
});

test('redis: a test process killed with SIGKILL leaves no redis-server behind', async () => {
  const tag = `porthole-orphan-${process.pid}`;
  const code = `import('./test/helpers/redis.ts').then(async (m) => { const r = await m.startRedis({ dir: process.argv[1] }); console.log('pid ' + r.pid); })`;
  const { mkdtempSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync(`/tmp/${tag}-`);
  try {
    const c = spawn(process.execPath, ['--import', 'tsx', '-e', code, dir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((ok, fail) => {
      let out = '';
      c.stdout.on('data', (d) => {
        out += d;
        const m = /pid (\d+)/.exec(out);
        if (m) ok(Number(m[1]));
      });
      c.once('exit', (code) => fail(new Error(`child exited ${code} before starting redis`)));
    });
    assert.ok(pidAlive(pid));
    c.kill('SIGKILL');
    const deadline = Date.now() + 5000;
    while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(pidAlive(pid), false, 'the kernel killed redis with its parent (pdeathsig)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('netns: loopback stays private, the bridge address is reachable, partition cuts and heal restores', async (t) => {
  const nw = await makeNet(3);
  t.after(() => nw.close());
  const x = nw.subnet;
  assert.ok(x >= 1 && x <= 250);
  assert.equal(nw.rootIp, `10.213.${x}.254`);
  assert.deepEqual(nw.hosts.map((h) => h.ip), [`10.213.${x}.1`, `10.213.${x}.2`, `10.213.${x}.3`]);
  for (const h of nw.hosts) assert.ok(h.ns.length <= 15 && /^ph\d+n\d$/.test(h.ns));

  // each namespace has lo up and no route out of the test subnet
  const routes = await nw.exec(1, 'ip', ['-4', 'route']);
  assert.equal(routes.code, 0);
  assert.doesNotMatch(routes.stdout, /default/);
  const lo = await nw.exec(1, 'ip', ['link', 'show', 'lo']);
  assert.match(lo.stdout, /UP/);

  const local = await greeter(nw, 0, '127.0.0.1', 'loopback');
  assert.equal(await reachFrom(nw, 0, '127.0.0.1', local.port), 'ok', 'reachable inside its own namespace');
  assert.equal(await reachFrom(nw, 1, nw.hosts[0]!.ip, local.port), 'ECONNREFUSED', 'not from namespace 1 at ns 0 address');
  assert.equal(await reachFrom(nw, 1, '127.0.0.1', local.port), 'ECONNREFUSED', "not at namespace 1's own loopback");
  assert.equal(await reach(nw.hosts[0]!.ip, local.port), 'ECONNREFUSED', 'not from the root namespace');

  const pub = await greeter(nw, 0, nw.hosts[0]!.ip, 'bridge');
  assert.equal(await reachFrom(nw, 1, nw.hosts[0]!.ip, pub.port), 'ok', 'namespace 1 reaches it across the bridge');
  assert.equal(await reachFrom(nw, 2, nw.hosts[0]!.ip, pub.port), 'ok', 'namespace 2 reaches it across the bridge');
  assert.equal(await reach(nw.hosts[0]!.ip, pub.port), 'ok', 'the root namespace reaches it');

  await nw.partition(0);
  // The four probes at once: those that are cut each wait out their 1 s timeout.
  const [from1, fromRoot, from0, from2] = await Promise.all([
    reachFrom(nw, 1, nw.hosts[0]!.ip, pub.port),
    reach(nw.hosts[0]!.ip, pub.port),
    reachFrom(nw, 0, nw.hosts[1]!.ip, 1),
    reachFrom(nw, 2, nw.hosts[1]!.ip, 9),
  ]);
  assert.notEqual(from1, 'ok', 'cut off from namespace 1');
  assert.notEqual(fromRoot, 'ok', 'cut off from root');
  assert.notEqual(from0, 'ECONNREFUSED', 'namespace 0 cannot reach the others either (no RST comes back)');
  assert.equal(from2, 'ECONNREFUSED', 'the others still reach each other');

  await assert.rejects(nw.verify(), /the root namespace cannot reach 10\.213\.\d+\.1 \((ENETUNREACH|EHOSTUNREACH|TIMEOUT)\): is traffic on bridge ph\d+br dropped\?/, 'the self-check of makeNet names a broken path');

  await nw.heal(0);
  let back = '';
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && (back = await reach(nw.hosts[0]!.ip, pub.port)) !== 'ok') await new Promise((r) => setTimeout(r, 100));
  assert.equal(back, 'ok', 'heal restores the root path');
  assert.equal(await reachFrom(nw, 1, nw.hosts[0]!.ip, pub.port), 'ok', 'heal restores namespace 1');
  await nw.verify();
});

test('netns: redis inside a namespace is reachable from the others and from root, and close() leaves nothing behind', async (t) => {
  const nw = await makeNet(3);
  let closed = false;
  t.after(() => (closed ? undefined : nw.close()));
  const x = nw.subnet;
  const r = await startRedis({ netns: nw.hosts[0]!.ns });
  t.after(() => r.close());
  assert.equal(r.host, nw.hosts[0]!.ip, "with netns, the host defaults to the namespace's address");
  assert.equal(r.url, `redis://${nw.hosts[0]!.ip}:${r.port}`);
  const priv = await startRedis({ netns: nw.hosts[1]!.ns, host: '127.0.0.1' });
  t.after(() => priv.close());
  assert.equal(await pingRedis(nw.hosts[1]!.ip, priv.port, undefined, 1000), false, "a namespace's private redis is not reachable from root");
  const inside = await nw.exec(1, '/usr/bin/redis-cli', ['-p', String(priv.port), 'PING']);
  assert.equal(inside.stdout.trim(), 'PONG', 'but answers inside its namespace');
  const c = await client(r.url, t);
  await c.set('from-root', '1');
  const cli = await nw.exec(2, '/usr/bin/redis-cli', ['-h', nw.hosts[0]!.ip, '-p', String(r.port), 'GET', 'from-root']);
  assert.equal(cli.stdout.trim(), '1', `from namespace 2: ${cli.stderr}`);
  c.disconnect();

  const g = await greeter(nw, 1, nw.hosts[1]!.ip, `porthole-harness-${process.pid}`);
  const child = nw.spawn(2, 'sleep', ['300']);
  assert.ok(child.pid);
  await nw.close();
  closed = true;
  assert.equal(pidAlive(r.pid), false, 'redis in a closed namespace is killed');
  assert.equal(pidAlive(g.pid), false);
  assert.equal(pidAlive(child.pid!), false);
  assert.deepEqual(processesWith(`porthole-harness-${process.pid}`), []);
  const nsList = await new Promise<string>((ok) => {
    const p = spawn('ip', ['netns', 'list'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let o = '';
    p.stdout.on('data', (d) => (o += d));
    p.on('close', () => ok(o));
  });
  assert.doesNotMatch(nsList, new RegExp(`^ph${x}n`, 'm'));
  const links = await new Promise<string>((ok) => {
    const p = spawn('ip', ['-o', 'link'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let o = '';
    p.stdout.on('data', (d) => (o += d));
    p.on('close', () => ok(o));
  });
  assert.doesNotMatch(links, new RegExp(`ph${x}(n|br)`));
  assert.equal(existsSync(`${MARKER_DIR}/${x}.json`), false, 'the subnet marker is released');
  await r.close();
});

test('netns: leftovers of a test process that died are removed by the next makeNet', async (t) => {
  const code = `import('./test/helpers/netns.ts').then(async (m) => { const n = await m.makeNet(2); console.log('subnet ' + n.subnet); })`;
  const c = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const x = await new Promise<number>((ok, fail) => {
    let out = '';
    c.stdout.on('data', (d) => {
      out += d;
      const m = /subnet (\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    c.once('exit', (code) => fail(new Error(`child exited ${code} before making its net`)));
  });
  c.kill('SIGKILL'); // no exit hook runs
  await new Promise((r) => c.once('exit', r));
  assert.ok(existsSync(`/run/netns/ph${x}n0`), 'the dead process left its namespaces behind');
  assert.ok(existsSync(`${MARKER_DIR}/${x}.json`));

  const nw = await makeNet(1);
  t.after(() => nw.close());
  assert.equal(existsSync(`/run/netns/ph${x}n0`) && nw.subnet !== x, false, 'the leftovers are gone (or the subnet was re-made by this run)');
  if (nw.subnet !== x) {
    assert.equal(existsSync(`/run/netns/ph${x}n1`), false);
    assert.equal(existsSync(`${MARKER_DIR}/${x}.json`), false);
  }
});

test('netns: test processes started together get different subnets and each removes its own', async () => {
  const code = `import('./test/helpers/netns.ts').then(async (m) => { const n = await m.makeNet(2); console.log('subnet ' + n.subnet + ' ' + n.hosts.map((h) => h.ns).join(',')); await new Promise((r) => setTimeout(r, 500)); await n.close(); console.log('closed'); })`;
  const runs = await Promise.all(
    Array.from({ length: 3 }, () => {
      const c = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      return new Promise<{ code: number | null; out: string; err: string }>((ok) => c.on('close', (code) => ok({ code, out, err })));
    }),
  );
  for (const r of runs) assert.equal(r.code, 0, r.err);
  const subnets = runs.map((r) => Number(/subnet (\d+)/.exec(r.out)?.[1]));
  assert.equal(new Set(subnets).size, 3, `subnets ${subnets.join(', ')}`);
  for (const r of runs) assert.match(r.out, /closed/);
  for (const x of subnets) {
    assert.equal(existsSync(`/run/netns/ph${x}n0`), false);
    assert.equal(existsSync(`${MARKER_DIR}/${x}.json`), false);
  }
});
