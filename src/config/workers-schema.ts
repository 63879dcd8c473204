/**
 * `workers: 1 | N | auto` (docs/workers.md): how many processes share the listening port.
 * Its value, and what a config with more than one worker may not use yet — refused at
 * load with a message that names it, rather than half working in some processes.
 */
import { availableParallelism } from 'node:os';
import * as k from './schema-kit.js';

/** More processes than this on one port is a typo, not a plan (and each costs ~50 MB). */
export const MAX_WORKERS = 64;

export type WorkersSetting = number | 'auto';

export const workersSchema = (): k.Schema<WorkersSetting> => {
  const expects = `an integer from 1 to ${MAX_WORKERS}, or "auto" (one per core)`;
  return {
    expects,
    parse(v, at, issues) {
      if (v === 'auto') return 'auto';
      if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_WORKERS) return v;
      issues.push(`${at}: expected ${expects}, got ${typeof v === 'string' ? k.quote(v) : v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : String(v)}`);
      return undefined;
    },
  };
};

/** The number of processes a setting means on this machine (`auto`: one per core the process may use). */
export function workerCount(setting: WorkersSetting): number {
  return setting === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : setting;
}

interface WorkersView {
  workers: WorkersSetting;
  tls?: unknown;
  cluster?: unknown;
  users: readonly unknown[];
  auth?: { mode: string };
  apps: readonly { auth?: { mode: string }; stdio?: string }[];
}

/**
 * What does not work across worker processes yet. Each is state that lives in one process:
 * login and token sessions (a cookie one worker issued is unknown to the next), a stdio
 * app's processes and its log (the supervisor is the primary's), a cluster node's peer
 * listener and store subscription, and the TLS listener's certificate renewal and HTTP/2.
 */
export function workerProblems(cfg: WorkersView): string[] {
  if (cfg.workers === 1) return [];
  const at = `workers: ${cfg.workers}`;
  const issues: string[] = [];
  if (cfg.tls !== undefined) issues.push(`${at}: not supported with tls yet (run one process, or terminate TLS in front of porthole)`);
  if (cfg.cluster !== undefined) issues.push(`${at}: not supported with cluster yet (a cluster node runs one process)`);
  if (cfg.auth?.mode === 'login' || cfg.auth?.mode === 'token' || cfg.users.length > 0) {
    issues.push(`${at}: not supported with auth: login or token yet (their sessions live in one process); use auth: { forward_auth: URL } or one process`);
  }
  cfg.apps.forEach((app, i) => {
    if (app.stdio !== undefined) issues.push(`apps[${i}].stdio: not supported with ${at} yet (a stdio app's processes and log belong to one process)`);
    if (app.auth?.mode === 'login' || app.auth?.mode === 'token') issues.push(`apps[${i}].auth: ${app.auth.mode} is not supported with ${at} yet (its sessions live in one process)`);
  });
  return issues;
}
