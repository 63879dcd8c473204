/**
 * The admin token: generated at first start into the data directory's
 * `private/` (mode 0700, see server/data-dir.ts), readable by its owner only
 * (mode 0600), shown once.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function tokenFile(dataDir: string): string {
  return join(dataDir, 'private', 'token');
}

/** Where a gateway from before `private/` kept it (read by CLI clients of such a gateway). */
function legacyTokenFile(dataDir: string): string {
  return join(dataDir, 'token');
}

/** Reads the token, creating it when missing. `created` tells the caller to show it once. */
export function ensureToken(dataDir: string): { token: string; created: boolean; file: string } {
  const file = tokenFile(dataDir);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token) {
      chmodSync(file, 0o600); // tighten a file someone loosened
      return { token, created: false, file };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(join(dataDir, 'private'), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  // 'wx': never overwrite a token another process created in between.
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return ensureToken(dataDir);
    throw err;
  }
  return { token, created: true, file };
}

/** Reads an existing token (for CLI clients); undefined when there is none. */
export function readToken(dataDir: string): string | undefined {
  for (const file of [tokenFile(dataDir), legacyTokenFile(dataDir)]) {
    try {
      const token = readFileSync(file, 'utf8').trim();
      if (token) return token;
    } catch {
      // Try the next place.
    }
  }
  return undefined;
}

export function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
