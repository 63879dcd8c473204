/**
 * Config from a YAML file: read, parse, validate, and watch for changes.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseConfig, withApps, type Config } from './schema.js';

/** Reads and validates a config file. Throws ConfigError (every problem listed) on failure. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`], file);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      // The yaml message ends with its own " at line L, column C:" and an excerpt that
      // may start a line early; say the position once and show the line itself.
      const message = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw new ConfigError([yamlProblem(text, message, err.linePos?.[0])], file);
    }
    throw err;
  }
  const config = parseConfig(raw ?? {}, file);
  // An app's relative cwd means "next to the config file", wherever the gateway was started from.
  const base = dirname(resolve(file));
  if (!config.apps.some((a) => a.cwd !== undefined && !isAbsolute(a.cwd))) return config;
  return withApps(
    config,
    config.apps.map((a) => (a.cwd !== undefined && !isAbsolute(a.cwd) ? { ...a, cwd: resolve(base, a.cwd) } : a)),
  );
}

/**
 * `line L, column C: message`, then the offending line with a caret under
 * the column (tabs shown as spaces so the caret lines up). A position past
 * the last line (an unclosed bracket or quote) is named as the end of the
 * file, with the last line that has text.
 */
export function yamlProblem(text: string, message: string, at: { line: number; col: number } | undefined): string {
  if (!at) return message;
  const lines = text.split(/\r?\n/);
  let n = at.line;
  let col = at.col;
  const atEnd = n > lines.length || (lines.slice(n - 1).every((l) => l.trim() === '') && (lines[n - 1] ?? '').trim() === '');
  if (atEnd) {
    while (n > 1 && (lines[n - 1] ?? '').trim() === '') n--;
    col = (lines[n - 1] ?? '').length + 1;
  }
  const shown = (lines[n - 1] ?? '').replace(/\t/g, ' ');
  const gutter = String(n);
  return [
    `line ${at.line}, column ${at.col}${atEnd ? ' (the end of the file)' : ''}: ${message}`,
    `    ${gutter} | ${shown}`,
    `    ${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, col - 1))}^`,
  ].join('\n');
}

/**
 * Calls `onChange` when the file changes. Watches the directory rather than
 * the file, because editors and config tools replace the file (a new inode)
 * instead of writing into it. Changes are debounced.
 */
export function watchConfigFile(file: string, onChange: () => void, debounceMs = 150): () => void {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher | null = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  watcher.on('error', () => {
    watcher?.close();
    watcher = null;
  });
  return () => {
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
