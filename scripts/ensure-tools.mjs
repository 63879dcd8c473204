// Installs the Debian packages the tests drive as real peers, when missing.
// As root it runs apt-get; in CI (CI=true) a tool that is still missing fails
// the run rather than letting a suite skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What each test peer needs: a file that proves it is installed, and the package that provides it. */
export const TOOLS = [
  { check: '/usr/lib/python3/dist-packages/websockets/__init__.py', pkg: 'python3-websockets' },
  { check: '/usr/lib/python3/dist-packages/tornado/__init__.py', pkg: 'python3-tornado' },
  { check: '/usr/lib/python3/dist-packages/flask/__init__.py', pkg: 'python3-flask' },
  { check: '/usr/sbin/nginx', pkg: 'nginx-light' },
  { check: '/usr/bin/chromium', pkg: 'chromium' },
  { check: '/usr/bin/Xvfb', pkg: 'xvfb' },
  { check: '/usr/bin/x11vnc', pkg: 'x11vnc' },
  { check: '/usr/bin/websockify', pkg: 'websockify' },
  { check: '/usr/share/novnc/core/rfb.js', pkg: 'novnc' },
  { check: '/usr/lib/python3/dist-packages/notebook/__init__.py', pkg: 'jupyter-notebook' },
  { check: '/usr/bin/xterm', pkg: 'xterm' },
  { check: '/usr/bin/openssl', pkg: 'openssl' },
  { check: '/usr/sbin/haproxy', pkg: 'haproxy' },
  { check: '/usr/bin/wrk', pkg: 'wrk' },
  { check: '/usr/bin/tmux', pkg: 'tmux' },
  { check: '/usr/bin/setpriv', pkg: 'util-linux' },
  { check: '/usr/bin/xauth', pkg: 'xauth' },
  { check: '/usr/bin/websocketd', pkg: 'websocketd' },
  { check: '/usr/bin/prometheus', pkg: 'prometheus' },
  { check: '/usr/bin/certutil', pkg: 'libnss3-tools' },
  { check: '/usr/bin/h2load', pkg: 'nghttp2-client' },
  { check: '/usr/bin/redis-server', pkg: 'redis-server' },
  { check: '/usr/sbin/ip', pkg: 'iproute2' },
  // The benchmark's C peers, built by test/bench (bench/peers/c-upstream.c links libcrypto for the WebSocket accept key).
  { check: '/usr/bin/gcc', pkg: 'gcc' },
  { check: '/usr/include/openssl/sha.h', pkg: 'libssl-dev' },
  // The native addon's fuzz targets (native/fuzz/, test/reliability/native-fuzz.test.ts): clang with libFuzzer and the sanitizers.
  { check: '/usr/bin/clang', pkg: 'clang' },
  { check: '/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a', pkg: 'libclang-rt-14-dev' },
  // websockify's TokenRedis plugin imports both (test/bridge/bridge-token-redis.test.ts)
  { check: '/usr/lib/python3/dist-packages/redis/__init__.py', pkg: 'python3-redis' },
  { check: '/usr/lib/python3/dist-packages/simplejson/__init__.py', pkg: 'python3-simplejson' },
];

export function ensureTools(tools = TOOLS) {
  const missing = tools.filter((t) => !existsSync(t.check));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((t) => t.pkg))];
  const root = process.getuid?.() === 0;
  if (root) {
    console.error(`installing test peers: ${pkgs.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  }
  const still = tools.filter((t) => !existsSync(t.check));
  if (still.length) {
    const msg = `missing test peers: ${[...new Set(still.map((t) => t.pkg))].join(' ')} (install them with apt-get)`;
    if (process.env.CI) {
      console.error(msg);
      process.exit(1);
    }
    console.error(`warning: ${msg}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) ensureTools();
