/**
 * The data directory's layout (issue 8, item 2a):
 *
 *     DATA/            0711  others may pass through, not list
 *       private/       0700  token, apps.json, run/, logs/: the gateway's alone
 *       apps/          0711  the default cwd of each app: apps/{name}/
 *
 * An app's default cwd used to be DATA/apps/{name}, two levels below the
 * token (`cat ../../token`). The gateway's state now sits in a directory of
 * its own, mode 0700, so an app that runs as another user (`user`,
 * `app_defaults`) can reach its own directory but nothing of the gateway's.
 * An app that runs as the gateway's own user can still read it: file modes
 * do not separate a user from itself (see docs/security.md).
 *
 * A data dir of an older gateway is migrated in place at start-up: its
 * `token`, `apps.json`, `run/` and `logs/` move into `private/`.
 */
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface DataLayout {
  dataDir: string;
  /** The gateway's state: token, registry, run records, app logs. Mode 0700. */
  privateDir: string;
  /** Where apps without `cwd` get their directory: `{appsDir}/{name}`. */
  appsDir: string;
}

/** What lived at the top of the data dir before `private/` existed. */
const LEGACY_ENTRIES = ['token', 'apps.json', 'run', 'logs'] as const;

/** The layout of `dataDir`, without touching the disk. */
export function dataLayout(dataDir: string): DataLayout {
  return { dataDir, privateDir: join(dataDir, 'private'), appsDir: join(dataDir, 'apps') };
}

/**
 * Creates (or repairs) the layout and migrates an older one; returns it.
 * `private/` is set to 0700 also when it existed (a private dir someone
 * opened up is closed again); the data dir itself is made 0711 when it is
 * new or has the 0700 of an older version.
 */
export function prepareDataDir(dataDir: string): DataLayout {
  const layout = dataLayout(dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  // Older versions made it 0700, which keeps apps of another user out of
  // their own directory; any other mode was chosen by someone: left alone.
  const top = statSync(dataDir);
  if (top.uid === process.getuid?.() && (top.mode & 0o777) === 0o700) chmodSync(dataDir, 0o711);
  mkdirSync(layout.privateDir, { recursive: true, mode: 0o700 });
  ownDir(layout.privateDir, 0o700);
  mkdirSync(layout.appsDir, { recursive: true, mode: 0o711 });
  for (const entry of LEGACY_ENTRIES) {
    const from = join(dataDir, entry);
    if (!existsSync(from)) continue;
    const to = join(layout.privateDir, entry);
    if (!existsSync(to)) renameSync(from, to);
    // Both exist (an older gateway ran on the data dir after an upgrade): the
    // private one wins; a token is never left where apps used to find it.
    else if (entry === 'token') rmSync(from, { force: true });
  }
  return layout;
}

function ownDir(dir: string, mode: number): void {
  const st = statSync(dir);
  if (typeof process.getuid === 'function' && st.uid === process.getuid() && (st.mode & 0o777) !== mode) chmodSync(dir, mode);
}
