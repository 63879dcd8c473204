/**
 * `porthole init TEMPLATE [DIR]` (seed 004's "generate-server"): writes a
 * small app that already works behind Porthole, with its porthole.yaml entry,
 * from a template in templates/.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_NAME, RESERVED_NAMES } from '../config/schema.js';
import { nearest } from '../config/schema-kit.js';
import { InitDirNotEmptyError, InitNameError, InitTemplateError, InitWriteError } from '../errors.js';
import { findTemplate, nextSteps, shellWord, TEMPLATES, type NextSteps, type Template } from './init-templates.js';

/** templates/ beside dist/ (and src/): shipped through package.json "files". */
export const TEMPLATES_DIR = fileURLToPath(new URL('../../templates/', import.meta.url));

/** Where x11vnc of the vnc template listens: the first free port from a random start in this range. */
const VNC_PORTS = { first: 5900, last: 5999 };

export interface InitOptions {
  template: string;
  /** Default: ./NAME. */
  dir?: string;
  /** Default: DIR's last part when it is a valid app name, else the template's name. */
  name?: string;
  /** Write into a directory that holds files (template files are overwritten, others are left). */
  force?: boolean;
  /** Resolves a relative DIR; default process.cwd(). */
  cwd?: string;
}

export interface InitResult {
  template: Template;
  name: string;
  /** Absolute. */
  dir: string;
  /** Written, relative to dir, sorted. */
  files: string[];
  /** The apps of its porthole.yaml. */
  apps: string[];
  /** The vnc template's x11vnc port. */
  vncPort?: number;
  next: NextSteps;
}

/** Why `name` cannot be an app name (or one of the template's apps), or undefined. */
export function nameProblem(template: Template, name: string): string | undefined {
  for (const app of template.apps(name)) {
    if (!APP_NAME.test(app)) {
      return app === name
        ? `"${name}" is not an app name: lowercase letters, digits and dashes, starting with a letter or digit, at most 63 (^[a-z0-9][a-z0-9-]{0,62}$)`
        : `"${name}" makes the app name "${app}", which is not one (at most 63 lowercase letters, digits and dashes): choose a shorter --name`;
    }
    if (RESERVED_NAMES.includes(app)) return `"${app}" is reserved for the gateway`;
  }
  return undefined;
}

/** Writes the template; throws the Init*Error of the failure, having written nothing when the inputs are wrong. */
export async function initApp(opts: InitOptions): Promise<InitResult> {
  const template = findTemplate(opts.template);
  if (!template) {
    const near = nearest(opts.template, TEMPLATES.map((t) => t.name));
    throw new InitTemplateError(`unknown template "${opts.template}"${near ? ` (did you mean ${near}?)` : ''}; templates: ${TEMPLATES.map((t) => t.name).join(', ')}`);
  }
  const fromDir = opts.dir !== undefined ? basename(resolve(opts.cwd ?? process.cwd(), opts.dir)) : undefined;
  const name = opts.name ?? (fromDir !== undefined && nameProblem(template, fromDir) === undefined ? fromDir : template.name);
  const problem = nameProblem(template, name);
  if (problem) throw new InitNameError(`--name: ${problem}`);
  const shown = opts.dir ?? name;
  const dir = resolve(opts.cwd ?? process.cwd(), shown);

  const existing = entriesOf(dir);
  if (existing.length && !opts.force) {
    const some = existing.slice(0, 3).join(', ') + (existing.length > 3 ? `, … (${existing.length} entries)` : '');
    throw new InitDirNotEmptyError(`${dir} is not empty (${some}): choose another DIR, or --force to write the template's files over it`);
  }

  const source = join(TEMPLATES_DIR, template.name);
  const vncPort = template.name === 'vnc' ? await freePort(VNC_PORTS.first, VNC_PORTS.last) : undefined;
  const porthole = portholeCommand(dirname(dir));
  const values: Record<string, string> = {
    NAME: name,
    PORTHOLE: porthole,
    // A YAML double-quoted scalar: JSON's string syntax is valid YAML, whatever the path holds.
    DIR: JSON.stringify(dir),
    VNC_PORT: String(vncPort ?? ''),
  };
  const files: string[] = [];
  for (const file of filesUnder(source)) {
    const text = readFileSync(join(source, file), 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (all, key: string) => values[key] ?? all);
    // npm leaves a package's .gitignore out of its tarball: the template's is "gitignore".
    const target = file === 'gitignore' ? '.gitignore' : file;
    write(join(dir, target), text);
    files.push(target);
  }
  files.sort();
  return { template, name, dir, files, apps: template.apps(name), vncPort, next: nextSteps(template, name, shown, porthole) };
}

/** This package's CLI, as npm links it (node_modules/.bin/porthole points here). */
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * How to run this `porthole` from `dir` in the printed steps: `npx porthole`
 * when npx finds this package's bin from there (the app is inside the
 * checkout or project that installed it), `porthole` when the one on PATH is
 * this one, else node and the CLI's path. Never a bare `npx porthole` that
 * npx would look up in the registry instead.
 */
export function portholeCommand(dir: string, path = process.env.PATH ?? ''): string {
  const cli = realOrNull(CLI);
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (cli && realOrNull(join(d, 'node_modules', '.bin', 'porthole')) === cli) return 'npx porthole';
    if (dirname(d) === d) break;
  }
  for (const entry of path.split(':').filter(Boolean)) {
    if (cli && realOrNull(join(entry, 'porthole')) === cli) return 'porthole';
  }
  return `node ${shellWord(cli ?? CLI)}`;
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

/** DIR's entries; none when it does not exist; a file in its place cannot be written into (a link to a directory can). */
function entriesOf(dir: string): string[] {
  let stat;
  try {
    stat = statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw writeError(dir, err);
  }
  if (!stat.isDirectory()) throw new InitWriteError(`cannot write into ${dir}: it is a file, not a directory`);
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    throw writeError(dir, err);
  }
}

/** The template's files, relative to its folder, folders first walked in order. */
function filesUnder(root: string, sub = ''): string[] {
  return readdirSync(join(root, sub), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? filesUnder(root, join(sub, e.name)) : [join(sub, e.name)]));
}

/**
 * Writes one file. A script (`#!` on its first line) is made executable
 * whatever mode the template file had: packing and unpacking the package
 * must not decide whether `./start.sh` runs.
 */
function write(file: string, text: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
    // With --force, a file already there is replaced, never written through: a symbolic
    // (or hard) link named server.js must not make init overwrite what it points to.
    const there = lstatSync(file, { throwIfNoEntry: false });
    if (there && !there.isDirectory()) unlinkSync(file);
    writeFileSync(file, text);
    chmodSync(file, text.startsWith('#!') ? 0o755 : 0o644);
  } catch (err) {
    throw writeError(file, err);
  }
}

function writeError(path: string, err: unknown): InitWriteError {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = { EACCES: 'permission denied', EPERM: 'not permitted', EROFS: 'read-only file system', ENOSPC: 'no space left on the device', ENOTDIR: 'a part of the path is a file, not a directory', EEXIST: 'a file is in the way', EISDIR: 'a directory is in the way' };
  return new InitWriteError(`cannot write ${path}: ${why[e.code ?? ''] ?? e.message} (${e.code ?? 'error'})`, { cause: err });
}

/** A port of [first, last] that 127.0.0.1 can bind now, trying from a random one so parallel runs rarely pick the same. */
async function freePort(first: number, last: number): Promise<number> {
  const span = last - first + 1;
  const start = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = first + ((start + i) % span);
    if (await canBind(port)) return port;
  }
  return first + start; // all taken: the person changes it in porthole.yaml (the README says where)
}

function canBind(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = net.createServer();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
  });
}
