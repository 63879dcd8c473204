/**
 * Readiness: when may the gateway send an app traffic? A live process is not
 * enough (Flask takes a second to bind; `start.sh` sleeps between services),
 * so the supervisor polls what the gateway will actually use: a TCP connect
 * to `port` and `ws_port`, or, with `health_path`, an HTTP GET that answers
 * 2xx/3xx — and, for a bridged app, a TCP connect to its bridge target (the
 * VNC server the app starts is what the bridge will dial).
 */
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ReadinessTarget {
  port?: number;
  ws_port?: number;
  health_path?: string;
  /** TCP targets that must accept too (`bridge`, `ws_bridge`). */
  tcp?: readonly { host: string; port: number }[];
}

/** One probe must not outlive the poll interval by much: a hung app is retried, not waited on. */
const PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 150;

/** True if something accepts a TCP connection on 127.0.0.1:port. */
export function tcpAnswers(port: number, timeoutMs = PROBE_TIMEOUT_MS, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True if GET http://127.0.0.1:port{path} answers 2xx or 3xx. */
export function httpAnswers(port: number, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    // agent: false — a pooled keep-alive socket would outlive the probe and hold the app.
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs, headers: { 'user-agent': 'porthole-readiness' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 400);
      req.destroy();
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

/** One readiness check of the app's ports (no ports at all counts as ready). */
export async function probeOnce(target: ReadinessTarget): Promise<boolean> {
  if (target.health_path !== undefined && target.port !== undefined) {
    if (!(await httpAnswers(target.port, target.health_path))) return false;
  } else {
    for (const port of [target.port, target.ws_port]) {
      if (port !== undefined && !(await tcpAnswers(port))) return false;
    }
  }
  return probeTcp(target.tcp);
}

async function probeTcp(targets: ReadinessTarget['tcp']): Promise<boolean> {
  for (const t of targets ?? []) if (!(await tcpAnswers(t.port, PROBE_TIMEOUT_MS, t.host))) return false;
  return true;
}

/**
 * Polls {@link probeOnce} until it succeeds (true), `timeoutMs` passes
 * (false) or `signal` aborts (false: the process exited or is being stopped).
 */
export async function waitUntilReady(target: ReadinessTarget, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!signal.aborted) {
    if (await probeOnce(target)) return !signal.aborted;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    try {
      await sleep(Math.min(POLL_MS, left), undefined, { signal });
    } catch {
      return false;
    }
  }
  return false;
}
