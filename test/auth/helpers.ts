/**
 * Shared by the access-control tests: a fast password hash (scrypt with a
 * small N: the format is the same, only the cost differs) and a form POST.
 */
import { hashPassword } from '../../src/auth/password.js';
import { request, type Reply } from '../helpers/http.js';

let cached: Promise<string> | undefined;
/** The hash of "correct horse" (N=1024, for speed). */
export function aliceHash(): Promise<string> {
  return (cached ??= hashPassword('correct horse', { n: 1024 }));
}

export async function users(admin = false) {
  return [{ name: 'alice', password_hash: await aliceHash(), admin }];
}

/** POST /_porthole/auth/login as a form (Host may be given to act as another name). */
export function postLogin(base: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Reply> {
  const body = new URLSearchParams(fields).toString();
  return request(`${base}/_porthole/auth/login`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(Buffer.byteLength(body)), ...headers } });
}

/** `name=value` of the Set-Cookie that sets `name` (undefined when none does). */
export function cookieOf(reply: Reply, name = 'porthole_auth'): string | undefined {
  const set = reply.headers['set-cookie'] ?? [];
  const line = set.find((c) => c.startsWith(`${name}=`));
  return line?.split(';')[0];
}
