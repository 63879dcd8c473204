import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emit } from '../../src/events.js';
import { startLogger } from '../../src/log/logger.js';

test('text log lines omit fields that are undefined (no "exit=undefined message=undefined pid=undefined")', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'text', write: (l) => lines.push(l) });
  try {
    emit('app', { app: 'web', state: 'stopped', pid: undefined, exit: undefined, message: undefined });
    emit('app', { app: 'web', state: 'backoff', pid: 42, exit: { code: 1, signal: null }, message: 'exited with code 1' });
  } finally {
    stop();
  }
  assert.match(lines[0], / app app=web state=stopped$/);
  assert.ok(!lines.some((l) => l.includes('undefined')), lines.join('\n'));
  assert.match(lines[1], /app=web state=backoff pid=42 exit=\{"code":1,"signal":null\} message=exited with code 1$/);
});
