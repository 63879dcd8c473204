/**
 * How `porthole bench` shows its numbers to a person: the report printed at the
 * end and the live progress line. `--json` prints the `BenchResult` instead.
 */
import type { BenchProgress, BenchResult } from './bench.js';

/** A duration given in ms, in the unit that suits it: `87 µs`, `1.24 ms`, `2.31 s`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** 1234567 → `1,234,567`. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** The report for a person, one line per string. */
export function formatBenchReport(r: BenchResult): string[] {
  const s = r.settings;
  const load =
    r.mode === 'open-loop'
      ? `open loop at ${s.ratePerSecond} msg/s per connection`
      : 'closed loop (next message on each echo)';
  const limits = [
    s.durationSeconds !== null ? `${s.durationSeconds} s` : undefined,
    s.messagesPerConnection !== null ? `${formatCount(s.messagesPerConnection)} messages per connection` : undefined,
  ].filter(Boolean);
  const lines = [
    `porthole bench ${r.url}`,
    `  ${s.connections} connection${s.connections === 1 ? '' : 's'}${s.rampPerSecond !== null ? ` (ramp ${s.rampPerSecond}/s)` : ''}, ` +
      `${s.size}-byte ${s.binary ? 'binary' : 'text'} messages${s.compress ? ' (permessage-deflate offered)' : ''}, ${load}, ${limits.join(' or ')}`,
    `  stopped by ${STOPPED_BY[r.stoppedBy]} after ${r.elapsedSeconds.toFixed(2)} s`,
    '',
  ];

  const c = r.connections;
  const opened = `${c.opened} opened${c.failed ? `, ${c.failed} failed` : ''}${c.lost ? `, ${c.lost} closed early by the server` : ''}`;
  const connect = c.connectMs
    ? `   handshake p50 ${formatMs(c.connectMs.p50)}  p99 ${formatMs(c.connectMs.p99)}  max ${formatMs(c.connectMs.max)}`
    : '';
  lines.push(`connections  ${opened}${connect}`);

  const m = r.messages;
  lines.push(
    `messages     ${formatCount(m.sent)} sent, ${formatCount(m.received)} echoed   ${formatCount(m.perSecond)} msg/s   ` +
      `${m.mibPerSecond.toFixed(2)} MiB/s (payload, both ways)`,
  );

  const l = r.latency;
  if (l.count) {
    lines.push(
      `latency      p50 ${formatMs(l.p50Ms)}   p90 ${formatMs(l.p90Ms)}   p99 ${formatMs(l.p99Ms)}   ` +
        `p99.9 ${formatMs(l.p999Ms)}   max ${formatMs(l.maxMs)}   (${formatCount(l.count)} round trips` +
        `${r.mode === 'open-loop' ? ', from the intended send time' : ''})`,
    );
  } else {
    lines.push('latency      no round trip completed');
  }
  if (r.schedule) {
    lines.push(
      `schedule     ${formatCount(r.schedule.lateSends)} of ${formatCount(m.sent)} sends left over ${r.schedule.lateThresholdMs} ms late ` +
        `(worst ${formatMs(r.schedule.maxSendLagMs)})`,
    );
  }

  if (r.errors.total === 0) lines.push('errors       none');
  else {
    lines.push(`errors       ${formatCount(r.errors.total)}`);
    const width = Math.max(...r.errors.byCause.map((e) => formatCount(e.count).length));
    for (const e of r.errors.byCause) {
      const what = e.kind === 'close' ? `closed ${e.code}` : String(e.code);
      lines.push(`  ${formatCount(e.count).padStart(width)}  ${what}: ${e.description}`);
    }
  }

  const cpu = r.cpu;
  const perTrip = Number.isFinite(cpu.microsecondsPerRoundTrip) ? `, ${cpu.microsecondsPerRoundTrip.toFixed(1)} µs per round trip` : '';
  const loop = Number.isFinite(cpu.eventLoopDelayMaxMs)
    ? `; event loop delay p99 ${formatMs(cpu.eventLoopDelayP99Ms)}, max ${formatMs(cpu.eventLoopDelayMaxMs)}`
    : '';
  lines.push(
    `bench CPU    ${cpu.percentOfCore.toFixed(0)}% of one core (${(cpu.userSeconds + cpu.systemSeconds).toFixed(2)} s user+system)${perTrip}${loop}`,
  );
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines;
}

const STOPPED_BY: Readonly<Record<BenchResult['stoppedBy'], string>> = {
  duration: 'the duration',
  messages: 'the message count',
  'no-open-connections': 'losing every connection',
  stalled: 'no echo for 10 s',
  aborted: 'an interrupt',
};

/** The live line (rewritten with `\r` on a terminal). */
export function formatProgress(p: BenchProgress): string {
  return (
    `${p.elapsedSeconds.toFixed(0).padStart(4)} s  ${p.open} open  ${formatCount(p.sent)} sent  ${formatCount(p.received)} echoed  ` +
    `${formatCount(p.receivedPerSecond)} msg/s  p50 ${formatMs(p.p50Ms)}  p99 ${formatMs(p.p99Ms)}  errors ${formatCount(p.errors)}`
  );
}
