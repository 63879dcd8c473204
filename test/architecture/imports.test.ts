/**
 * The import rules of DESIGN.md, read from the sources: the toolkit uses the
 * gateway's public surface only (the bridge through its one entry,
 * src/gateway/bridge-entry.ts), and the gateway never imports the parts
 * around it (admin API, dashboard, metrics, cluster, CLI, toolkit, the
 * server composition). Issue 9, section 4.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** What the toolkit may import from src/, besides its own folder: the gateway's public surface (its two entries: the bridge, stdio). */
const TOOLKIT_MAY_IMPORT = ['src/gateway/bridge-entry.ts', 'src/gateway/stdio-entry.ts', 'src/errors.ts', 'src/events.ts', 'src/config/'];

/** What the gateway must never import (DESIGN.md: it is fed snapshots and read through its events). */
const GATEWAY_MUST_NOT_IMPORT = ['src/admin/', 'src/cli/', 'src/toolkit/', 'src/dashboard/', 'src/metrics/', 'src/cluster/', 'src/server/', 'src/server.ts', 'src/index.ts'];

/** What src/metrics may import from src/, besides its own folder: it reads the events, never the gateway (the composition root hands it a tunnel counter). */
const METRICS_MAY_IMPORT = ['src/events.ts', 'src/errors.ts', 'src/admin/guard.ts'];

function sourcesUnder(dir: string): string[] {
  const abs = join(ROOT, dir);
  return readdirSync(abs)
    .sort()
    .flatMap((f) => (statSync(join(abs, f)).isDirectory() ? sourcesUnder(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));
}

interface Import {
  /** As written: `../gateway/bridge-entry.js`, `ws`. */
  specifier: string;
  /** For a relative specifier: the source file it names, relative to the repository (`src/gateway/bridge-entry.ts`); else null. */
  file: string | null;
  /** The names it brings in (`import { a, type B }`), empty for `import x` and `import * as x`. */
  names: string[];
}

/** Every static import and re-export (type-only too) and every `import('…')` of a source. */
function importsOf(file: string, text: string): Import[] {
  const found: Import[] = [];
  const add = (specifier: string, names = '') => {
    const resolved = specifier.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), specifier)).split(sep).join('/').replace(/\.js$/, '.ts') : null;
    const list = names
      .split(',')
      .map((n) => n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0].trim())
      .filter(Boolean);
    found.push({ specifier, file: resolved, names: list });
  };
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?:type\s+)?([^'";]*?)\s+from\s+['"]([^'"]+)['"]/gm)) {
    const braces = /\{([\s\S]*)\}/.exec(m[1]);
    add(m[2], braces ? braces[1] : '');
  }
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) add(m[1]);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1]);
  return found;
}

function importsOfFile(file: string): Import[] {
  return importsOf(file, readFileSync(join(ROOT, file), 'utf8'));
}

const under = (file: string, prefixes: readonly string[]) => prefixes.some((p) => (p.endsWith('/') ? file.startsWith(p) : file === p));

/** `file imports target` for every import of `files` that `bad` says breaks the rule. */
function violations(files: readonly string[], read: (file: string) => Import[], bad: (target: string, from: string) => boolean): string[] {
  return files.flatMap((f) => read(f).filter((i) => i.file !== null && bad(i.file, f)).map((i) => `${f} imports ${i.file}`));
}

const toolkitBreaks = (target: string) => target.startsWith('src/') && !target.startsWith('src/toolkit/') && !under(target, TOOLKIT_MAY_IMPORT);
const gatewayBreaks = (target: string) => under(target, GATEWAY_MUST_NOT_IMPORT);
const metricsBreaks = (target: string) => target.startsWith('src/') && !target.startsWith('src/metrics/') && !under(target, METRICS_MAY_IMPORT);

describe('import rules (DESIGN.md)', () => {
  test('the reader sees static, type-only, re-exported, side-effect and dynamic imports, each resolved to its source file', () => {
    const text = [
      "import { a, type B as C } from '../gateway/bridge.js';",
      "import type { D } from '../gateway/router.js';",
      "export { e } from './e.js';",
      "import '../cli/main.js';",
      'const m = await import("../admin/api.js");',
      "import WebSocket from 'ws';",
      'import {',
      '  multi,',
      '  line,',
      "} from '../gateway/tunnel.js';",
    ].join('\n');
    const seen = importsOf('src/toolkit/x.ts', text);
    assert.deepEqual(seen.map((i) => i.file ?? i.specifier).sort(), ['src/admin/api.ts', 'src/cli/main.ts', 'src/gateway/bridge.ts', 'src/gateway/router.ts', 'src/gateway/tunnel.ts', 'src/toolkit/e.ts', 'ws']);
    assert.deepEqual(seen[0].names, ['a', 'B']);
    assert.deepEqual(seen.find((i) => i.file === 'src/gateway/tunnel.ts')?.names, ['multi', 'line']);
  });

  test('the rules catch a violation: a toolkit file reaching into the gateway, a gateway file importing the CLI', () => {
    const fake: Record<string, string> = {
      'src/toolkit/bad.ts': "import { refuseUpgrade } from '../gateway/upgrade-refusal.js';\nimport { BridgeEntry } from '../gateway/bridge-entry.js';\nimport { ConfigError } from '../errors.js';",
      'src/gateway/bad.ts': "import type { Registry } from '../admin/registry.js';\nimport { main } from '../cli/main.js';\nimport { emit } from '../events.js';",
    };
    const read = (f: string) => importsOf(f, fake[f]);
    assert.deepEqual(violations(['src/toolkit/bad.ts'], read, toolkitBreaks), ['src/toolkit/bad.ts imports src/gateway/upgrade-refusal.ts']);
    assert.deepEqual(violations(['src/gateway/bad.ts'], read, gatewayBreaks), ['src/gateway/bad.ts imports src/admin/registry.ts', 'src/gateway/bad.ts imports src/cli/main.ts']);
  });

  test('src/toolkit imports from src/ only its own files, the bridge entry, errors, events and config', () => {
    const files = sourcesUnder('src/toolkit');
    assert.ok(files.includes('src/toolkit/bridge-server.ts'), 'the toolkit sources are found');
    assert.deepEqual(violations(files, importsOfFile, toolkitBreaks), []);
    // The standalone bridge does use the entry (the rule is not met by a toolkit that lost its bridge).
    assert.ok(importsOfFile('src/toolkit/bridge-server.ts').some((i) => i.file === 'src/gateway/bridge-entry.ts'));
  });

  test('src/gateway never imports the admin API, dashboard, metrics, cluster, CLI, toolkit or the server composition', () => {
    const files = sourcesUnder('src/gateway');
    assert.ok(files.length > 10, `${files.length} gateway sources found`);
    assert.deepEqual(violations(files, importsOfFile, gatewayBreaks), []);
  });

  test('src/metrics imports from src/ only its own files, the events, errors and the admin guard (never the gateway)', () => {
    const files = sourcesUnder('src/metrics');
    assert.ok(files.includes('src/metrics/metrics.ts'), 'the metrics sources are found');
    assert.deepEqual(violations(files, importsOfFile, metricsBreaks), []);
    assert.deepEqual(violations(['src/metrics/bad.ts'], (f) => importsOf(f, "import { Gateway } from '../gateway/gateway.js';"), metricsBreaks), ['src/metrics/bad.ts imports src/gateway/gateway.ts']);
  });

  test("the gateway's bridge apps and `porthole bridge` share the entry: only bridge-entry.ts opens a bridge", () => {
    const openers = sourcesUnder('src').filter((f) => importsOfFile(f).some((i) => i.file === 'src/gateway/bridge.ts' && i.names.includes('openBridge')));
    assert.deepEqual(openers, ['src/gateway/bridge-entry.ts']);
    assert.ok(importsOfFile('src/gateway/upgrade.ts').some((i) => i.file === 'src/gateway/bridge-entry.ts' && i.names.includes('BridgeEntry')), 'upgrade.ts bridges through BridgeEntry');
  });
});
