/**
 * The environment an app's process gets. It starts CLEAN, not from the
 * gateway's own: the gateway holds secrets (PORTHOLE_TOKEN, cloud keys,
 * proxy credentials) that an app — often code an agent just wrote — must
 * never see. Only what a shell needs to behave normally is passed on.
 */

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
}

/**
 * Builds the child's environment, each layer overriding the one before:
 * the allowlisted gateway variables, then the app's `env`, then `PORT`,
 * `WS_PORT` (when set), `APP_NAME` and `BASE_PATH` — the last ones win so an
 * app's env cannot make it listen somewhere the gateway does not forward to.
 */
export function cleanEnv(base: NodeJS.ProcessEnv, app: AppPlacement): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined && (ENV_ALLOWLIST.includes(key) || key.startsWith('LC_'))) env[key] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  Object.assign(env, app.env ?? {});
  if (app.port !== undefined) env.PORT = String(app.port);
  if (app.ws_port !== undefined) env.WS_PORT = String(app.ws_port);
  env.APP_NAME = app.name;
  env.BASE_PATH = `${app.prefix ?? `/${app.name}`}/`;
  return env;
}
