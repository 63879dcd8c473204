/**
 * Password hashes for `users` (made by `porthole passwd`): scrypt from Node's
 * own crypto (RFC 7914), its parameters and salt in the string so they can
 * be raised later without breaking old hashes:
 * `scrypt$N$r$p$SALT$HASH` (base64url).
 */
import { randomBytes, scrypt, timingSafeEqual, createHash } from 'node:crypto';
import { PASSWORD_HASH } from '../config/auth-schema.js';

/**
 * One of OWASP's equivalent scrypt settings (N=2^15, r=8, p=3): 32 MiB per hash rather
 * than the 128 MiB of N=2^17, p=1 — a few logins at once (libuv runs four) must not
 * cost the gateway half a gigabyte.
 */
const N = 32768;
const R = 8;
const P = 3;
const KEY_LEN = 32;
/** Node refuses N·r·128 above its default 32 MiB unless told. */
const maxmem = (n: number, r: number) => 256 * n * r;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((ok, fail) => scrypt(password.normalize('NFC'), salt, KEY_LEN, { N: n, r, p, maxmem: maxmem(n, r) }, (err, key) => (err ? fail(err) : ok(key))));
}

export async function hashPassword(password: string, params: { n?: number } = {}): Promise<string> {
  const n = params.n ?? N;
  const salt = randomBytes(16);
  const key = await derive(password, salt, n, R, P);
  return `scrypt$${n}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** True when `password` matches `hash`; compared in constant time. A malformed hash matches nothing. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  if (!PASSWORD_HASH.test(hash)) return false;
  const [, n, r, p, salt, key] = hash.split('$');
  const want = Buffer.from(key, 'base64url');
  // Bounds keep a hand-edited hash from asking for gigabytes.
  if (Number(n) > 2 ** 18 || Number(r) > 32 || Number(p) > 16 || (Number(n) & (Number(n) - 1)) !== 0) return false;
  let got: Buffer;
  try {
    got = await derive(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  } catch {
    return false;
  }
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A hash to compare against when the user is unknown, so that an unknown name costs as long as a wrong password. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  return (decoy ??= hashPassword(randomBytes(16).toString('hex')));
}

/** A token of `auth_tokens`: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What `auth_tokens[].sha256` holds for a token: tokens are long and random, so a fast hash suffices. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
