/**
 * What access control decided about a request it let through, read by the
 * header policy (gateway/headers.ts) when the request is sent upstream.
 */
import type { IncomingMessage } from 'node:http';

export interface Admission {
  /** Sent to the app as `X-Forwarded-User`. */
  user?: string;
  /** The login the request came with (its WebSockets are closed at logout). */
  family?: string;
  /** Drop the gateway's session cookie from `Cookie` (it authorizes every app: no app gets it). */
  stripCookie: boolean;
  /** Drop `Authorization`: the gateway consumed it (a bearer token of auth_tokens). */
  stripAuthorization: boolean;
  /** Client headers of these names (lower-case, `_` as `-`) are dropped, in either spelling: the auth service's answer stands for them. */
  replace: ReadonlySet<string>;
  /** Added to the upstream request (forward_auth's `response_headers`). */
  headers: readonly (readonly [string, string])[];
}

// Kept on the request itself: a WeakMap entry per request cost more (its set, and the
// collector's work on a table of short-lived keys) on every request and handshake.
const kAdmission = Symbol('porthole.admission');
type Admitted = IncomingMessage & { [kAdmission]?: Admission };

export function setAdmission(req: IncomingMessage, a: Admission): void {
  (req as Admitted)[kAdmission] = a;
}

export function admissionOf(req: IncomingMessage): Admission | undefined {
  return (req as Admitted)[kAdmission];
}
