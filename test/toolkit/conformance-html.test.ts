/**
 * The HTML report of `porthole conformance`, read the way a person reads it:
 * written to a directory, opened in Chromium from disk, checked through the
 * DOM (a table per family, the counts, the failed list, expanding a case) and
 * attacked through what a server controls (close reasons, echoed text).
 * Screenshots go to $PORTHOLE_SCREENSHOTS when set, else to the test's temp dir.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ReportDirError } from '../../src/errors.js';
import { writeHtmlReport } from '../../src/toolkit/conformance/html-report.js';
import { overallVerdict, VERDICTS, type CaseOutcome, type ConformanceReport, type Verdict, type WireRecord } from '../../src/toolkit/conformance/report.js';
import { launchChromium } from '../helpers/browser.js';

const SCRIPT_REASON = '<script>window.__pwned = "script"; alert(1)</script>';
const DETAILS_BREAKOUT = '</details><img src=x onerror="window.__pwned=\'img\'">';
const ATTR_BREAKOUT = '" onmouseover="window.__pwned=\'attr\'" x="';

function frame(at: number, dir: 'sent' | 'received', opcode: number, preview: string, extra: Partial<WireRecord> = {}): WireRecord {
  return { at, dir, kind: 'frame', opcode, fin: true, rsv: 0, masked: dir === 'sent', length: Buffer.byteLength(preview), preview, ...extra };
}

function closeFrame(at: number, dir: 'sent' | 'received', code: number, reason = ''): WireRecord {
  return { at, dir, kind: 'frame', opcode: 8, fin: true, rsv: 0, masked: dir === 'sent', length: 2 + Buffer.byteLength(reason), closeCode: code, closeReason: reason };
}

function outcome(id: string, family: string, familyTitle: string, behavior: Verdict, behaviorClose: Verdict, rest: Partial<CaseOutcome> = {}): CaseOutcome {
  return {
    id,
    family,
    familyTitle,
    description: `Case ${id}: send a message and expect it echoed`,
    expectation: 'The server echoes the message, then closes normally (1000).',
    behavior,
    behaviorClose,
    reason: behavior === 'OK' ? 'Echo matched; clean close.' : `Verdict ${behavior} for ${id}.`,
    durationMs: 3 + Number(id.replace(/\D/g, '').slice(-2)),
    remoteCloseCode: 1000,
    droppedBy: 'server',
    wire: [
      frame(0, 'sent', 1, 'Hello, world!'),
      frame(2, 'received', 1, 'Hello, world!'),
      closeFrame(3, 'sent', 1000),
      closeFrame(4, 'received', 1000),
      { at: 5, dir: 'received', kind: 'tcp-close' },
    ],
    ...rest,
  };
}

/** A run against a server that fails a few cases, one of them with a hostile close reason. */
function realisticReport(): ConformanceReport {
  const cases: CaseOutcome[] = [
    outcome('1.1.1', '1', 'Framing', 'OK', 'OK', { description: 'Send text message with payload 0.' }),
    outcome('1.1.2', '1', 'Framing', 'OK', 'OK', { description: 'Send text message message with payload of length 125.' }),
    outcome('1.2.1', '1', 'Framing', 'OK', 'OK', { description: 'Send binary message with payload 0.' }),
    outcome('2.1', '2', 'Pings/Pongs', 'OK', 'OK', { description: 'Send ping without payload.' }),
    outcome('2.3', '2', 'Pings/Pongs', 'FAILED', 'OK', {
      description: 'Send ping with binary payload 0xfe 0xff.',
      expectation: 'A pong with the same payload.',
      reason: 'The pong carried "fe ff 00", not the ping\'s payload "fe ff".',
      wire: [frame(0, 'sent', 9, 'feff'), frame(1, 'received', 10, 'feff00'), closeFrame(2, 'sent', 1000), closeFrame(3, 'received', 1000)],
    }),
    outcome('3.1', '3', 'Reserved Bits', 'NON-STRICT', 'OK', {
      description: 'Send small text message with RSV = 1.',
      reason: 'The server closed without a close frame: allowed, but not the strict reading.',
      remoteCloseCode: undefined,
      wire: [frame(0, 'sent', 1, 'Hello, world!', { rsv: 1 }), { at: 1, dir: 'received', kind: 'tcp-close' }],
    }),
    outcome('4.1.1', '4', 'Opcodes', 'OK', 'OK', { description: 'Send frame with reserved non-control opcode = 3.' }),
    outcome('5.1', '5', 'Fragmentation', 'OK', 'OK', { description: 'Send ping in 2 fragments.' }),
    outcome('5.15', '5', 'Fragmentation', 'NON-STRICT', 'NON-STRICT', { description: 'Send text message in 2 fragments, then continuation with FIN = false.' }),
    outcome('6.4.1', '6', 'UTF-8 Handling', 'NON-STRICT', 'OK', {
      description: 'Send invalid UTF-8 in three fragments; the middle one makes it invalid.',
      wire: [frame(0, 'sent', 1, 'κόσμε', { fin: false }), frame(1, 'sent', 0, 'f4908080', { fin: false, previewHex: true, length: 4 }), closeFrame(9, 'received', 1007, 'invalid UTF-8')],
    }),
    outcome('6.20.1', '6', 'UTF-8 Handling', 'FAILED', 'FAILED', {
      description: 'Send text message with payload: single UTF-16 surrogate U+D800.',
      expectation: 'The server fails fast: close 1007.',
      reason: 'The server echoed invalid UTF-8 instead of closing with 1007.',
      remoteCloseCode: 1000,
      wire: [frame(0, 'sent', 1, 'eda080'), frame(1, 'received', 1, 'eda080', { text: 'echoed as it was' }), closeFrame(2, 'sent', 1000), closeFrame(3, 'received', 1000)],
    }),
    outcome('7.1.1', '7', 'Close Handling', 'OK', 'OK', { description: 'Send a message followed by a close frame.' }),
    outcome('7.5.1', '7', 'Close Handling', 'FAILED', 'FAILED', {
      description: 'Send a close frame with invalid UTF-8 payload.',
      expectation: 'Close 1007 (or a dropped TCP connection).',
      reason: 'The server answered close 1000 with a hostile reason instead of 1007.',
      remoteCloseCode: 1000,
      remoteCloseReason: SCRIPT_REASON,
      wire: [
        closeFrame(0, 'sent', 1000, 'cebae1bdb9cf83cebcceb5eda080656469746564'),
        closeFrame(1, 'received', 1000, SCRIPT_REASON),
        frame(2, 'received', 1, DETAILS_BREAKOUT),
        frame(3, 'received', 1, ATTR_BREAKOUT),
        { at: 4, dir: 'note', kind: 'note', text: 'waiting 1 s for the TCP close' },
        { at: 1004, dir: 'received', kind: 'tcp-close' },
      ],
    }),
    outcome('7.13.1', '7', 'Close Handling', 'INFORMATIONAL', 'INFORMATIONAL', { description: 'Send close with close code 5000.', reason: 'Code 5000 is outside the defined range; recorded, not judged.' }),
    outcome('9.1.6', '9', 'Limits/Performance', 'OK', 'OK', {
      description: 'Send text message message with payload of length 16 * 2**20 (16M).',
      durationMs: 2870,
      wireTruncated: true,
      wire: [frame(0, 'sent', 1, '*'.repeat(256), { length: 16 << 20 }), frame(2860, 'received', 1, '*'.repeat(256), { length: 16 << 20 })],
    }),
    outcome('12.1.1', '12', 'WebSocket Compression (different payloads)', 'UNIMPLEMENTED', 'UNIMPLEMENTED', {
      description: 'Send 1000 compressed messages each of payload size 16, auto-fragment to 0 octets.',
      reason: 'The server declined permessage-deflate.',
      wire: [{ at: 0, dir: 'note', kind: 'note', text: 'the 101 had no Sec-WebSocket-Extensions' }],
    }),
    outcome('10.1.1', '10', 'Misc', 'OK', 'OK', { description: 'Send text message with payload of length 65536 auto-fragmented with autoFragmentSize = 1300.' }),
  ];
  return reportOf(cases);
}

function reportOf(cases: CaseOutcome[]): ConformanceReport {
  const summary = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number> & { total: number };
  for (const c of cases) summary[overallVerdict(c)]++;
  summary.total = cases.length;
  return {
    tool: 'porthole conformance',
    version: '0.12.0',
    url: 'ws://127.0.0.1:9001/echo?token=<b>x</b>',
    startedAt: '2026-12-02T10:15:00.000Z',
    durationMs: 41_250,
    options: { cases: ['*'], exclude: [], include: ['9', '12'], timeoutMs: 5000 },
    summary,
    cases,
  };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ph-conf-html-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openPage(t: TestContext, index: string): Promise<{ page: Page; events: string[] }> {
  const browser: Browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const events: string[] = [];
  page.on('dialog', (d) => {
    events.push(`dialog ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) events.push(`request ${r.url()}`);
  });
  page.on('pageerror', (e) => events.push(`pageerror ${e.message}`));
  await page.goto(pathToFileURL(index).href);
  return { page, events };
}

function shotPath(dir: string, name: string): string {
  return join(process.env.PORTHOLE_SCREENSHOTS ?? dir, name);
}

test('the report has a header with the counts, a failed list linking to the cases, and a table per family', async (t) => {
  const dir = await tempDir(t);
  const report = realisticReport();
  const index = await writeHtmlReport(report, join(dir, 'out', 'nested'));
  assert.equal(index, join(dir, 'out', 'nested', 'index.html'));
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'out', 'nested', 'report.json'), 'utf8')), JSON.parse(JSON.stringify(report)), 'report.json is the document');
  const { page, events } = await openPage(t, index);

  assert.equal(await page.locator('h1 code.url').textContent(), report.url);
  const header = await page.locator('header ul.counts li').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-verdict'), li.querySelector('.n')!.textContent]));
  assert.deepEqual(header, VERDICTS.map((v) => [v, String(report.summary[v])]));
  assert.deepEqual(report.summary, { OK: 9, 'NON-STRICT': 3, INFORMATIONAL: 1, UNIMPLEMENTED: 1, FAILED: 3, total: 17 });
  // The FAILED count is drawn in the failure colour, OK in green.
  const colours = await page.locator('header ul.counts li').evaluateAll((lis) => lis.map((li) => getComputedStyle(li).color));
  assert.equal(colours[VERDICTS.indexOf('FAILED')], 'rgb(207, 34, 46)');
  assert.equal(colours[VERDICTS.indexOf('OK')], 'rgb(26, 127, 55)');

  // One section and one table per family, in Autobahn's order, with every case.
  const families = await page.locator('section.family').evaluateAll((ss) => ss.map((s) => [s.id, s.querySelectorAll('table.cases').length, s.querySelectorAll('tbody > tr.case').length]));
  assert.deepEqual(families, [
    ['family-1', 1, 3], ['family-2', 1, 2], ['family-3', 1, 1], ['family-4', 1, 1], ['family-5', 1, 2], ['family-6', 1, 2],
    ['family-7', 1, 3], ['family-9', 1, 1], ['family-10', 1, 1], ['family-12', 1, 1],
  ]);
  assert.deepEqual(await page.locator('section#family-5 tr.case td.id').allTextContents(), ['5.1', '5.15'], 'numeric order: 5.1 before 5.15');
  assert.equal(await page.locator('section#family-3 h2 small').textContent(), '1 case');
  assert.equal(await page.locator('section#family-5 h2 small').textContent(), '2 cases');
  assert.deepEqual(await page.locator('section.family table.cases thead th').first().textContent(), 'Case');
  const row = await page.locator('tr#case-3\\.1 > td').allTextContents();
  assert.equal(row[0], '3.1');
  assert.equal(row[2], 'NON-STRICT');
  assert.equal(row[3], 'OK');
  assert.equal(row[4], '34 ms');

  // The failed list: exactly the failed cases, each a link that lands on its row, which is open.
  const failed = await page.locator('.failed-list li a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(failed, ['#case-2.3', '#case-6.20.1', '#case-7.5.1']);
  await page.locator('.failed-list a[href="#case-7.5.1"]').click();
  assert.equal(await page.evaluate(() => location.hash), '#case-7.5.1');
  const target = page.locator('tr#case-7\\.5\\.1');
  assert.equal(await target.evaluate((tr) => tr.matches(':target') && tr.classList.contains('failed')), true);
  assert.equal(await target.locator('details').evaluate((d) => (d as HTMLDetailsElement).open), true, 'a failed case starts open');
  assert.ok(await target.locator('table.wire').isVisible());
  assert.ok(await target.evaluate((tr) => { const r = tr.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }), 'the row is scrolled into view');
  await page.screenshot({ path: shotPath(dir, 'conformance-report-failed.png') });
  await page.evaluate(() => scrollTo(0, 0));
  await page.screenshot({ path: shotPath(dir, 'conformance-report.png') });
  t.diagnostic(`screenshots in ${process.env.PORTHOLE_SCREENSHOTS ?? dir}`);
  assert.deepEqual(events, [], 'no dialog, no request off disk, no page error');
});

test('expanding a passing case shows what was sent, what came back, and why the verdict', async (t) => {
  const dir = await tempDir(t);
  const index = await writeHtmlReport(realisticReport(), dir);
  const { page } = await openPage(t, index);
  const row = page.locator('tr#case-6\\.4\\.1');
  assert.equal(await row.locator('details').evaluate((d) => (d as HTMLDetailsElement).open), false, 'a case that did not fail starts closed');
  assert.equal(await row.locator('table.wire').isVisible(), false);
  await row.locator('summary').click();
  assert.ok(await row.locator('table.wire').isVisible());
  const wire = await row.locator('table.wire tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.replace(/\s+/g, ' ').trim())));
  assert.deepEqual(wire, [
    ['0 ms', '→ sent', 'TEXT fin=0 masked len=10 κόσμε'],
    ['1 ms', '→ sent', 'CONT fin=0 masked len=4 hex f4908080'],
    ['9 ms', '← received', 'CLOSE fin unmasked len=15 code 1007 reason invalid UTF-8'],
  ]);
  assert.match(await row.locator('.reason').textContent() ?? '', /^Why NON-STRICT \/ OK: Verdict NON-STRICT for 6\.4\.1\.$/);
  assert.match(await row.locator('.detail').textContent() ?? '', /Expected: The server echoes/);
  // Reserved bits and non-final frames are flagged so they catch the eye.
  await page.locator('tr#case-3\\.1 summary').click();
  assert.equal(await page.locator('tr#case-3\\.1 table.wire .flag').first().textContent(), 'rsv=1');
  await row.scrollIntoViewIfNeeded();
  await page.screenshot({ path: shotPath(dir, 'conformance-report-expanded.png') });
});

test('what a server sends is shown as text, never as markup: no element injected, no script run', async (t) => {
  const dir = await tempDir(t);
  const index = await writeHtmlReport(realisticReport(), dir);
  const html = await readFile(index, 'utf8');
  assert.ok(!html.includes('<script'), 'no script tag in the file');
  assert.ok(!html.includes('<img'), 'no img tag in the file');
  const { page, events } = await openPage(t, index);
  assert.equal(await page.evaluate(() => document.querySelectorAll('script, img, iframe, object, embed').length), 0);
  assert.equal(await page.evaluate(() => [...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length), 0, 'no event-handler attribute anywhere');
  const row = page.locator('tr#case-7\\.5\\.1');
  // The hostile strings are all there, as text, inside this one case.
  const detailText = await row.locator('.detail').textContent();
  assert.ok(detailText!.includes(SCRIPT_REASON), 'the close reason is shown literally');
  assert.ok(detailText!.includes(DETAILS_BREAKOUT), 'the echoed </details> is shown literally');
  assert.ok(detailText!.includes(ATTR_BREAKOUT), 'the echoed quote is shown literally');
  assert.equal(await row.locator('details').count(), 1, 'the </details> did not close the case early');
  assert.equal(await page.locator('tr#case-7\\.5\\.1 table.wire tbody tr').count(), 6, 'every record stays inside the case');
  // The URL (which has markup in its query) is text too.
  assert.equal(await page.locator('h1 code.url b').count(), 0);
  await row.locator('table.wire').hover();
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned), undefined, 'no script ran');
  assert.deepEqual(events, []);
});

test('a close reason with bidi overrides cannot reorder the text around it', async (t) => {
  const dir = await tempDir(t);
  // U+202E (right-to-left override) with no U+202C would flip what follows on the line.
  const spoof = '\u202Edeliated: OK';
  const report = reportOf([
    outcome('7.1.1', '7', 'Close Handling', 'FAILED', 'FAILED', {
      remoteCloseReason: spoof,
      wire: [closeFrame(0, 'received', 1000, spoof), frame(1, 'received', 1, spoof)],
    }),
  ]);
  const { page } = await openPage(t, await writeHtmlReport(report, dir));
  const isolated = await page.locator('tr#case-7\\.1\\.1 q, tr#case-7\\.1\\.1 code.preview').evaluateAll((els) => els.map((e) => getComputedStyle(e).unicodeBidi));
  assert.equal(isolated.length, 3);
  assert.deepEqual(isolated, ['isolate', 'isolate', 'isolate']);
});

test('500+ cases with long previews and long wire logs: capped rendering, still one page that reads', async (t) => {
  const dir = await tempDir(t);
  const cases: CaseOutcome[] = [];
  for (let i = 1; i <= 520; i++) {
    const family = String([1, 5, 6, 7, 9][i % 5]);
    const verdict: Verdict = i % 97 === 0 ? 'FAILED' : 'OK';
    const wire: WireRecord[] = [];
    const records = i === 7 ? 450 : 6;
    for (let k = 0; k < records; k++) wire.push(frame(k, k % 2 ? 'received' : 'sent', 2, 'ab'.repeat(128), { length: 16 << 20 }));
    cases.push(outcome(`${family}.${Math.ceil(i / 5)}.${i}`, family, `Family ${family}`, verdict, 'OK', { wire, wireTruncated: family === '9' }));
  }
  cases[0]!.remoteCloseReason = 'r'.repeat(5000);
  const report = reportOf(cases);
  const index = await writeHtmlReport(report, dir);
  const { page, events } = await openPage(t, index);
  assert.equal(await page.locator('tr.case').count(), 520);
  assert.equal(await page.locator('tr#case-5\\.1\\.1 .detail > p q').textContent(), `${'r'.repeat(160)}…`, 'a long close reason is cut too');
  assert.equal(await page.locator('.failed-list li').count(), 5);
  assert.equal(await page.locator('header li[data-verdict="FAILED"] .n').textContent(), '5');
  // Previews are cut at 160 characters with a mark; the full 256 stay in report.json.
  const longest = await page.evaluate(() => Math.max(...[...document.querySelectorAll('code.preview')].map((c) => c.textContent!.length)));
  assert.equal(longest, 160);
  // Case 6.2.7 has 450 records: 200 are shown, the rest counted.
  const big = page.locator('tr.case').filter({ has: page.locator('td.id', { hasText: /^6\.2\.7$/ }) });
  assert.equal(await big.locator('table.wire tbody tr').count(), 200);
  assert.match(await big.locator('.detail').textContent() ?? '', /250 more records not shown here: see report\.json\./);
  assert.match(await page.locator('tr.case').filter({ has: page.locator('td.id', { hasText: /^9\.1\.4$/ }) }).locator('.detail').textContent() ?? '', /summarized this long exchange/);
  // Every link of the failed list lands on its row, deep in the page, below the sticky table header.
  for (const href of await page.locator('.failed-list li a').evaluateAll((as) => as.map((a) => a.getAttribute('href')!))) {
    await page.locator(`.failed-list a[href="${href}"]`).click();
    const place = await page.evaluate((id) => {
      const row = document.getElementById(id)!;
      const r = row.getBoundingClientRect();
      const th = row.closest('table')!.querySelector('thead th')!.getBoundingClientRect();
      return { top: r.top, headerBottom: th.bottom, viewport: innerHeight };
    }, href.slice(1));
    assert.ok(place.top >= place.headerBottom - 1 && place.top < place.viewport / 2, `${href} is on screen, not under the header: ${JSON.stringify(place)}`);
  }
  await page.screenshot({ path: shotPath(dir, 'conformance-report-large.png') });
  const json = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as ConformanceReport;
  assert.equal(json.cases[6]!.wire.length, 450);
  assert.deepEqual(events, []);
});

test('a server that fails hundreds of cases: the failed list stays short, the families say where the failures are', async (t) => {
  const dir = await tempDir(t);
  const cases: CaseOutcome[] = [];
  for (let i = 1; i <= 300; i++) cases.push(outcome(`6.${i}.1`, '6', 'UTF-8 Handling', i % 3 === 0 ? 'OK' : 'FAILED', 'OK'));
  cases.push(outcome('1.1.1', '1', 'Framing', 'OK', 'OK'));
  const { page } = await openPage(t, await writeHtmlReport(reportOf(cases), dir));
  assert.equal(await page.locator('.failed-list h2').textContent(), 'Failed (200)');
  assert.equal(await page.locator('.failed-list li').count(), 50, 'the first 50 are listed');
  assert.match(await page.locator('.failed-list .more').textContent() ?? '', /^…and 150 more FAILED cases, marked red below\.$/);
  // The listed ones start open; the others are closed so the page stays short.
  assert.equal(await page.locator('tr.case.failed details[open]').count(), 50);
  assert.equal(await page.locator('tr#case-6\\.2\\.1 details').evaluate((d) => (d as HTMLDetailsElement).open), true);
  assert.equal(await page.locator('tr#case-6\\.299\\.1 details').evaluate((d) => (d as HTMLDetailsElement).open), false);
  assert.deepEqual(await page.locator('nav.families a').allTextContents(), ['1 Framing', '6 UTF-8 Handling 200 FAILED']);
  assert.equal(await page.locator('nav.families a .nfail').count(), 1);
});

test('a directory that is a file, or under a file, is refused with PH_ERR_REPORT_DIR', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'report.html');
  await writeFile(file, 'not a directory');
  await assert.rejects(writeHtmlReport(realisticReport(), file), (e: unknown) => e instanceof ReportDirError && e.code === 'PH_ERR_REPORT_DIR' && /exists and is not a directory/.test(e.message));
  assert.equal(await readFile(file, 'utf8'), 'not a directory', 'the file is left alone');
  await assert.rejects(writeHtmlReport(realisticReport(), join(file, 'sub')), (e: unknown) => e instanceof ReportDirError && /ENOTDIR/.test(e.message));
});

test('a run where nothing failed says so instead of an empty failed list', async (t) => {
  const dir = await tempDir(t);
  const index = await writeHtmlReport(reportOf([outcome('1.1.1', '1', 'Framing', 'OK', 'OK')]), dir);
  const { page } = await openPage(t, index);
  assert.equal(await page.locator('.failed-list h2').textContent(), 'No case FAILED');
  assert.equal(await page.locator('.failed-list li').count(), 0);
});
