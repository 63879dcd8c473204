/**
 * Installing the local CA (local-ca.ts) where programs of this machine look
 * for trusted roots: Debian's system store (`/usr/local/share/ca-certificates`
 * and `update-ca-certificates`, read by curl, Python, Node with
 * --use-openssl-ca…) and an NSS database (`~/.pki/nssdb`, read by Chromium
 * on Linux), through `certutil` from `libnss3-tools`. Each step reports
 * exactly what it did, or why it could not.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { LocalCa } from './local-ca.js';

/** Debian's directory for local roots (update-ca-certificates(8)). */
export const SYSTEM_CA_DIR = '/usr/local/share/ca-certificates';

export interface TrustStep {
  /** `system store` or `NSS database DIR`. */
  target: string;
  /** `installed`, `present` (already there), `failed`. */
  result: 'installed' | 'present' | 'failed';
  /** What was done, or why it could not be, in a sentence to print. */
  message: string;
}

/** A program on PATH (or in the sbin directories a non-root PATH lacks), else undefined. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** A file name update-ca-certificates takes (`.crt`, PEM), distinct per CA. */
function systemFileName(ca: LocalCa): string {
  return `porthole-local-ca-${ca.fingerprint.replace(/:/g, '').slice(0, 16).toLowerCase()}.crt`;
}

/**
 * Copies the CA into `dir` (default: Debian's) and, for Debian's own
 * directory, runs update-ca-certificates. Another directory is only copied
 * into (tests, images built elsewhere): the command would rebuild this
 * machine's store from Debian's directories, not from it.
 */
export function installSystem(ca: LocalCa, dir = SYSTEM_CA_DIR): TrustStep {
  const target = dir === SYSTEM_CA_DIR ? 'system store' : `CA directory ${dir}`;
  const file = join(dir, systemFileName(ca));
  const isSystem = dir === SYSTEM_CA_DIR;
  const update = isSystem ? findProgram('update-ca-certificates') : undefined;
  if (isSystem && !update) return { target, result: 'failed', message: `update-ca-certificates not found: install Debian's ca-certificates package (apt-get install ca-certificates), then run porthole trust again` };
  const present = existsSync(file) && readFileSync(file, 'utf8') === ca.certPem;
  if (!present) {
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, ca.certPem, { mode: 0o644 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const hint = e.code === 'EACCES' || e.code === 'EPERM' ? ' (it takes root: sudo porthole trust)' : '';
      return { target, result: 'failed', message: `could not copy the CA to ${file}: ${e.code ?? e.message}${hint}` };
    }
  }
  if (!isSystem) return { target, result: present ? 'present' : 'installed', message: `${present ? 'already in' : 'copied to'} ${file} (update-ca-certificates not run: ${dir} is not ${SYSTEM_CA_DIR})` };
  if (present) return { target, result: 'present', message: `already in ${file} (update-ca-certificates not run again)` };
  const run = spawnSync(update!, [], { encoding: 'utf8' });
  if (run.status !== 0) return { target, result: 'failed', message: `copied to ${file}, but update-ca-certificates failed (exit ${run.status ?? run.signal}): ${(run.stderr || run.stdout).trim().split('\n').slice(-1)[0] ?? ''}` };
  const added = /(\d+) added/.exec(run.stdout)?.[1];
  return { target, result: 'installed', message: `copied to ${file} and ran update-ca-certificates${added ? ` (${added} added)` : ''}: /etc/ssl/certs now trusts it` };
}

/**
 * Adds the CA to the NSS database in `dbDir` (made, with no password, when
 * there is none) as trusted to issue server certificates (`-t C,,`).
 * Chromium reads `~/.pki/nssdb` when it starts.
 */
export function installNss(ca: LocalCa, dbDir: string): TrustStep {
  const target = `NSS database ${dbDir}`;
  const certutil = findProgram('certutil');
  if (!certutil) return { target, result: 'failed', message: 'certutil not found: install it (Debian: apt-get install libnss3-tools), then run porthole trust again' };
  const db = `sql:${dbDir}`;
  let created = false;
  if (!existsSync(join(dbDir, 'cert9.db'))) {
    try {
      mkdirSync(dbDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      return { target, result: 'failed', message: `could not create ${dbDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
    const init = spawnSync(certutil, ['-N', '-d', db, '--empty-password'], { encoding: 'utf8' });
    if (init.status !== 0) return { target, result: 'failed', message: `certutil -N could not create the database: ${(init.stderr || init.stdout).trim()}` };
    created = true;
  }
  const listed = spawnSync(certutil, ['-L', '-d', db, '-n', ca.name, '-a'], { encoding: 'utf8' });
  if (listed.status === 0 && normalisePem(listed.stdout) === normalisePem(ca.certPem)) {
    return { target, result: 'present', message: `already trusted there as "${ca.name}"` };
  }
  const add = spawnSync(certutil, ['-A', '-d', db, '-t', 'C,,', '-n', ca.name, '-i', ca.certFile], { encoding: 'utf8' });
  if (add.status !== 0) return { target, result: 'failed', message: `certutil -A failed: ${(add.stderr || add.stdout).trim()}` };
  return {
    target,
    result: 'installed',
    message: `${created ? 'created the database and ' : ''}added "${ca.name}" (certutil -A -t C,,: trusted to identify servers); Chromium started from now on trusts it`,
  };
}

function normalisePem(pem: string): string {
  return pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
}
