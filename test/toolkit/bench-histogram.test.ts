/**
 * The latency histogram of `porthole bench` (src/toolkit/histogram.ts) against
 * exact percentiles of known distributions, and the message header codec
 * (src/toolkit/bench-payload.ts) that carries sequence numbers and send times.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BenchPayload, HEADER_BYTES } from '../../src/toolkit/bench-payload.js';
import { Histogram } from '../../src/toolkit/histogram.js';

/** A deterministic PRNG (mulberry32) so the distributions are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The value of rank ⌈p/100 · n⌉ in sorted `values`, the definition the histogram follows. */
function exact(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const PERCENTILES = [1, 10, 25, 50, 75, 90, 99, 99.9, 99.99];

function checkAgainstExact(name: string, values: Float64Array, tolerance: number): void {
  const h = new Histogram();
  for (const v of values) h.record(v);
  const sorted = Float64Array.from(values).sort();
  for (const p of PERCENTILES) {
    const want = exact(sorted, p);
    const got = h.percentile(p);
    // Below 256 µs buckets are 1 µs wide: allow that absolute error too.
    const allowed = Math.max(want * tolerance, 1);
    assert.ok(Math.abs(got - want) <= allowed, `${name} p${p}: got ${got}, exact ${want} (allowed ±${allowed.toFixed(2)})`);
  }
  assert.equal(h.count, values.length);
  assert.equal(h.min, sorted[0]);
  assert.equal(h.max, sorted[sorted.length - 1]);
  assert.ok(Math.abs(h.mean - values.reduce((a, b) => a + b, 0) / values.length) < 1e-6 * h.mean);
}

test('histogram: uniform 1 µs – 1 s, percentiles within 1% of the exact ones', () => {
  const r = random(1);
  checkAgainstExact('uniform', Float64Array.from({ length: 200_000 }, () => 1 + r() * 999_999), 0.01);
});

test('histogram: exponential (mean 200 µs) and log-normal latencies (median 1 ms, long tail), within 1%', () => {
  const r = random(2);
  checkAgainstExact('exponential', Float64Array.from({ length: 200_000 }, () => -200 * Math.log(1 - r())), 0.01);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  checkAgainstExact('log-normal', Float64Array.from({ length: 200_000 }, () => 1000 * Math.exp(1.5 * gauss())), 0.01);
});

test('histogram: whole microseconds below 256 are exact', () => {
  const h = new Histogram();
  for (let v = 0; v < 256; v++) h.record(v);
  assert.equal(h.percentile(50), 127);
  assert.equal(h.percentile(0), 0);
  assert.equal(h.percentile(100), 255);
  for (let v = 1; v <= 256; v++) assert.equal(h.percentile((v / 256) * 100), v - 1);
});

test('histogram: percentiles never decrease, p0 is the exact min and p100 the exact max', () => {
  const r = random(3);
  const h = new Histogram();
  for (let i = 0; i < 10_000; i++) h.record(37.25 + r() ** 4 * 123_456.5);
  let previous = -Infinity;
  for (let p = 0; p <= 100; p += 0.1) {
    const v = h.percentile(Math.min(p, 100));
    assert.ok(v >= previous, `p${p} = ${v} < ${previous}`);
    previous = v;
  }
  assert.equal(h.percentile(0), h.min);
  assert.equal(h.percentile(100), h.max);
  assert.ok(h.percentile(99.9) <= h.max);
});

test('histogram: a constant is reported as itself; empty is NaN; negative counts as 0; huge values keep the exact max', () => {
  const h = new Histogram();
  assert.ok(Number.isNaN(h.percentile(50)));
  assert.ok(Number.isNaN(h.max));
  for (let i = 0; i < 1000; i++) h.record(12_345);
  for (const p of [0, 50, 99.9, 100]) assert.equal(h.percentile(p), 12_345);

  const odd = new Histogram();
  odd.record(-5);
  odd.record(1e13); // ~116 days: beyond the last bucket
  assert.equal(odd.min, 0);
  assert.equal(odd.max, 1e13);
  assert.equal(odd.percentile(50), 0);
  assert.equal(odd.percentile(100), 1e13);
  assert.throws(() => odd.percentile(101), RangeError);
});

test('histogram: add() merges counts, min, max and mean', () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let v = 1; v <= 1000; v++) (v % 2 ? a : b).record(v * 10);
  a.add(b);
  assert.equal(a.count, 1000);
  assert.equal(a.min, 10);
  assert.equal(a.max, 10_000);
  assert.equal(a.mean, 5005);
  assert.ok(Math.abs(a.percentile(50) - 5000) <= 50);
});

test('payload: binary and text headers carry the sequence number and send time back; every text byte is printable ASCII', () => {
  for (const binary of [true, false]) {
    const p = new BenchPayload(7, 100, binary);
    for (const [seq, t] of [[0, 0], [1, 1234.5678], [2 ** 32 - 1, 987_654_321.123_456_7]] as const) {
      p.writeHeader(seq, t);
      const echo = Buffer.from(p.buffer);
      assert.equal(p.check(echo, binary), seq);
      assert.equal(p.echoTimeMs, t);
    }
    if (!binary) for (const byte of p.buffer) assert.ok(byte >= 0x21 && byte <= 0x7e, `byte ${byte} is not printable ASCII`);
  }
});

test('payload: a changed body byte, header byte, length, type, or another connection\'s message is a mismatch (-1)', () => {
  const p = new BenchPayload(3, 64, true);
  p.writeHeader(5, 42);
  const good = Buffer.from(p.buffer);
  assert.equal(p.check(good, true), 5);
  const body = Buffer.from(good);
  body[40] ^= 1;
  assert.equal(p.check(body, true), -1);
  assert.equal(p.check(good.subarray(0, 63), true), -1);
  assert.equal(p.check(good, false), -1);
  const other = new BenchPayload(4, 64, true);
  other.writeHeader(5, 42);
  assert.equal(p.check(Buffer.from(other.buffer), true), -1);

  const t = new BenchPayload(3, HEADER_BYTES, false);
  t.writeHeader(9, 1);
  const bad = Buffer.from(t.buffer);
  bad[2] = 0x20; // not in the base64url alphabet
  assert.equal(t.check(bad, false), -1);
  assert.throws(() => new BenchPayload(0, HEADER_BYTES - 1, true), RangeError);
});
