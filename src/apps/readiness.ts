/**
 * Readiness: when may the gateway send an app traffic? A live process is not
 * enough (Flask takes a second to bind; `start.sh` sleeps between services),
 * so the supervisor polls what the gateway will actually use: a TCP connect
 * to `port` and `ws_port`, or, with `health_path`, an HTTP GET that answers
 * 2xx/3xx — and, for a bridged app, a TCP connect to its bridge target (the
 * VNC server the app starts is what the bridge will dial).
 *
 * Every check says what it saw (`port 9301 refused`, `health_path
 * /api/status answered 404`): "not ready after 60s" alone hid that the app
 * was up and its health check was wrong (issue 8).
 */
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReadinessTarget {
  port?: number;
  ws_port?: number;
  health_path?: string;
  /** TCP targets that must accept too (`bridge`, `ws_bridge`, an external app's `url`). */
  tcp?: readonly { host: string; port: number }[];
  /** A unix socket that must accept (an external app's `socket`). */
  socket?: string;
}

/** The result of one check: ready, or why not in words. */
export type Probe = { ok: true } | { ok: false; cause: string };

/** One probe must not outlive the poll interval by much: a hung app is retried, not waited on. */
const PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 150;
const READY: Probe = { ok: true };

const fail = (cause: string): Probe => ({ ok: false, cause });

function connectFailure(label: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return `${label} refused`;
  return `${label}: ${err.code ?? err.message}`;
}

/** Connects to 127.0.0.1:port (or host:port, or a unix socket path) once. */
export function tcpCheck(port: number, timeoutMs = PROBE_TIMEOUT_MS, host = '127.0.0.1', path?: string): Promise<Probe> {
  const label = path !== undefined ? `socket ${path}` : host === '127.0.0.1' ? `port ${port}` : `${host}:${port}`;
  return new Promise((resolve) => {
    const socket = path !== undefined ? net.connect({ path }) : net.connect({ port, host });
    const done = (p: Probe) => {
      socket.destroy();
      resolve(p);
    };
    socket.setTimeout(timeoutMs, () => done(fail(`${label} timed out after ${timeoutMs} ms`)));
    socket.once('connect', () => done(READY));
    socket.once('error', (err) => done(fail(connectFailure(label, err))));
  });
}

/** True if something accepts a TCP connection on 127.0.0.1:port. */
export async function tcpAnswers(port: number, timeoutMs = PROBE_TIMEOUT_MS, host = '127.0.0.1'): Promise<boolean> {
  return (await tcpCheck(port, timeoutMs, host)).ok;
}

/** GET http://127.0.0.1:port{path} once: ready on 2xx or 3xx. */
export function httpCheck(port: number, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe> {
  const label = `health_path ${path}`;
  return new Promise((resolve) => {
    let settled = false;
    const done = (p: Probe) => {
      if (settled) return;
      settled = true;
      resolve(p);
    };
    // agent: false — a pooled keep-alive socket would outlive the probe and hold the app.
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs, headers: { 'user-agent': 'porthole-readiness' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      done(status >= 200 && status < 400 ? READY : fail(`${label} answered ${status}`));
      req.destroy();
    });
    req.once('timeout', () => {
      done(fail(`${label} timed out after ${timeoutMs} ms`));
      req.destroy();
    });
    req.once('error', (err: NodeJS.ErrnoException) => done(fail(`${label}: ${connectFailure(`port ${port}`, err)}`)));
  });
}

/** True if GET http://127.0.0.1:port{path} answers 2xx or 3xx. */
export async function httpAnswers(port: number, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return (await httpCheck(port, path, timeoutMs)).ok;
}

/** One readiness check of the app's ports (no ports at all counts as ready); the first failure is the cause. */
export async function probeOnce(target: ReadinessTarget, timeoutMs = PROBE_TIMEOUT_MS): Promise<Probe> {
  if (target.health_path !== undefined && target.port !== undefined) {
    const p = await httpCheck(target.port, target.health_path, timeoutMs);
    if (!p.ok) return p;
  } else {
    for (const port of [target.port, target.ws_port]) {
      if (port === undefined) continue;
      const p = await tcpCheck(port, timeoutMs);
      if (!p.ok) return p;
    }
  }
  if (target.socket !== undefined) {
    const p = await tcpCheck(0, timeoutMs, undefined, target.socket);
    if (!p.ok) return p;
  }
  for (const t of target.tcp ?? []) {
    const p = await tcpCheck(t.port, timeoutMs, t.host);
    if (!p.ok) return p;
  }
  return READY;
}

/**
 * Polls {@link probeOnce} until it succeeds, `timeoutMs` passes or `signal`
 * aborts (the process exited or is being stopped); resolves with the last
 * result. `onProbe` sees every result, for a status that shows the cause
 * while the app is still starting.
 */
export async function waitUntilReady(target: ReadinessTarget, timeoutMs: number, signal: AbortSignal, onProbe?: (p: Probe) => void): Promise<Probe> {
  const deadline = Date.now() + timeoutMs;
  let last: Probe = fail('not checked yet');
  while (!signal.aborted) {
    last = await probeOnce(target);
    onProbe?.(last);
    if (last.ok) return signal.aborted ? fail('stopped') : last;
    const left = deadline - Date.now();
    if (left <= 0) return last;
    try {
      await sleep(Math.min(POLL_MS, left), undefined, { signal });
    } catch {
      return fail('stopped');
    }
  }
  return last.ok ? fail('stopped') : last;
}
