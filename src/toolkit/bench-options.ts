/**
 * The options of `porthole bench` (`runBench`): one place for their types,
 * defaults and validation. Unknown keys are refused with the nearest valid key
 * as a hint; the settled options are frozen.
 */
import { HEADER_BYTES } from './bench-payload.js';

export interface BenchOptions {
  /** A `ws://` or `wss://` URL of an endpoint that echoes every message. */
  url: string;
  /** Connections to open. Default 10. */
  connections?: number;
  /** Connections opened per second. Default: all at once, at most `maxHandshakes` in flight. */
  rampPerSecond?: number;
  /** Message size in bytes, at least 16 (the header). Default 64. */
  size?: number;
  /** Messages per second per connection (open loop). Default: closed loop. */
  ratePerSecond?: number;
  /**
   * Length of the run in seconds. Default 10; without a limit when
   * `messagesPerConnection` is set. Whichever limit comes first ends the run.
   */
  durationSeconds?: number;
  /** Each connection stops after this many round trips. */
  messagesPerConnection?: number;
  /** Binary messages (default) or text (every byte ASCII). */
  binary?: boolean;
  /** Extra handshake headers. */
  headers?: Readonly<Record<string, string>>;
  /** Subprotocols offered, in order of preference. */
  subprotocols?: readonly string[];
  origin?: string;
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  /** Offer permessage-deflate (costs a copy and zlib per message). Default false. */
  compress?: boolean;
  /** A handshake with no answer after this long fails. Default 10. */
  connectTimeoutSeconds?: number;
  /** Handshakes in flight at once when there is no ramp. Default 100. */
  maxHandshakes?: number;
  /** Called every `progressIntervalMs` while the run lasts. */
  onProgress?: (progress: BenchProgress) => void;
  /** Default 1000. */
  progressIntervalMs?: number;
  /** Messages outstanding and no echo for this long: the run stops (`stoppedBy: 'stalled'`). Default 10. */
  stallSeconds?: number;
  /** Aborting stops the run early; the result covers what was measured. */
  signal?: AbortSignal;
}

export interface BenchProgress {
  elapsedSeconds: number;
  /** Connections open now. */
  open: number;
  sent: number;
  received: number;
  /** Echoes per second since the previous progress report. */
  receivedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export const BENCH_DEFAULTS = Object.freeze({
  connections: 10,
  size: 64,
  durationSeconds: 10,
  connectTimeoutSeconds: 10,
  maxHandshakes: 100,
  progressIntervalMs: 1000,
  stallSeconds: 10,
});

/** A bad option passed to `runBench` (the CLI exits 2). */
export class BenchOptionError extends RangeError {
  readonly code = 'PH_BENCH_BAD_OPTION';
}

const OPTION_KEYS: readonly (keyof BenchOptions)[] = [
  'url', 'connections', 'rampPerSecond', 'size', 'ratePerSecond', 'durationSeconds', 'messagesPerConnection', 'binary',
  'headers', 'subprotocols', 'origin', 'insecure', 'compress', 'connectTimeoutSeconds', 'maxHandshakes', 'onProgress',
  'progressIntervalMs', 'stallSeconds', 'signal',
];

/** The options with defaults filled in. */
export type BenchSettings = Readonly<Required<Omit<BenchOptions, 'rampPerSecond' | 'ratePerSecond' | 'messagesPerConnection' | 'durationSeconds' | 'origin' | 'onProgress' | 'signal'>>> &
  Pick<BenchOptions, 'rampPerSecond' | 'ratePerSecond' | 'messagesPerConnection' | 'durationSeconds' | 'origin' | 'onProgress' | 'signal'>;

/** Checks `o` and fills in the defaults; throws `BenchOptionError`. */
export function validateBenchOptions(o: BenchOptions): BenchSettings {
  for (const key of Object.keys(o)) {
    if (!(OPTION_KEYS as string[]).includes(key)) {
      const near = nearest(key, OPTION_KEYS);
      throw new BenchOptionError(`unknown option ${key}${near ? `, did you mean ${near}?` : ''}`);
    }
  }
  if (typeof o.url !== 'string' || !/^wss?:\/\//i.test(o.url)) throw new BenchOptionError(`url must be a ws:// or wss:// URL, got ${String(o.url)}`);
  const int = (name: keyof BenchOptions, min: number) => {
    const v = o[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) throw new BenchOptionError(`${name} must be a whole number ≥ ${min}, got ${String(v)}`);
  };
  const positive = (name: keyof BenchOptions) => {
    const v = o[name];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)) throw new BenchOptionError(`${name} must be a number > 0, got ${String(v)}`);
  };
  int('connections', 1);
  int('size', HEADER_BYTES);
  int('messagesPerConnection', 1);
  int('maxHandshakes', 1);
  positive('rampPerSecond');
  positive('ratePerSecond');
  positive('durationSeconds');
  positive('connectTimeoutSeconds');
  positive('progressIntervalMs');
  positive('stallSeconds');
  return Object.freeze({
    ...o,
    connections: o.connections ?? BENCH_DEFAULTS.connections,
    size: o.size ?? BENCH_DEFAULTS.size,
    durationSeconds: o.durationSeconds ?? (o.messagesPerConnection === undefined ? BENCH_DEFAULTS.durationSeconds : undefined),
    binary: o.binary ?? true,
    headers: o.headers ?? {},
    subprotocols: o.subprotocols ?? [],
    insecure: o.insecure ?? false,
    compress: o.compress ?? false,
    connectTimeoutSeconds: o.connectTimeoutSeconds ?? BENCH_DEFAULTS.connectTimeoutSeconds,
    maxHandshakes: o.maxHandshakes ?? BENCH_DEFAULTS.maxHandshakes,
    progressIntervalMs: o.progressIntervalMs ?? BENCH_DEFAULTS.progressIntervalMs,
    stallSeconds: o.stallSeconds ?? BENCH_DEFAULTS.stallSeconds,
  });
}

/** The candidate closest to `word` by edit distance, when it is close enough to be a typo. */
function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}
