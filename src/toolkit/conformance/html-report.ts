/**
 * `porthole conformance --html DIR`: the run as one static page a person can
 * read offline and attach to a bug report. No script and no external resource:
 * CSS is inline, cases expand with `<details>`, and a Content-Security-Policy
 * forbids scripts anyway. Everything that came from the server (close reasons,
 * echoed text, which are attacker-controlled) is escaped before it is written.
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ReportDirError } from '../../errors.js';
import { overallVerdict, VERDICTS, type CaseOutcome, type ConformanceReport, type Verdict, type WireRecord } from './report.js';

/** Characters of a payload preview shown; the JSON keeps what the runner recorded. */
const PREVIEW_CHARS = 160;
/** FAILED cases listed at the top and open on arrival; more would bury the page. */
const FAILED_LISTED = 50;
/** Wire records shown per case; the rest are counted and left to report.json. */
const WIRE_ROWS = 200;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside an element or a quoted attribute. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** An id safe in an attribute and a fragment: Autobahn numbers are digits and dots already. */
export function caseAnchor(id: string): string {
  return `case-${id.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

const OPCODES: Record<number, string> = { 0: 'CONT', 1: 'TEXT', 2: 'BINARY', 8: 'CLOSE', 9: 'PING', 10: 'PONG' };

function opcodeName(op: number | undefined): string {
  if (op === undefined) return '?';
  return OPCODES[op] ?? `opcode ${op} (reserved)`;
}

function verdictClass(v: Verdict): string {
  return `v-${v.toLowerCase().replace(/[^a-z]/g, '')}`;
}

function verdictBadge(v: Verdict): string {
  return `<span class="badge ${verdictClass(v)}">${escapeHtml(v)}</span>`;
}

function ms(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

/** Autobahn numbers sorted as numbers: 1.1.2 < 1.1.10 < 2.1. */
function compareIds(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number(pa[i] ?? -1);
    const y = Number(pb[i] ?? -1);
    if (x !== y) return Number.isNaN(x) || Number.isNaN(y) ? String(pa[i]).localeCompare(String(pb[i])) : x - y;
  }
  return 0;
}

/** A close reason is at most 123 bytes on the wire, but the record may hold anything: cut like a preview. */
function reasonText(text: string): string {
  return escapeHtml(text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text);
}

function preview(text: string | undefined, hex = false): string {
  if (text === undefined || text === '') return '';
  const cut = text.length > PREVIEW_CHARS;
  return `${hex ? '<span class="hex" title="not UTF-8: the bytes in hex">hex</span> ' : ''}<code class="preview">${escapeHtml(cut ? text.slice(0, PREVIEW_CHARS) : text)}</code>${cut ? '<span class="more">…</span>' : ''}`;
}

function wireWhat(r: WireRecord): string {
  if (r.kind === 'note' || r.dir === 'note') return `<span class="note">${escapeHtml(r.text ?? '')}</span>`;
  if (r.kind === 'tcp-close') return `<b>TCP closed</b>${r.text ? ` ${escapeHtml(r.text)}` : ''}`;
  if (r.kind === 'bytes') return `<b>raw bytes</b> ${escapeHtml(r.length ?? 0)} B ${preview(r.preview, r.previewHex)}${r.text ? ` <span class="note">${escapeHtml(r.text)}</span>` : ''}`;
  const flags = [
    r.fin === undefined ? '' : r.fin ? 'fin' : '<span class="flag">fin=0</span>',
    r.rsv ? `<span class="flag">rsv=${escapeHtml(r.rsv)}</span>` : '',
    r.masked === undefined ? '' : r.masked ? 'masked' : 'unmasked',
    `len=${escapeHtml(r.length ?? 0)}`,
  ].filter(Boolean);
  let close = '';
  if (r.opcode === 8) {
    close = r.closeCode === undefined ? ' <span class="close">no code</span>' : ` <span class="close">code ${escapeHtml(r.closeCode)}${r.closeReason ? ` reason <q>${reasonText(r.closeReason)}</q>` : ''}</span>`;
  }
  return `<b>${escapeHtml(opcodeName(r.opcode))}</b> <span class="flags">${flags.join(' ')}</span>${close} ${r.opcode === 8 ? '' : preview(r.preview, r.previewHex)}${r.text ? ` <span class="note">${escapeHtml(r.text)}</span>` : ''}`;
}

const DIRS: Record<WireRecord['dir'], string> = { sent: '→ sent', received: '← received', note: '· note' };

function wireTable(c: CaseOutcome): string {
  if (c.wire.length === 0) return '<p class="muted">Nothing crossed the wire.</p>';
  const shown = c.wire.slice(0, WIRE_ROWS);
  const rows = shown.map(
    (r) => `<tr class="d-${escapeHtml(r.dir)}"><td class="num">${escapeHtml(ms(r.at))}</td><td class="dir">${escapeHtml(DIRS[r.dir] ?? r.dir)}</td><td>${wireWhat(r)}</td></tr>`,
  );
  const left = c.wire.length - shown.length;
  const more = left > 0 ? `<p class="muted">${left} more records not shown here: see report.json.</p>` : '';
  const truncated = c.wireTruncated ? '<p class="muted">The runner summarized this long exchange; not every frame is listed.</p>' : '';
  return `<table class="wire"><thead><tr><th>at</th><th>direction</th><th>what</th></tr></thead><tbody>${rows.join('')}</tbody></table>${more}${truncated}`;
}

function caseRow(c: CaseOutcome, open: boolean): string {
  const overall = overallVerdict(c);
  const failed = overall === 'FAILED';
  const remote =
    c.remoteCloseCode === undefined
      ? 'no close frame from the server'
      : `close ${escapeHtml(c.remoteCloseCode)}${c.remoteCloseReason ? ` <q>${reasonText(c.remoteCloseReason)}</q>` : ''}`;
  const dropped = c.droppedBy ? `; TCP closed first by ${escapeHtml(c.droppedBy)}` : '';
  // Listed failed cases start open: they are what the reader came for.
  return `<tr id="${caseAnchor(c.id)}" class="case ${verdictClass(overall)}${failed ? ' failed' : ''}">
<td class="id"><a href="#${caseAnchor(c.id)}">${escapeHtml(c.id)}</a></td>
<td class="desc"><details${open ? ' open' : ''}><summary>${escapeHtml(c.description)}</summary>
<div class="detail">
<p><b>Expected:</b> ${escapeHtml(c.expectation)}</p>
<p class="reason"><b>Why ${escapeHtml(c.behavior)}${c.behaviorClose !== c.behavior ? ` / ${escapeHtml(c.behaviorClose)}` : ''}:</b> ${escapeHtml(c.reason)}</p>
<p><b>Close:</b> ${remote}${dropped}</p>
${wireTable(c)}
</div></details></td>
<td>${verdictBadge(c.behavior)}</td><td>${verdictBadge(c.behaviorClose)}</td><td class="num">${escapeHtml(ms(c.durationMs))}</td>
</tr>`;
}

function counts(cases: readonly CaseOutcome[]): Record<Verdict, number> {
  const out = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const c of cases) out[overallVerdict(c)]++;
  return out;
}

function countList(summary: Record<Verdict, number>, cls: string): string {
  return `<ul class="${cls}">${VERDICTS.map((v) => `<li class="${verdictClass(v)}${summary[v] ? '' : ' zero'}" data-verdict="${v}"><span class="n">${escapeHtml(summary[v] ?? 0)}</span> ${escapeHtml(v)}</li>`).join('')}</ul>`;
}

function familySection(family: string, title: string, cases: CaseOutcome[], opened: ReadonlySet<CaseOutcome>): string {
  return `<section class="family" id="family-${escapeHtml(family.replace(/[^A-Za-z0-9._-]/g, '_'))}">
<h2>${escapeHtml(family)} · ${escapeHtml(title)} <small>${cases.length} ${cases.length === 1 ? 'case' : 'cases'}</small></h2>
${countList(counts(cases), 'counts small')}
<table class="cases"><thead><tr><th>Case</th><th>Description (click for the wire)</th><th>Behavior</th><th>Close</th><th>Duration</th></tr></thead>
<tbody>
${cases.map((c) => caseRow(c, opened.has(c))).join('\n')}
</tbody></table></section>`;
}

/** The whole page, as a string. */
export function renderHtmlReport(report: ConformanceReport): string {
  const sorted = [...report.cases].sort((a, b) => compareIds(a.id, b.id));
  const families = new Map<string, { title: string; cases: CaseOutcome[] }>();
  for (const c of sorted) {
    const f = families.get(c.family) ?? { title: c.familyTitle, cases: [] };
    f.cases.push(c);
    families.set(c.family, f);
  }
  const familyOrder = [...families.keys()].sort(compareIds);
  const failed = sorted.filter((c) => overallVerdict(c) === 'FAILED');
  const listed = failed.slice(0, FAILED_LISTED);
  const more = failed.length - listed.length;
  const failedList =
    failed.length === 0
      ? '<section class="failed-list none"><h2>No case FAILED</h2></section>'
      : `<section class="failed-list"><h2>Failed (${failed.length})</h2><ol>${listed
          .map((c) => `<li><a href="#${caseAnchor(c.id)}">${escapeHtml(c.id)}</a> ${escapeHtml(c.description)} — <span class="muted">${escapeHtml(c.reason)}</span></li>`)
          .join('')}</ol>${more > 0 ? `<p class="more">…and ${more} more FAILED cases, marked red below.</p>` : ''}</section>`;
  const opened = new Set(listed);
  const familyLink = (f: string): string => {
    const nfail = families.get(f)!.cases.filter((c) => overallVerdict(c) === 'FAILED').length;
    return `<a href="#family-${escapeHtml(f.replace(/[^A-Za-z0-9._-]/g, '_'))}">${escapeHtml(f)} ${escapeHtml(families.get(f)!.title)}${nfail ? ` <span class="nfail">${nfail} FAILED</span>` : ''}</a>`;
  };
  const o = report.options;
  const opts = [
    o.cases.length ? `cases ${o.cases.join(', ')}` : 'all cases',
    o.exclude.length ? `excluding ${o.exclude.join(', ')}` : '',
    o.include.length ? `opt-in families ${o.include.join(', ')}` : '',
    `timeout ${ms(o.timeoutMs)}`,
  ].filter(Boolean);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conformance of ${escapeHtml(report.url)}</title>
<style>${CSS}</style></head>
<body>
<header>
<h1>WebSocket conformance of <code class="url">${escapeHtml(report.url)}</code></h1>
<p class="meta">${escapeHtml(report.tool)} ${escapeHtml(report.version)} · started ${escapeHtml(report.startedAt)} · took ${escapeHtml(ms(report.durationMs))} · ${escapeHtml(report.summary.total)} cases · ${escapeHtml(opts.join(' · '))}</p>
${countList(report.summary, 'counts')}
<p class="muted">Case numbers are Autobahn|Testsuite's. A case counts as FAILED when its behavior or its close behavior failed. The same data is in report.json beside this page.</p>
</header>
<main>
${failedList}
<nav class="families">${familyOrder.map(familyLink).join(' ')}</nav>
${familyOrder.map((f) => familySection(f, families.get(f)!.title, families.get(f)!.cases, opened)).join('\n')}
</main>
</body></html>
`;
}

/**
 * Writes DIR/index.html and DIR/report.json (creating DIR) and returns the
 * path of index.html. A DIR that exists as a file, or cannot be written, is a
 * ReportDirError.
 */
export async function writeHtmlReport(report: ConformanceReport, dir: string): Promise<string> {
  const target = await checkReportDir(dir);
  const index = join(target, 'index.html');
  try {
    await mkdir(target, { recursive: true });
    await writeFile(join(target, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(index, renderHtmlReport(report));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ReportDirError(`cannot write the HTML report into ${target}: ${err.code ?? err.message}`, { cause: e });
  }
  return index;
}

/** DIR, resolved, when it is a directory or does not exist yet; else ReportDirError (the CLI checks before a run of minutes). */
export async function checkReportDir(dir: string): Promise<string> {
  const target = resolve(dir);
  const info = await stat(target).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e))).catch((e: NodeJS.ErrnoException) => {
    throw new ReportDirError(`cannot use ${target} for the HTML report: ${e.code ?? e.message}`, { cause: e });
  });
  if (info && !info.isDirectory()) {
    throw new ReportDirError(`cannot write the HTML report into ${target}: it exists and is not a directory (give a directory, e.g. ${target}-report)`);
  }
  return target;
}

const CSS = `
:root{--ok:#1a7f37;--ns:#9a6700;--info:#0969da;--unimpl:#6e7781;--fail:#cf222e;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--alt:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--alt)}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:20px 0 8px}h2 small{font-weight:normal;color:var(--muted);font-size:13px}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
code.url{font-size:18px;word-break:break-all}
main{padding:0 24px 40px}
.meta,.muted{color:var(--muted)}.muted{font-size:13px}
ul.counts{list-style:none;padding:0;margin:10px 0;display:flex;flex-wrap:wrap;gap:8px}
ul.counts li{border:1px solid currentColor;border-radius:6px;padding:4px 10px;font-weight:600;background:#fff}
ul.counts li .n{font-size:18px;margin-right:4px}
ul.counts.small li{padding:1px 8px;font-size:12px}ul.counts.small li .n{font-size:13px}
ul.counts li.zero{opacity:.45}ul.counts.small li.zero{display:none}
.v-ok{color:var(--ok)}.v-nonstrict{color:var(--ns)}.v-informational{color:var(--info)}.v-unimplemented{color:var(--unimpl)}.v-failed{color:var(--fail)}
.badge{display:inline-block;min-width:96px;text-align:center;border-radius:4px;padding:1px 6px;font-size:11px;font-weight:700;color:#fff;white-space:nowrap}
.badge.v-ok{background:var(--ok)}.badge.v-nonstrict{background:var(--ns)}.badge.v-informational{background:var(--info)}.badge.v-unimplemented{background:var(--unimpl)}.badge.v-failed{background:var(--fail)}
.failed-list{border:2px solid var(--fail);border-radius:8px;padding:4px 16px 8px;margin:16px 0;background:#fff5f5}
.failed-list h2{color:var(--fail);margin-top:8px}.failed-list.none{border-color:var(--ok);background:#f0fff4}.failed-list.none h2{color:var(--ok)}
.failed-list ol{margin:0;padding-left:22px}.failed-list li{margin:2px 0}
nav.families{margin:12px 0;display:flex;flex-wrap:wrap;gap:6px}
nav.families a{border:1px solid var(--line);border-radius:12px;padding:1px 10px;text-decoration:none;color:var(--info);font-size:13px}
nav.families .nfail{color:#fff;background:var(--fail);border-radius:8px;padding:0 6px;font-size:11px;font-weight:700}
.failed-list .more{margin:6px 0 2px;color:var(--fail)}
table{border-collapse:collapse;width:100%}
table.cases{table-layout:fixed}
table.cases>*>tr>th,table.cases>tbody>tr>td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;color:var(--fg)}
table.cases>thead>tr>th{background:var(--alt);font-size:12px;position:sticky;top:0;z-index:1}
table.cases>thead>tr>th:nth-child(1){width:80px}table.cases>thead>tr>th:nth-child(3),table.cases>thead>tr>th:nth-child(4){width:124px}table.cases>thead>tr>th:nth-child(5){width:80px}
table.cases>tbody>tr>td.id a{font-weight:600;text-decoration:none;color:inherit}
table.cases>tbody>tr.v-ok>td.id{color:var(--ok)}table.cases>tbody>tr.v-nonstrict>td.id{color:var(--ns)}table.cases>tbody>tr.v-informational>td.id{color:var(--info)}table.cases>tbody>tr.v-unimplemented>td.id{color:var(--unimpl)}table.cases>tbody>tr.v-failed>td.id{color:var(--fail)}
tr.case.failed{background:#fff5f5}tr.case.failed>td:first-child{box-shadow:inset 4px 0 0 var(--fail)}
/* Below the sticky column header when reached by a link. */
tr.case{scroll-margin-top:36px}tr.case:target{outline:2px solid var(--info)}
td.desc{color:var(--fg);overflow-wrap:anywhere}
summary{cursor:pointer}
/* The open case runs under the verdict columns too (they hold one line): the wire gets the page's width. */
.detail{position:relative;margin:6px -334px 4px 0;padding:6px 10px;border-left:3px solid var(--line);background:var(--alt)}
tr.failed .detail{border-left-color:var(--fail)}
.detail p{margin:4px 0}
tr.failed .reason{color:var(--fail)}
table.wire{margin-top:6px;background:#fff;font-size:12px;table-layout:fixed}
table.wire th,table.wire td{border:1px solid var(--line);padding:2px 6px;text-align:left;vertical-align:top}
table.wire th:nth-child(1){width:70px}table.wire th:nth-child(2){width:96px}table.wire td:nth-child(2){white-space:nowrap}table.wire td:nth-child(3){overflow-wrap:anywhere}
tr.d-sent td.dir{color:var(--info)}tr.d-received td.dir{color:var(--ok)}tr.d-note td{color:var(--muted)}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code.preview{background:var(--alt);padding:0 3px;white-space:pre-wrap;overflow-wrap:anywhere}
/* Server text may carry bidi overrides (U+202E): isolated, it cannot reorder the report around it. */
q,code.preview,.note{unicode-bidi:isolate}
.flag{color:var(--fail);font-weight:600}.hex{font-size:10px;font-weight:700;color:var(--muted);border:1px solid var(--line);border-radius:3px;padding:0 3px}.close{font-weight:600}.note{font-style:italic}
`;
