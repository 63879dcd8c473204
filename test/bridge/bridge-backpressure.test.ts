/**
 * Backpressure through the standalone bridge (a real child process): a
 * 256 MiB TCP stream to a WebSocket client that reads slowly, and an upload
 * to a TCP target that reads slowly, must not make the bridge buffer the
 * data. Its memory is read from /proc/PID/status (VmRSS) during the transfer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { startBridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { tcpPeer } from '../fixtures/bridge/tcp-peers.js';
import { sleep } from '../helpers/net.js';

const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS every few ms until stopped; returns the peak. */
function sampleRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      /* the process is gone */
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** Writes `total` bytes of a pattern that changes every MiB (so a reordering changes the hash), with backpressure. */
async function stream(s: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  for (let sent = 0, n = 0; sent < total; sent += block.length, n++) {
    block.writeUInt32LE(n, 0);
    hash.update(block);
    if (!s.write(Buffer.from(block))) await once(s, 'drain');
  }
  s.end();
  return hash.digest('hex');
}

/** Reads a WebSocket at about `bytesPerSec`, pausing its socket between bursts. */
function slowRead(ws: WebSocket, bytesPerSec: number): Promise<{ bytes: number; hash: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const started = Date.now();
  ws.on('message', (data: Buffer) => {
    hash.update(data);
    bytes += data.length;
    const ahead = bytes / bytesPerSec - (Date.now() - started) / 1000;
    if (ahead > 0.02 && !ws.isPaused) {
      ws.pause();
      setTimeout(() => ws.resume(), ahead * 1000);
    }
  });
  return new Promise((ok) => ws.once('close', () => ok({ bytes, hash: hash.digest('hex') })));
}

describe('bridge backpressure', { timeout: 60_000 }, () => {
  test('256 MiB from TCP to a slow WebSocket reader: all bytes arrive, the bridge does not buffer them', async (t) => {
    const total = 256 * MiB;
    let sentHash: Promise<string> | undefined;
    const source = await tcpPeer({ onSocket: (s) => (sentHash = stream(s, total)) });
    const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${source.port}`]);
    try {
      const pid = cli.child.pid!;
      await sleep(200);
      const baseline = rssOf(pid);
      const sampler = sampleRss(pid);
      const started = Date.now();
      const ws = new WebSocket(`${cli.wsUrl}/`, ['binary'], { perMessageDeflate: false });
      // 48 MiB/s: far slower than a loopback TCP source, so without backpressure the bridge would hold most of the stream.
      const got = await slowRead(ws, 48 * MiB);
      const seconds = (Date.now() - started) / 1000;
      const peak = sampler.stop();
      const growth = peak - baseline;
      t.diagnostic(`slow reader: ${got.bytes / MiB} MiB in ${seconds.toFixed(1)} s (${(got.bytes / MiB / seconds).toFixed(0)} MiB/s); bridge RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(got.bytes, total, 'every byte arrived');
      assert.equal(got.hash, await sentHash, 'in order and unchanged');
      assert.ok(growth < 64 * MiB, `bridge RSS grew by ${(growth / MiB).toFixed(1)} MiB while streaming 256 MiB`);
    } finally {
      await cli.stop();
      await source.close();
    }
  });

  test('an upload to a TCP target that reads slowly: the bridge stops reading the WebSocket instead of buffering', async (t) => {
    const total = 128 * MiB;
    const received = createHash('sha256');
    let receivedBytes = 0;
    let finished!: () => void;
    const done = new Promise<void>((ok) => (finished = ok));
    const sink = await tcpPeer({
      onSocket: (s) => {
        // About 32 MiB/s, in bursts.
        const started = Date.now();
        s.on('data', (d) => {
          received.update(d);
          receivedBytes += d.length;
          const ahead = receivedBytes / (32 * MiB) - (Date.now() - started) / 1000;
          if (ahead > 0.02) {
            s.pause();
            setTimeout(() => s.resume(), ahead * 1000);
          }
        });
        s.on('end', () => finished());
      },
    });
    const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${sink.port}`]);
    try {
      const pid = cli.child.pid!;
      await sleep(200);
      const baseline = rssOf(pid);
      const sampler = sampleRss(pid);
      const ws = new WebSocket(`${cli.wsUrl}/`, ['binary'], { perMessageDeflate: false });
      await once(ws, 'open');
      const started = Date.now();
      const sent = createHash('sha256');
      const block = Buffer.alloc(MiB);
      for (let n = 0; n * MiB < total; n++) {
        block.fill(n & 0xff);
        block.writeUInt32LE(n, 0);
        sent.update(block);
        ws.send(Buffer.from(block));
        // The client's own backpressure: do not queue more than a few MiB in this process.
        while (ws.bufferedAmount > 4 * MiB) await sleep(5);
      }
      ws.close(1000);
      await done;
      const seconds = (Date.now() - started) / 1000;
      const peak = sampler.stop();
      const growth = peak - baseline;
      t.diagnostic(`slow TCP reader: ${receivedBytes / MiB} MiB in ${seconds.toFixed(1)} s; bridge RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`);
      assert.equal(receivedBytes, total);
      assert.equal(received.digest('hex'), sent.digest('hex'));
      assert.ok(growth < 64 * MiB, `bridge RSS grew by ${(growth / MiB).toFixed(1)} MiB while uploading 128 MiB`);
    } finally {
      await cli.stop();
      await sink.close();
    }
  });

  test('throughput with a fast reader (reported, not asserted beyond completing)', async (t) => {
    const total = 256 * MiB;
    let sentHash: Promise<string> | undefined;
    const source = await tcpPeer({ onSocket: (s) => (sentHash = stream(s, total)) });
    const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${source.port}`]);
    try {
      const pid = cli.child.pid!;
      await sleep(200);
      const baseline = rssOf(pid);
      const sampler = sampleRss(pid);
      const started = Date.now();
      const ws = new WebSocket(`${cli.wsUrl}/`, ['binary'], { perMessageDeflate: false });
      const got = await slowRead(ws, 1e12);
      const seconds = (Date.now() - started) / 1000;
      const peak = sampler.stop();
      t.diagnostic(`fast reader: ${got.bytes / MiB} MiB in ${seconds.toFixed(2)} s = ${(got.bytes / MiB / seconds).toFixed(0)} MiB/s; bridge RSS growth ${((peak - baseline) / MiB).toFixed(1)} MiB`);
      assert.equal(got.bytes, total);
      assert.equal(got.hash, await sentHash);
    } finally {
      await cli.stop();
      await source.close();
    }
  });
});
