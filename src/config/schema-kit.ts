/**
 * A small schema toolkit: one declaration gives both the TypeScript type
 * (`Infer<typeof schema>`) and the runtime check, so defaults and validation
 * live in one place. Errors name the key path (`apps[0].ws_port`), and an
 * unknown key gets the nearest valid key as a hint.
 */

export interface Schema<T> {
  /** Parses `value`; pushes `path: reason` lines into `issues` and returns undefined on failure. */
  parse(value: unknown, path: string, issues: string[]): T | undefined;
  /** A short human description of what is expected, for error messages and docs. */
  readonly expects: string;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type RequiredKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? K : never }[keyof S];
export type ObjectOf<S extends Shape> = { readonly [K in RequiredKeys<S>]: Infer<S[K]> } & {
  readonly [K in OptionalKeys<S>]?: Infer<S[K]>;
};

/** The longest piece of a given value or key an error message repeats: a 1 MB key is not echoed back. */
const CLIP = 64;

/** `JSON.stringify(s)`, cut to a readable length (`"kkkk…" (1000000 characters)`). */
export function quote(s: string): string {
  return s.length <= CLIP ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, CLIP))}… (${s.length} characters)`;
}

/** A key path segment fit for a message. */
const keyName = (k: string): string => (k.length <= CLIP ? k : `${k.slice(0, CLIP)}… (${k.length} characters)`);

const kind = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v === 'string' ? `string ${quote(v)}` : `${typeof v} ${String(v)}`;

/** `path: expected X, got Y`, or `path: required (X)` when the key is missing altogether. */
const mismatch = (path: string, expects: string, v: unknown): string =>
  v === undefined ? `${path}: required (${expects})` : `${path}: expected ${expects}, got ${kind(v)}`;

/** Unknown keys reported one by one, at most; the rest are counted (a body of 60,000 unknown keys gets a short answer). */
const MAX_UNKNOWN_KEYS = 10;

function make<T>(expects: string, parse: Schema<T>['parse']): Schema<T> {
  return { expects, parse };
}

export function string(opts: { pattern?: RegExp; patternHint?: string; check?: (s: string) => string | undefined } = {}): Schema<string> {
  const expects = opts.patternHint ?? 'a string';
  return make(expects, (v, path, issues) => {
    if (typeof v !== 'string') return void issues.push(mismatch(path, expects, v));
    if (opts.pattern && !opts.pattern.test(v)) return void issues.push(`${path}: ${quote(v)} is not ${expects}`);
    const problem = opts.check?.(v);
    if (problem) return void issues.push(`${path}: ${problem}`);
    return v;
  });
}

export function integer(min: number, max: number): Schema<number> {
  const expects = `an integer from ${min} to ${max}`;
  return make(expects, (v, path, issues) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return void issues.push(mismatch(path, expects, v));
    }
    return v;
  });
}

export function boolean(): Schema<boolean> {
  return make('true or false', (v, path, issues) => {
    if (typeof v !== 'boolean') return void issues.push(mismatch(path, 'true or false', v));
    return v;
  });
}

export function oneOf<const T extends string>(...values: T[]): Schema<T> {
  const expects = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return make(expects, (v, path, issues) => {
    if (typeof v !== 'string' || !(values as string[]).includes(v)) {
      return void issues.push(mismatch(path, expects, v));
    }
    return v as T;
  });
}

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/**
 * The longest delay a Node.js timer takes (2^31-1 ms, about 24.8 days): a longer one is
 * clamped to 1 ms with only a warning, which would turn `idle_timeout: 1000h` into "at once".
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A duration: a number of seconds, or a string such as `500ms`, `30s`, `5m`, `1h`. Parsed to milliseconds. */
export function duration(): Schema<number> {
  const expects = 'a duration (seconds, or "500ms", "30s", "5m", "1h")';
  return make(expects, (v, path, issues) => {
    let ms: number | undefined;
    if (typeof v === 'number' && v >= 0 && Number.isFinite(v)) ms = Math.round(v * 1000);
    else if (typeof v === 'string') {
      const m = DURATION.exec(v.trim());
      if (m) ms = Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']);
    }
    if (ms === undefined) return void issues.push(mismatch(path, expects, v));
    if (ms > MAX_DURATION_MS) return void issues.push(`${path}: ${typeof v === 'string' ? quote(v) : String(v)} is longer than a timer can wait (at most 596h, about 24.8 days)`);
    return ms;
  });
}

export function array<T>(item: Schema<T>, opts: { min?: number } = {}): Schema<readonly T[]> {
  const expects = `a list of ${item.expects}`;
  return make(expects, (v, path, issues) => {
    if (!Array.isArray(v)) return void issues.push(mismatch(path, expects, v));
    if (opts.min !== undefined && v.length < opts.min) return void issues.push(`${path}: expected at least ${opts.min} item(s)`);
    const before = issues.length;
    const out = v.map((x, i) => item.parse(x, `${path}[${i}]`, issues));
    return issues.length === before ? (out as T[]) : undefined;
  });
}

export function record<T>(value: Schema<T>, key?: { pattern: RegExp; hint: string }): Schema<Readonly<Record<string, T>>> {
  const expects = `a mapping of ${value.expects}`;
  return make(expects, (v, path, issues) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.push(mismatch(path, expects, v));
    const before = issues.length;
    const out: Record<string, T> = {};
    for (const [k, x] of Object.entries(v)) {
      if (key && !key.pattern.test(k)) {
        issues.push(`${path}.${keyName(k)}: ${quote(k)} is not ${key.hint}`);
        continue;
      }
      out[k] = value.parse(x, `${path}.${keyName(k)}`, issues) as T;
    }
    return issues.length === before ? out : undefined;
  });
}

/** Marks a field optional: absent (or null) parses to undefined. */
export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return make(inner.expects, (v, path, issues) => (v === undefined || v === null ? undefined : inner.parse(v, path, issues)));
}

/** A field with a default: absent (or null) parses to `value`. */
export function withDefault<T>(inner: Schema<T>, value: T): Schema<T> {
  return make(inner.expects, (v, path, issues) => (v === undefined || v === null ? value : inner.parse(v, path, issues)));
}

export function object<S extends Shape>(
  shape: S,
  check?: (value: ObjectOf<S>, path: string, issues: string[]) => void,
): Schema<ObjectOf<S>> & { readonly shape: S } {
  const keys = Object.keys(shape);
  const parse = (v: unknown, path: string, issues: string[]): ObjectOf<S> | undefined => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.push(mismatch(path || 'config', 'a mapping', v));
    const before = issues.length;
    const at = (k: string) => (path ? `${path}.${keyName(k)}` : keyName(k));
    let unknown = 0;
    let listed = false;
    for (const k of Object.keys(v)) {
      if (Object.hasOwn(shape, k)) continue;
      if (++unknown > MAX_UNKNOWN_KEYS) continue;
      const near = nearest(k, keys);
      // The valid keys are listed once per mapping, not after every unknown key.
      const hint = near ? `, did you mean ${near}?` : listed ? '' : ` (valid keys: ${keys.join(', ')})`;
      if (!near) listed = true;
      issues.push(`${at(k)}: unknown key${hint}`);
    }
    if (unknown > MAX_UNKNOWN_KEYS) issues.push(`${path || 'config'}: ${unknown - MAX_UNKNOWN_KEYS} more unknown keys`);
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const parsed = shape[k].parse((v as Record<string, unknown>)[k], at(k), issues);
      if (parsed !== undefined) out[k] = parsed;
    }
    if (issues.length !== before) return undefined;
    check?.(out as ObjectOf<S>, path, issues);
    return issues.length === before ? (out as ObjectOf<S>) : undefined;
  };
  return { expects: 'a mapping', parse, shape };
}

/**
 * Past these sizes there is no "did you mean": no typo of a key is that long,
 * and the search is O(input × candidate) per candidate — a 1 MB key once
 * held the event loop (and so all traffic) for 2.8 s (issue 8).
 */
const NEAREST_MAX_INPUT = 64;
const NEAREST_MAX_CANDIDATES = 256;

/** The nearest candidate by edit distance (ignoring `_`, `-` and case), or undefined if none is close. */
export function nearest(input: string, candidates: readonly string[]): string | undefined {
  if (input.length > NEAREST_MAX_INPUT) return undefined;
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates.slice(0, NEAREST_MAX_CANDIDATES)) {
    if (c.length > NEAREST_MAX_INPUT) continue;
    const d = editDistance(norm(input), norm(c));
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(input.length / 3)) ? best : undefined;
}

/** Edit distance counting a swap of two neighbours as one edit (`prot` → `port`), the commonest typo. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j], before[j - 2] + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length];
}

/** Freezes a parsed config so no module can change it behind the router's back. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
