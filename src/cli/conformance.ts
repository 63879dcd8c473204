/**
 * `porthole conformance URL`: run Autobahn|Testsuite's fuzzing-client cases
 * against a WebSocket echo endpoint (see src/toolkit/conformance/). This file
 * turns flags into options, shows progress, and prints the summary or JSON.
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { PortholeError } from '../errors.js';
import { selectCases, INCLUDABLE } from '../toolkit/conformance/case-registry.js';
import { checkReportDir, writeHtmlReport } from '../toolkit/conformance/html-report.js';
import { FAMILY_TITLES } from '../toolkit/conformance/case-types.js';
import type { ConformanceReport } from '../toolkit/conformance/report.js';
import { overallVerdict } from '../toolkit/conformance/report.js';
import { DEFAULT_TIMEOUT_MS, runConformance } from '../toolkit/conformance/run-conformance.js';
import { formatProgress, formatSummary } from '../toolkit/conformance/summary-text.js';
import { abortOnSignals, collectHeader, mergeHeaders, parseWsUrl, readFileArg } from './ws-client-options.js';

interface ConformanceFlags {
  cases?: string[];
  exclude?: string[];
  include?: string[];
  timeout: number;
  json?: boolean;
  html?: string;
  origin?: string;
  header?: [string, string][];
  insecure?: boolean;
  ca?: Buffer;
  list?: boolean;
  progress: boolean;
}



export function register(program: Command): void {
  program
    .command('conformance')
    .summary('run Autobahn|Testsuite-style protocol cases against a WebSocket echo endpoint')
    .description(
      'Connect to URL once per case and send what the case says — valid and malformed frames, reserved bits and opcodes, ' +
        'fragments, pings, invalid UTF-8, close frames with good and bad codes — then judge what the server does, with ' +
        'Autobahn|Testsuite’s case numbers and verdicts (OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED, FAILED), so the ' +
        'results compare line by line with Autobahn’s reports. The endpoint must echo every message back.',
    )
    .addArgument(new Argument('[url]', 'the echo endpoint (ws://, wss://; http(s):// is tested as ws(s)://)').argParser(parseWsUrl))
    .option('--cases <patterns>', 'only these case ids, comma-separated globs (1.*,5.1.*,6.4); repeatable', collectList)
    .option('--exclude <patterns>', 'leave out these case ids (same globs); repeatable', collectList)
    .option('--include <families>', `opt-in families to run too: ${INCLUDABLE.join(', ')} (9 limits and performance; 12 and 13 permessage-deflate)`, collectInclude)
    .addOption(new Option('--timeout <ms>', 'per case: how long to wait for an echo, a close, or the TCP close').argParser(parsePositiveMs).default(DEFAULT_TIMEOUT_MS))
    .option('--json', 'print the whole report as one JSON document on stdout (nothing else on stdout)')
    .option('--html <dir>', 'also write a readable report (index.html) into this directory')
    .option('--origin <origin>', 'send this Origin header', parseOrigin)
    .option('-H, --header <header>', 'send a handshake header "Name: value" (repeatable)', collectHeader)
    .option('--insecure', 'wss: accept any certificate')
    .option('--ca <file>', 'wss: trust the CA certificate(s) in this PEM file', readFileArg)
    .option('--list', 'print the selected case ids and descriptions, without connecting')
    .option('--no-progress', 'no progress line on stderr (it is shown only on a terminal anyway)')
    .addHelpText(
      'after',
      `
Families: 1 framing, 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
7 close handling, 10 misc; opt-in: 9 limits/performance (--include 9, or --cases 9.x.y),
12 and 13 permessage-deflate (--include 12,13: 1000 compressed round trips per case).
Each case runs on its own connection; the run takes about 15 s against a local echo server.

Verdicts (Autobahn's): OK; NON-STRICT (allowed, but not the strict reading: e.g. invalid
UTF-8 caught at the end of the message instead of at the bad byte); INFORMATIONAL (nothing
to judge, what happened is recorded); UNIMPLEMENTED; FAILED (the reason says what was
expected and what came).

Examples:
  porthole echo --port 9001 &
  porthole conformance ws://127.0.0.1:9001/                  all of 1-7 and 10, a summary table
  porthole conformance ws://127.0.0.1:9001/ --cases 5.*,6.4  fragmentation and UTF-8 fail-fast only
  porthole conformance ws://127.0.0.1:9001/ --exclude 6.*    everything but UTF-8
  porthole conformance ws://127.0.0.1:9001/ --include 9 --timeout 60000
  porthole conformance ws://127.0.0.1:9001/ --cases 12.1.*,13.*.1   compression: JSON at every size, each offer once
  porthole conformance ws://127.0.0.1:50000/echo/ --json > report.json
  porthole conformance --list --cases 7.9.*                  the invalid close codes, without connecting

Exit codes:
  0  no case FAILED
  1  a case FAILED, or the endpoint cannot be reached or refused the upgrade
     (PH_ERR_CONFORMANCE_CONNECT, PH_ERR_CONFORMANCE_HANDSHAKE)
  2  bad usage (no URL, a pattern that matches no case, an unknown family)`,
    )
    .action(async (url: string | undefined, flags: ConformanceFlags, command: Command) => {
      const sel = selectCases(flags.cases ?? [], flags.exclude ?? [], flags.include ?? []);
      if (sel.unknown.length > 0) {
        command.error(`porthole conformance: no case matches ${sel.unknown.map((p) => `"${p}"`).join(', ')}\nhint: case ids are Autobahn's numbers, e.g. 1.1.1, 5.*, 6.4, 7.9.*; see them all with porthole conformance --list`, { exitCode: 2, code: 'conformance.unknownCase' });
      }
      if (flags.list) {
        if (flags.json) process.stdout.write(`${JSON.stringify(sel.cases.map((c) => ({ id: c.id, family: c.id.split('.')[0], familyTitle: FAMILY_TITLES[c.id.split('.')[0]], description: c.description, expectation: c.expectation })), null, 2)}\n`);
        else for (const c of sel.cases) process.stdout.write(`${c.id.padEnd(8)} ${c.description}\n`);
        return;
      }
      if (!url) command.error('porthole conformance: missing URL (the echo endpoint to test), e.g. porthole conformance ws://127.0.0.1:9001/', { exitCode: 2, code: 'conformance.missingUrl' });
      if (sel.cases.length === 0) command.error('porthole conformance: --cases and --exclude leave no case to run', { exitCode: 2, code: 'conformance.noCase' });

      if (flags.html) {
        // Before a run of many seconds, not after it: a file where the directory should be.
        const problem = await checkReportDir(flags.html).then(() => undefined, (err: PortholeError) => err);
        if (problem) command.error(`porthole conformance: --html: ${problem.code}: ${problem.message}`, { exitCode: 2, code: 'conformance.htmlDir' });
      }
      const abort = abortOnSignals();
      const tty = Boolean(process.stderr.isTTY) && flags.progress && !flags.json;
      let failedSoFar = 0;
      let report: ConformanceReport;
      try {
        report = await runConformance({
          url,
          cases: flags.cases,
          exclude: flags.exclude,
          include: flags.include,
          timeoutMs: flags.timeout,
          origin: flags.origin,
          headers: mergeHeaders(flags.header ?? []),
          insecure: Boolean(flags.insecure),
          ca: flags.ca,
          signal: abort.signal,
          onCase: (outcome, i, total) => {
            if (overallVerdict(outcome) === 'FAILED') failedSoFar++;
            if (tty) process.stderr.write(`\r\x1b[K${formatProgress(outcome, i, total, failedSoFar)}`);
          },
        });
      } catch (err) {
        if (tty) process.stderr.write('\r\x1b[K');
        if (err instanceof PortholeError) {
          process.stderr.write(`porthole conformance: ${err.code}: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
      if (tty) process.stderr.write('\r\x1b[K');
      if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(`${formatSummary(report)}\n`);
      if (flags.html) {
        try {
          process.stderr.write(`report written to ${await writeHtmlReport(report, flags.html)}\n`);
        } catch (err) {
          if (!(err instanceof PortholeError)) throw err;
          process.stderr.write(`porthole conformance: ${err.code}: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
      }
      if (abort.signal.aborted) process.stderr.write(`interrupted after ${report.summary.total} case${report.summary.total === 1 ? '' : 's'}\n`);
      process.exitCode = report.summary.FAILED > 0 || abort.signal.aborted ? 1 : 0;
    });
}

function collectList(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('expected comma-separated case ids or globs, e.g. 1.*,5.1.*');
  for (const p of items) if (!/^[0-9.*?]+$/.test(p)) throw new InvalidArgumentError(`"${p}" is not a case pattern: use digits, dots and * (e.g. 6.4.*).`);
  return [...(previous ?? []), ...items];
}

function collectInclude(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const f of items) {
    if (!INCLUDABLE.includes(f)) throw new InvalidArgumentError(`"${f}" is not an opt-in family: expected ${INCLUDABLE.join(', ')} (families 1-7 and 10 always run).`);
  }
  return [...new Set([...(previous ?? []), ...items])];
}

function parsePositiveMs(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 100 || n > 600_000) throw new InvalidArgumentError('expected milliseconds, 100–600000.');
  return n;
}

function parseOrigin(value: string): string {
  if (/[\r\n\0]/.test(value) || !value.trim()) throw new InvalidArgumentError('expected an origin like https://app.example.com (no line breaks).');
  return value.trim();
}
