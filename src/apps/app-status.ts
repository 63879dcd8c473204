/** What the supervisor reports about one app (admin API, dashboard, gateway). */

/**
 * - `stopped`: no process (never started, stopped, or ended and not restarted).
 * - `starting`: the process runs, its ports do not answer yet.
 * - `running`: the process runs and is ready (ports answer / health_path is 2xx-3xx).
 * - `backoff`: it ended and will be restarted after a delay.
 * - `failed`: a crash loop (or an unusable `cwd`); nothing happens until an explicit start.
 * - `stopping`: SIGTERM sent to the group, waiting for it to go.
 */
export type AppState = 'stopped' | 'starting' | 'running' | 'backoff' | 'failed' | 'stopping';

export interface LastExit {
  code: number | null;
  signal: string | null;
  /** ISO 8601 time of the exit. */
  at: string;
}

export interface AppStatus {
  name: string;
  state: AppState;
  /** The process group leader (= the pgid); null when no process runs. */
  pid: number | null;
  ready: boolean;
  /** Automatic restarts (after a crash or, with `always`, an exit) since the app was registered. */
  restarts: number;
  last_exit: LastExit | null;
  /** ISO 8601 time the running process was started (uptime); null when none runs. */
  started_at: string | null;
  /** The port the app listens on: its own, or the one the supervisor allocated. */
  port?: number;
  ws_port?: number;
  /** Why the app is in this state, in words ("exited with code 1; restarting in 2s"). */
  message?: string;
  /** While starting (and after a readiness timeout): what the last readiness check saw (`port 9301 refused`). */
  last_probe?: string;
}

/** Stable codes of the errors the supervisor throws (plain Errors with a `code`). */
export const APP_UNKNOWN = 'PH_ERR_APP_UNKNOWN';
export const APP_NO_CMD = 'PH_ERR_APP_NO_CMD';
export const APP_SPAWN = 'PH_ERR_APP_SPAWN';

export function appError(code: string, message: string): Error & { code: string } {
  const err = new Error(message) as Error & { code: string };
  err.code = code;
  return err;
}
