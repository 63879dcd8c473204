// The proxies under test, each started as its own process on a free loopback
// port in front of the same upstream, so /proc tells their cost apart.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export async function freePort() {
  const s = net.createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

/** Waits until something accepts TCP connections on the port. */
export async function waitPort(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function start(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  child.stdout.on('data', () => {});
  child.on('exit', (code, sig) => {
    if (!child.stopping) process.stderr.write(`bench: ${name} exited (${code ?? sig}): ${err}\n`);
  });
  return {
    child,
    stop: () =>
      new Promise((ok) => {
        child.stopping = true;
        if (child.exitCode !== null || child.signalCode) return ok();
        child.once('exit', () => ok());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** The upstream (WebSocket echo, /stream, HTTP) as a child process. */
export async function startUpstream() {
  const port = await freePort();
  const p = start('upstream', process.execPath, [here('../peers/upstream.mjs')], { env: { ...process.env, PORT: String(port) } });
  await waitPort(port);
  return { name: 'upstream', port, pid: p.child.pid, stop: p.stop };
}

/** The cores workload's upstream (peers/c-upstream.c, built by the caller): HTTP and WebSocket echo at a small share of a core. */
export async function startCUpstream(bin) {
  const port = await freePort();
  const p = start('c-upstream', bin, [String(port)]);
  await waitPort(port);
  return { name: 'c-upstream', port, pid: p.child.pid, stop: p.stop };
}

export async function startTcpSource() {
  const port = await freePort();
  const p = start('tcp-source', process.execPath, [here('../peers/tcp-source.mjs'), String(port)]);
  await waitPort(port);
  return { name: 'tcp-source', port, pid: p.child.pid, stop: p.stop };
}

/** Each proxy: `{ name, port, pid, path, stop }`; clients use ws://127.0.0.1:port{path}. */
export const PROXIES = {
  direct: async (up) => ({ name: 'direct', port: up.port, pid: null, path: '/b/', stop: async () => {} }),

  /** `metrics: false` turns the Prometheus metrics off (they are on by default): the cost of metrics is the difference. */
  /**
   * `workers: N` runs N gateway processes under a primary (docs/workers.md); the CPU read is the
   * whole tree (primary + workers). `sched: 'rr'`: the primary accepts and hands connections
   * out round-robin, instead of the workers accepting on the shared socket (NODE_CLUSTER_SCHED_POLICY).
   */
  porthole: async (up, { metrics = true, workers = 1, sched, engine, nodeHandshakes = false, cpuProf, root = ROOT, label = '' } = {}) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-porthole-'));
    const cfg = join(dir, 'porthole.yaml');
    writeFileSync(cfg, `${metrics ? '' : 'metrics: false\n'}${workers > 1 ? `workers: ${workers}\n` : ''}apps:\n  - name: b\n    port: ${up.port}\n`);
    // Default settings: a JSON log line per request, read (and dropped) by the harness.
    // engine: 'js' keeps the JavaScript tunnel where the native one would be used (tunnel_engine, docs/configuration.md).
    // nodeHandshakes: every WebSocket handshake through Node's own path, not the front (PORTHOLE_FRONT=node, docs/configuration.md).
    const env = sched || engine || nodeHandshakes ? { env: { ...process.env, ...(sched ? { NODE_CLUSTER_SCHED_POLICY: sched } : {}), ...(engine ? { PORTHOLE_TUNNEL: engine } : {}), ...(nodeHandshakes ? { PORTHOLE_FRONT: 'node' } : {}) } } : {};
    // cpuProf: a V8 CPU profile of the gateway, written to that directory when it stops (bench/profile-summary.mjs reads it).
    const prof = cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf] : [];
    if (cpuProf) mkdirSync(cpuProf, { recursive: true });
    const p = start('porthole', process.execPath, [...prof, join(root, 'dist/cli/main.js'), 'serve', '--listen', `127.0.0.1:${port}`, '--config', cfg, '--data', dir, '--log-format', 'json'], env);
    await waitPort(port);
    const name = `porthole${label}${engine === 'js' ? ' (JS tunnel)' : ''}${nodeHandshakes ? ' (Node handshakes)' : ''}${metrics ? '' : ' (no metrics)'}${workers > 1 ? ` (${workers} workers${sched ? `, sched ${sched}` : ''})` : ''}`;
    return { name, port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },

  nginx: async (up, workers = '1') => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'));
    for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
    // Seed 003's WebSocket block; keep-alive to the upstream for plain HTTP ('' → ""), as a tuned nginx would.
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 19000; }
http {
  # nginx's default: an access log line per request, as Porthole logs one per request by default.
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream backend { server 127.0.0.1:${up.port}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_read_timeout 3600;
      proxy_send_timeout 3600;
    }
  }
}
`,
    );
    const p = start(`nginx-${workers}`, '/usr/sbin/nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;']);
    await waitPort(port);
    return { name: workers === '1' ? 'nginx' : `nginx (${workers})`, port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },

  haproxy: async (up) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-'));
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global
  maxconn 9600
  fd-hard-limit 20000
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 3600s
  timeout server 3600s
  timeout tunnel 3600s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  server s1 127.0.0.1:${up.port}
`,
    );
    const p = start('haproxy', '/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
    await waitPort(port);
    return { name: 'haproxy', port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },

  'http-proxy': async (up) => {
    const port = await freePort();
    const p = start('http-proxy', process.execPath, [here('../peers/http-proxy-server.mjs'), String(port), String(up.port)]);
    await waitPort(port);
    return { name: 'http-proxy', port, pid: p.child.pid, path: '/b/', stop: p.stop };
  },
};

/** A self-signed certificate for 127.0.0.1 (openssl), as files: `cert`, `key`, and `pem` (both, for HAProxy). */
function certIn(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const pem = join(dir, 'both.pem');
  writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));
  return { cert, key, pem };
}

/**
 * Proxies with TLS and HTTP/2 to the client, HTTP/1.1 to the upstream, for the h2 workload:
 * Porthole with `tls`, nginx with `http2` on its `ssl` listener, HAProxy with `alpn h2,http/1.1`.
 */
export const H2_PROXIES = {
  porthole: async (up) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-porthole-h2-'));
    const c = certIn(dir);
    const cfg = join(dir, 'porthole.yaml');
    writeFileSync(cfg, `tls: { cert: ${c.cert}, key: ${c.key} }\napps:\n  - name: b\n    port: ${up.port}\n`);
    const p = start('porthole', process.execPath, [join(ROOT, 'dist/cli/main.js'), 'serve', '--listen', `127.0.0.1:${port}`, '--config', cfg, '--data', dir, '--log-format', 'json']);
    await waitPort(port);
    return { name: 'porthole', port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },

  nginx: async (up) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-h2-'));
    const c = certIn(dir);
    for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server 127.0.0.1:${up.port}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    # The default (1000) ends each connection after 1000 requests: h2load counts the rest as failed.
    keepalive_requests 1000000;
    ssl_certificate ${c.cert};
    ssl_certificate_key ${c.key};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection '';
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_buffering off;
    }
  }
}
`,
    );
    const p = start('nginx-h2', '/usr/sbin/nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;']);
    await waitPort(port);
    return { name: 'nginx', port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },

  haproxy: async (up) => {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'bench-haproxy-h2-'));
    const c = certIn(dir);
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:${port} ssl crt ${c.pem} alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https
  default_backend be
backend be
  server s1 127.0.0.1:${up.port}
`,
    );
    const p = start('haproxy-h2', '/usr/sbin/haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
    await waitPort(port);
    return { name: 'haproxy', port, pid: p.child.pid, path: '/b/', stop: async () => (await p.stop(), rmSync(dir, { recursive: true, force: true })) };
  },
};

/** Bridges (WebSocket → TCP) for the bridge workload. */
/** `porthole bridge` with the engine in force (native when the addon is built), or PORTHOLE_TUNNEL=js. */
async function portholeBridge(src, name, env) {
  const port = await freePort();
  const p = start('porthole bridge', process.execPath, [join(ROOT, 'dist/cli/main.js'), 'bridge', `127.0.0.1:${port}`, `127.0.0.1:${src.port}`], { env: { ...process.env, ...env } });
  await waitPort(port);
  return { name, port, pid: p.child.pid, path: '/', stop: p.stop };
}

export const BRIDGES = {
  porthole: (src) => portholeBridge(src, 'porthole', {}),
  'porthole-js': (src) => portholeBridge(src, 'porthole (JS bridge)', { PORTHOLE_TUNNEL: 'js' }),
  'porthole-nosplice': (src) => portholeBridge(src, 'porthole (no splice)', { PORTHOLE_SPLICE: '0' }),
  websockify: async (src) => {
    const port = await freePort();
    const p = start('websockify', '/usr/bin/websockify', [`127.0.0.1:${port}`, `127.0.0.1:${src.port}`]);
    await waitPort(port);
    return { name: 'websockify', port, pid: p.child.pid, path: '/', stop: p.stop };
  },
};

/** Installs what the benchmark needs and is missing (Debian packages as root, npm packages). */
export function ensureInstalled() {
  const need = [
    ['/usr/sbin/nginx', 'nginx-light'],
    ['/usr/sbin/haproxy', 'haproxy'],
    ['/usr/bin/wrk', 'wrk'],
    ['/usr/bin/websockify', 'websockify'],
    ['/usr/bin/h2load', 'nghttp2-client'],
    ['/usr/bin/openssl', 'openssl'],
    ['/usr/bin/redis-server', 'redis-server'],
    ['/usr/bin/gcc', 'gcc'],
    // SHA-1 and base64 for the C upstream's WebSocket handshakes (peers/c-upstream.c).
    ['/usr/include/openssl/sha.h', 'libssl-dev'],
  ].filter(([f]) => !existsSync(f));
  if (need.length && process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...need.map(([, p]) => p)], { stdio: 'inherit', env });
  }
  const still = need.filter(([f]) => !existsSync(f));
  if (still.length) throw new Error(`missing: ${still.map(([, p]) => p).join(' ')} (install with apt-get)`);
  if (!existsSync(join(ROOT, 'node_modules/http-proxy'))) execFileSync('npm', ['install', '--no-save', 'http-proxy@1'], { cwd: ROOT, stdio: 'inherit' });
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
}
