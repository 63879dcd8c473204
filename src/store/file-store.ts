/**
 * The embedded registry store: every registered app in one JSON file,
 * `{dataDir}/apps.json` = `{ "version": 1, "apps": { name: app } }`.
 *
 * The design promise is "what was acknowledged survives `kill -9`", so a
 * write resolves only once it is durable: the whole file goes to a temp file
 * in the same directory, which is fsynced, renamed over the target (atomic on
 * POSIX), and then the directory is fsynced so the rename itself is on disk.
 * A reader therefore sees either the old file or the new one, never half.
 */
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One app as stored: the raw JSON object (the fields of `AppConfig`). The
 * store does not validate it; the config schema does that on the way in.
 */
export interface StoredApp {
  name: string;
  [field: string]: unknown;
}

/** Persistence of the app registry behind one interface (file store now, redis later). */
export interface AppStore {
  /** Every stored app. A store that was never written loads as empty. */
  load(): Promise<StoredApp[]>;
  /** Adds or replaces the app named `app.name`; resolves once that is durable. */
  put(app: StoredApp): Promise<void>;
  /** Forgets the app (no error if it is unknown); resolves once that is durable. */
  delete(name: string): Promise<void>;
}

/** Stable code on the Error thrown when `apps.json` cannot be read back. */
export const STORE_CORRUPT = 'PH_ERR_STORE_CORRUPT';

const FILE = 'apps.json';
const VERSION = 1;

interface StoreFile {
  version: typeof VERSION;
  apps: Record<string, StoredApp>;
}

/** The file-backed {@link AppStore}: one JSON file, atomic durable writes, serialized. */
export class FileStore implements AppStore {
  readonly path: string;
  readonly #dir: string;
  /** The registry as last written (or read); undefined until first loaded. */
  #apps: Map<string, StoredApp> | undefined;
  /** Every read-modify-write goes through this chain, so concurrent puts never lose each other. */
  #queue: Promise<unknown> = Promise.resolve();
  #tmpSeq = 0;

  constructor(dataDir: string) {
    this.#dir = dataDir;
    this.path = join(dataDir, FILE);
  }

  load(): Promise<StoredApp[]> {
    return this.#enqueue(async () => {
      this.#apps = await this.#read();
      await this.#removeStaleTemps();
      return [...this.#apps.values()];
    });
  }

  put(app: StoredApp): Promise<void> {
    if (!app || typeof app.name !== 'string' || !app.name) {
      return Promise.reject(new TypeError('FileStore.put: the app needs a string "name"'));
    }
    let copy: StoredApp;
    try {
      // Copy now: a caller mutating its object after put() must not change what is written.
      copy = JSON.parse(JSON.stringify(app)) as StoredApp;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#update((apps) => apps.set(copy.name, copy));
  }

  delete(name: string): Promise<void> {
    return this.#update((apps) => apps.delete(name));
  }

  #update(change: (apps: Map<string, StoredApp>) => void): Promise<void> {
    return this.#enqueue(async () => {
      // A put before load() must not clobber what is on disk (nor a corrupt file).
      const current = this.#apps ?? (await this.#read());
      const next = new Map(current);
      change(next);
      await this.#write(next);
      // Only a write that reached the disk changes what we believe is stored.
      this.#apps = next;
    });
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #read(): Promise<Map<string, StoredApp>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw corrupt(this.path, `it is not valid JSON (${(err as Error).message})`);
    }
    const file = data as Partial<StoreFile> | null;
    if (!file || typeof file !== 'object' || Array.isArray(file)) throw corrupt(this.path, 'expected a JSON object');
    if (file.version !== VERSION) throw corrupt(this.path, `unknown version ${JSON.stringify(file.version)} (this Porthole reads version ${VERSION})`);
    if (!file.apps || typeof file.apps !== 'object' || Array.isArray(file.apps)) throw corrupt(this.path, '"apps" must be an object');
    const apps = new Map<string, StoredApp>();
    for (const [name, app] of Object.entries(file.apps)) {
      if (!app || typeof app !== 'object' || Array.isArray(app) || app.name !== name) {
        throw corrupt(this.path, `apps.${name} must be an object whose "name" is ${JSON.stringify(name)}`);
      }
      apps.set(name, app);
    }
    return apps;
  }

  async #write(apps: Map<string, StoredApp>): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    const body: StoreFile = { version: VERSION, apps: Object.fromEntries(apps) };
    const tmp = join(this.#dir, `${FILE}.${process.pid}.${++this.#tmpSeq}.tmp`);
    // 0600: apps carry `env`, which may hold the apps' own secrets.
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
      await fh.sync();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    // Without this the rename may still be only in memory when the machine dies.
    const dir = await open(this.#dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** Temp files left by a writer that was killed mid-write (its pid is gone). */
  async #removeStaleTemps(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return;
    }
    const pattern = new RegExp(`^${FILE.replace('.', '\\.')}\\.(\\d+)\\.\\d+\\.tmp$`);
    for (const name of names) {
      const pid = Number(pattern.exec(name)?.[1]);
      if (pid && pid !== process.pid && !processExists(pid)) await rm(join(this.#dir, name), { force: true });
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function corrupt(path: string, why: string): Error {
  const err = new Error(`${path} is corrupt: ${why}. Fix or move the file away; Porthole does not overwrite it.`) as Error & { code: string };
  err.code = STORE_CORRUPT;
  return err;
}
