/**
 * The environment an app's process gets. It starts CLEAN, not from the
 * gateway's own: the gateway holds secrets (PORTHOLE_TOKEN, cloud keys,
 * proxy credentials) that an app — often code an agent just wrote — must
 * never see. Only what a shell needs to behave normally is passed on.
 */
import { randomBytes } from 'node:crypto';

/**
 * Variables copied from the gateway's environment, plus every `LC_*`.
 *
 * Deliberately absent:
 * - `DISPLAY`, `XAUTHORITY`, `WAYLAND_DISPLAY`: an app that draws sets its own
 *   display in `env` (the VNC recipe uses `DISPLAY=:99` for its Xvfb); the
 *   gateway's would put windows on the operator's screen.
 * - `HTTP(S)_PROXY`, `NO_PROXY`: may carry credentials; set them in `env`.
 * - `SSH_AUTH_SOCK`, `*_TOKEN`, `*_KEY` and the like: secrets, by definition.
 */
export const ENV_ALLOWLIST: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TERM', 'TZ', 'TMPDIR'];

/**
 * The variable that marks every process of one run: `PORTHOLE_RUN=<marker>`,
 * a fresh random value per spawn ({@link newRunMarker}), recorded in the run
 * file. The environment is inherited by every descendant — also by the ones
 * that leave the app's process group: `setsid`, daemons (`websockify -D`,
 * `x11vnc -bg`, `tmux new -d`'s server), programs on a pty (xterm runs its
 * command in a new session). A stop and a crash recovery find them by it in
 * /proc/PID/environ (see process-group.ts) and stop them with the group.
 *
 * It is set last, so neither the app's `env` nor the gateway's own
 * environment can set, clear or forge it. Limits: a descendant that scrubs
 * its environment (`env -i`, `env -u PORTHOLE_RUN`, a daemon that execs with
 * a fresh one) or writes its process title over the environment block
 * (setproctitle-style, e.g. nginx, PostgreSQL) drops the mark; a process that
 * changes user (setuid) cannot be read; and work handed to a daemon that
 * already ran (a shared tmux server, systemd --user, D-Bus activation) was
 * never ours. Those survive a stop as before. It is a mark, not a security
 * boundary: apps that share a user could signal each other anyway.
 */
export const RUN_MARKER_VAR = 'PORTHOLE_RUN';

/** A fresh marker: 128 random bits, hex. Only markers of this shape are trusted from a run file. */
export function newRunMarker(): string {
  return randomBytes(16).toString('hex');
}

/** True for a value {@link newRunMarker} could have made. */
export function isRunMarker(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{32}$/.test(value);
}

/** Used when the gateway itself runs without PATH (e.g. started by a bare exec). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What the supervisor tells the app about where it lives. */
export interface AppPlacement {
  name: string;
  /** Where the gateway mounts the app (`/{name}` unless the app sets `prefix`). */
  prefix?: string;
  port?: number;
  ws_port?: number;
  env?: Readonly<Record<string, string>>;
  /** This run's marker ({@link newRunMarker}), exported as {@link RUN_MARKER_VAR}. */
  run: string;
  /** The identity of the user the app runs as (`user`): replaces the gateway's HOME, USER and LOGNAME. */
  user?: { HOME: string; USER: string; LOGNAME: string };
}

/**
 * Builds the child's environment, each layer overriding the one before:
 * the allowlisted gateway variables, then HOME, USER and LOGNAME of the
 * app's `user` (when it has one), then the app's `env`, then `PORT`,
 * `WS_PORT` (when set), `APP_NAME`, `BASE_PATH` and `PORTHOLE_RUN` — the
 * last ones win so an app's env cannot make it listen somewhere the gateway
 * does not forward to, nor take its processes out of (or put them into) a
 * run's stop.
 */
export function cleanEnv(base: NodeJS.ProcessEnv, app: AppPlacement): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined && (ENV_ALLOWLIST.includes(key) || key.startsWith('LC_'))) env[key] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  Object.assign(env, app.user ?? {});
  Object.assign(env, app.env ?? {});
  if (app.port !== undefined) env.PORT = String(app.port);
  if (app.ws_port !== undefined) env.WS_PORT = String(app.ws_port);
  env.APP_NAME = app.name;
  env.BASE_PATH = `${app.prefix ?? `/${app.name}`}/`;
  env[RUN_MARKER_VAR] = app.run;
  return env;
}
