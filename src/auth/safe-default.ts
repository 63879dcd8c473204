/**
 * The safe default (issue 10, section 3): a gateway reachable from other
 * machines does not start with its apps open to anyone by accident. On an
 * address other than loopback the config must say `auth`, even if only
 * `auth: none`; on loopback nothing changes.
 */
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { AuthUnsetError } from '../errors.js';
import { emit } from '../events.js';
import { isLoopbackAddress } from '../gateway/host-header.js';

/** True for a listen host only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackListen(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  // An address, not a name that merely starts like one (`127.example.com` may resolve anywhere).
  return h === 'localhost' || (isIP(h) !== 0 && isLoopbackAddress(h));
}

/** Throws AuthUnsetError (and emits it) when `host` is not loopback and the config has no `auth`. */
export function checkAuthConfigured(config: Pick<Config, 'auth'>, host: string): void {
  if (config.auth !== undefined || isLoopbackListen(host)) return;
  const err = new AuthUnsetError(
    `listening on ${host.includes(':') ? `[${host}]` : host} (not loopback) lets every machine that reaches it into every app: set "auth: login" (users from "porthole passwd"; see docs/auth.md), or "auth: none" to say the apps are meant to be open`,
  );
  emit('error', { code: err.code, message: err.message });
  throw err;
}
