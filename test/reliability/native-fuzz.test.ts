/**
 * Coverage-guided fuzzing of the native addon's readers of untrusted bytes, with
 * AddressSanitizer and UndefinedBehaviorSanitizer: libFuzzer targets in native/fuzz/, built
 * here with clang against the addon's own sources.
 *  - frames-fuzz: the tunnels' frame tracker (frames.c);
 *  - bridge-fuzz: the bridge's parser of client frames, unmasked in place (bridge.c);
 *  - front-fuzz: the front's readers of request and answer heads (front.c).
 * Each target checks its own properties (see its file) besides memory safety: any report or
 * failed check ends the run with a crash input, whose bytes are printed here.
 *
 * Time per target: 15 s under `npm test`, 120 s under `npm run reliability`
 * (PORTHOLE_NATIVE_FUZZ_SECONDS overrides both); libFuzzer's seed: PORTHOLE_FUZZ_SEED. A run
 * bounded by time does not replay from its seed: a failure prints its input in hex, and the
 * target, given that input as a file, runs it alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureTools, TOOLS } from '../../scripts/ensure-tools.mjs';
import { fuzzSeed } from './fuzz-cases.js';
import { record, size } from './harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECONDS = Math.max(1, Math.round(Number(process.env.PORTHOLE_NATIVE_FUZZ_SECONDS) || size(15, 120)));
/** The longest input: a frame stream's few frames, or a head past the 16 KiB the front reads. */
const MAX_LEN: Record<string, number> = { 'frames-fuzz': 4096, 'bridge-fuzz': 4096, 'front-fuzz': 20_000 };
/** Node's headers (uv.h, which bridge.c includes), beside the running node. */
const NODE_INCLUDE = join(dirname(dirname(process.execPath)), 'include', 'node');
const FLAGS = ['-g', '-O1', '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=all', `-I${NODE_INCLUDE}`];

ensureTools(TOOLS.filter((t) => t.pkg === 'clang' || t.pkg === 'libclang-rt-14-dev'));

const dir = mkdtempSync(join(tmpdir(), 'porthole-native-fuzz-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A client frame, masked (key 1 2 3 4), as a browser sends it. */
function clientFrame(op: number, payload: Buffer, fin = true): Buffer {
  const key = Buffer.from([1, 2, 3, 4]);
  const n = payload.length;
  const len = n < 126 ? Buffer.from([0x80 | n]) : Buffer.from([0x80 | 126, n >> 8, n & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | op]), len, key, masked]);
}

/**
 * A text message of 3-byte characters, 300 bytes in one frame, then a second message in two
 * fragments cut inside a character: cut into reads of the options byte's choosing, characters
 * are split across reads and fragments (the held bytes in bridge.c's parse).
 */
const SPLIT_TEXT = Buffer.concat([
  // Text passed as bytes, no handshake bytes; reads of 58, 36, 26… bytes (seed 1): the first ends inside a character.
  Buffer.from([0x01]),
  clientFrame(1, Buffer.from('€'.repeat(100))),
  clientFrame(1, Buffer.from('ab€').subarray(0, 3), false),
  clientFrame(0, Buffer.from('ab€cd').subarray(3)),
]);

const SEEDS: Record<string, Buffer[]> = {
  'frames-fuzz': [
    Buffer.concat([Buffer.from([7]), clientFrame(2, Buffer.alloc(40, 9)), clientFrame(8, Buffer.from([0x03, 0xe8, 0x6f, 0x6b]))]),
    Buffer.concat([Buffer.from([3]), Buffer.from([0x82, 126, 0x01, 0x00]), Buffer.alloc(256, 1), Buffer.from([0x88, 0x02, 0x03, 0xe9])]),
  ],
  'bridge-fuzz': [
    SPLIT_TEXT,
    Buffer.concat([Buffer.from([0]), clientFrame(2, Buffer.alloc(200, 7)), clientFrame(9, Buffer.from('hi')), clientFrame(8, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65]))]),
  ],
  'front-fuzz': [
    Buffer.from('GET /app/ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n'),
  ],
};

/** Builds a target (`defines`: -D flags for a variant); returns its path. */
function build(name: string, defines: string[] = []): string {
  const bin = join(dir, `${name}${defines.join('')}`);
  const sources = [join(ROOT, 'native/fuzz', `${name}.c`), ...(name === 'front-fuzz' ? [] : [join(ROOT, 'native/frames.c')])];
  const r = spawnSync('clang', [...FLAGS, ...defines, '-o', bin, ...sources], { encoding: 'utf8' });
  assert.equal(r.status, 0, `clang ${name}: ${r.stderr}`);
  return bin;
}

/** What a crash input held, for the failure's message. */
function crashes(artifacts: string): string {
  return readdirSync(artifacts)
    .map((f) => `${f}: ${readFileSync(join(artifacts, f)).toString('hex')}`)
    .join('\n');
}

for (const name of Object.keys(SEEDS)) {
  test(`native fuzz: ${name} runs ${SECONDS} s of generated inputs under ASan and UBSan with its checks holding`, { timeout: (SECONDS + 120) * 1000 }, (t) => {
    const seed = fuzzSeed();
    t.diagnostic(`libFuzzer seed ${seed}`);
    const bin = build(name);
    const corpus = join(dir, `${name}-corpus`);
    const artifacts = join(dir, `${name}-crashes`);
    mkdirSync(corpus);
    mkdirSync(artifacts);
    SEEDS[name].forEach((b, i) => writeFileSync(join(corpus, `seed-${i}`), b));
    // -timeout: an input that runs for 10 s is a hang, reported with that input (libFuzzer's default waits 20 minutes).
    const r = spawnSync(bin, [`-max_total_time=${SECONDS}`, `-max_len=${MAX_LEN[name]}`, '-timeout=10', `-seed=${seed >>> 0 || 1}`, `-artifact_prefix=${artifacts}/`, '-print_final_stats=1', corpus], {
      encoding: 'utf8',
      timeout: (SECONDS + 60) * 1000,
      maxBuffer: 64 << 20,
    });
    const runs = Number(/stat::number_of_executed_units:\s*(\d+)/.exec(r.stderr)?.[1] ?? 0);
    record({ suite: `native fuzz: ${name}`, cases: runs, failures: r.status === 0 ? 0 : 1, crashes: readdirSync(artifacts).length, note: `${SECONDS} s, seed ${seed}` });
    assert.equal(r.status, 0, `${name} failed (seed ${seed}):\n${r.stderr.split('\n').slice(-40).join('\n')}\n${crashes(artifacts)}`);
    // It ran for real: tens of thousands of inputs a second here, a thousand at the least on a busy machine.
    assert.ok(runs > 1000 * SECONDS, `${name}: only ${runs} inputs ran in ${SECONDS} s`);
  });
}

test('native fuzz: the bridge target catches a parser whose output overtakes input it has not read yet', { timeout: 120_000 }, () => {
  // bridge.c's parse() writes a read's payload in place, behind the room its caller leaves in
  // front for a character held from the read before. Given less room than such a character
  // needs, the output overtakes the input: with none, it runs off the buffer (AddressSanitizer
  // says so); with one byte and memory to spare after the read, it stays in bounds and the
  // bytes for TCP come out wrong: the target's own checks must say so.
  const input = join(dir, 'split-text');
  writeFileSync(input, SPLIT_TEXT);
  const good = spawnSync(build('bridge-fuzz'), [input], { encoding: 'utf8' });
  assert.equal(good.status, 0, good.stderr);
  const none = spawnSync(build('bridge-fuzz', ['-DFUZZ_ROOM=0']), [input], { encoding: 'utf8' });
  assert.notEqual(none.status, 0, 'the target passed a parser given no room in front of its reads');
  assert.match(none.stderr, /ERROR: AddressSanitizer/);
  const one = spawnSync(build('bridge-fuzz', ['-DFUZZ_ROOM=1', '-DFUZZ_PAD=8']), [input], { encoding: 'utf8' });
  assert.notEqual(one.status, 0, 'the target passed a parser given one byte of room in front of its reads');
  assert.doesNotMatch(one.stderr, /ERROR: AddressSanitizer/, 'in bounds: the property checks, not ASan, must catch it');
  // A failed CHECK: abort() from the target's own function.
  assert.match(one.stderr, /deadly signal[\s\S]* in abort [\s\S]* in LLVMFuzzerTestOneInput .*bridge-fuzz\.c/);
});
