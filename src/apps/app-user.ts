/**
 * The user an app runs as (`user` and `group` of the app, else the config's
 * `app_defaults`), issue 8, item 2b: a gateway running as root runs its apps
 * unprivileged, and the token (in the 0700 `private/` directory) is out of
 * their reach.
 *
 * Names are looked up with `getent`, so users from NSS (LDAP, systemd's
 * DynamicUser) work as well as /etc/passwd; a numeric id needs no entry.
 * The switch itself is done by `setpriv` (util-linux): real and effective
 * uid/gid, and the supplementary groups of the user (initgroups(3), as
 * `su` or systemd's `User=` do) — or none, for an id without a passwd entry.
 * Without setpriv, Node's spawn sets uid and gid and libuv clears the
 * supplementary groups.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { AppUserError } from '../errors.js';

/** `user` / `group` as the config gives them: a name or a numeric id. */
export type UserSpec = string | number;

/** Who an app runs as, resolved. */
export interface AppIdentity {
  uid: number;
  gid: number;
  /** The user's name (its id when it has no passwd entry). */
  name: string;
  home: string;
  /** The user has a passwd entry: its supplementary groups are set with initgroups(3). */
  inPasswd: boolean;
  /** Another uid or gid than the gateway's own: the spawn switches to it. */
  switches: boolean;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** One `getent DATABASE KEY` line split at ':', or undefined when there is none. */
function getent(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  // A minimal environment: a child of the gateway shows its environ in /proc too, and getent needs none of it.
  // Asynchronous: NSS may ask a directory server, and the event loop carries every request meanwhile.
  const env = { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' };
  return new Promise((resolve) => {
    execFile('getent', [database, key], { encoding: 'utf8', env, timeout: 5_000 }, (err, stdout) => {
      // exit 2: no such entry (or no getent at all: numeric ids still work)
      const line = err ? '' : stdout.split('\n')[0];
      resolve(line ? line.split(':') : undefined);
    });
  });
}

async function passwd(key: string): Promise<PasswdEntry | undefined> {
  const f = await getent('passwd', key);
  if (!f || f.length < 7) return undefined;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
}

const isId = (spec: UserSpec): boolean => typeof spec === 'number' || /^\d+$/.test(spec);

/**
 * Resolves an app's `user` and `group` (each falling back to the defaults).
 * Undefined when neither is set: the app runs as the gateway does.
 * Throws {@link AppUserError} for an unknown name, or when the gateway is
 * not root and would have to become someone else.
 */
export async function resolveAppUser(
  app: { name: string; user?: UserSpec; group?: UserSpec },
  defaults: { user?: UserSpec; group?: UserSpec } = {},
): Promise<AppIdentity | undefined> {
  const user = app.user ?? defaults.user;
  const group = app.group ?? defaults.group;
  if (user === undefined && group === undefined) return undefined;
  const myUid = process.getuid?.() ?? 0;
  const myGid = process.getgid?.() ?? 0;

  let identity: Omit<AppIdentity, 'switches'>;
  if (user === undefined) {
    const me = userInfo();
    identity = { uid: myUid, gid: myGid, name: me.username, home: me.homedir, inPasswd: true };
  } else {
    const entry = await passwd(String(user));
    if (entry) identity = { uid: entry.uid, gid: entry.gid, name: entry.name, home: entry.home, inPasswd: true };
    else if (isId(user)) identity = { uid: Number(user), gid: Number(user), name: String(user), home: '/', inPasswd: false };
    else throw new AppUserError(`${app.name}: user ${JSON.stringify(user)} does not exist on this machine`, { app: app.name });
  }
  if (group !== undefined) {
    const f = await getent('group', String(group));
    if (f && f.length >= 3) identity.gid = Number(f[2]);
    else if (isId(group)) identity.gid = Number(group);
    else throw new AppUserError(`${app.name}: group ${JSON.stringify(group)} does not exist on this machine`, { app: app.name });
  }
  const switches = identity.uid !== myUid || identity.gid !== myGid;
  if (switches && myUid !== 0) {
    const who = `uid ${identity.uid} (${identity.name}), gid ${identity.gid}`;
    throw new AppUserError(
      `${app.name}: the gateway runs as uid ${myUid}, gid ${myGid} and cannot run an app as ${who}: start the gateway as root, or leave out user/group (and app_defaults)`,
      { app: app.name },
    );
  }
  return { ...identity, switches };
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** How to spawn `/bin/sh -c cmd` as `identity`: the file, its arguments and extra spawn options. */
export function shellAs(cmd: string, identity: AppIdentity | undefined): { file: string; args: string[]; uid?: number; gid?: number } {
  if (!identity?.switches) return { file: '/bin/sh', args: ['-c', cmd] };
  if (!SETPRIV) return { file: '/bin/sh', args: ['-c', cmd], uid: identity.uid, gid: identity.gid };
  const groups = identity.inPasswd ? '--init-groups' : '--clear-groups';
  return { file: SETPRIV, args: [`--reuid=${identity.uid}`, `--regid=${identity.gid}`, groups, '--', '/bin/sh', '-c', cmd] };
}
