/**
 * Gives back the memory a burst of connections left behind.
 *
 * Each handshake or request allocates a few KiB of short-lived objects. After
 * a burst (thousands of WebSockets opened at once, a reconnect storm), V8
 * keeps the heap it grew to until its next full collection, which an idle
 * gateway holding only tunnels may not run for hours: 9,000 idle tunnels
 * grew the gateway's RSS by ~48 MiB, where ~9 MiB is what they hold. So,
 * once a burst of at least BURST connections is followed by two quiet seconds,
 * one collection that gives memory back runs (~40 ms with those 9,000
 * tunnels): the pause falls when there is little to delay, and comes once per
 * burst. It is logged as a `memory` event.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { emit } from '../events.js';
import { nativeBinding } from './native-binding.js';

const TICK_MS = 1000;
const BURST = 1000;
/** A burst is over once QUIET_TICKS ticks in a row saw at most QUIET new connections each. */
const QUIET = 10;
const QUIET_TICKS = 2;

let users = 0;
let timer: NodeJS.Timeout | null = null;
let recent = 0;
let sinceCollect = 0;
let quietTicks = 0;
type Collect = () => void;
let collect: Collect | null | undefined;

/** Counts a connection accepted by a listening gateway. */
export function noteConnection(): void {
  recent++;
}

/** A listening gateway starts it; the matching `release()` stops it with the last one. */
export function useMemoryReducer(): () => void {
  users++;
  if (!timer) {
    timer = setInterval(tick, TICK_MS);
    timer.unref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--users === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

function tick(): void {
  const window = recent;
  recent = 0;
  sinceCollect += window;
  quietTicks = window > QUIET ? 0 : quietTicks + 1;
  if (sinceCollect < BURST || quietTicks < QUIET_TICKS) return;
  const connections = sinceCollect;
  sinceCollect = 0;
  const before = process.memoryUsage().heapUsed;
  const started = performance.now();
  if (!reduce()) return;
  const ms = Math.round((performance.now() - started) * 10) / 10;
  const mib = (n: number) => Math.round((n / 1048576) * 10) / 10;
  emit('memory', { action: 'collected', connections, ms, heapBeforeMiB: mib(before), heapAfterMiB: mib(process.memoryUsage().heapUsed) });
}

/**
 * The collection that gives memory back: V8's LowMemoryNotification through
 * the native addon (native/addon.c), which also shrinks the heap; without the
 * addon, a plain full collection, which frees the garbage but may keep the
 * grown heap. False when neither is available.
 */
function reduce(): boolean {
  const { binding } = nativeBinding();
  if (binding?.reduceMemory?.()) return true;
  const gc = gcFunction();
  if (!gc) return false;
  gc();
  return true;
}

/**
 * V8's full collection, as `--expose-gc` would give it, obtained without that
 * flag on the command line: the flag is set for one new context that exports
 * its `gc`, then unset so no other context sees it. Null where V8 refuses.
 */
function gcFunction(): Collect | null {
  if (collect !== undefined) return collect;
  const exposed = typeof (globalThis as { gc?: unknown }).gc === 'function';
  try {
    if (!exposed) v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    collect = typeof fn === 'function' ? (fn as Collect) : null;
  } catch {
    collect = null;
  } finally {
    if (!exposed) v8.setFlagsFromString('--no-expose-gc');
  }
  return collect;
}
