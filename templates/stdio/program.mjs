#!/usr/bin/env node
// A line-based program: it knows nothing of WebSockets. It reads one command
// per line on stdin and answers on stdout; Porthole's stdio app starts one
// for each WebSocket connection, sends it each message as a line, sends back
// each line it prints, and stops it when the connection closes.
import { createInterface } from 'node:readline';

const say = (line) => process.stdout.write(`${line}\n`);
const HELP = 'commands: upper TEXT · reverse TEXT · sum N N … · count · time · bye';
let lines = 0;

say(`hello, this is process ${process.pid}; ${HELP}`);
console.error(`started for ${process.env.REMOTE_ADDR ?? 'a client'}`); // stderr goes to the app's log

createInterface({ input: process.stdin }).on('line', (line) => {
  lines++;
  const [word = '', ...rest] = line.trim().split(/\s+/);
  const arg = rest.join(' ');
  switch (word.toLowerCase()) {
    case '':
      return;
    case 'help':
      return say(HELP);
    case 'upper':
      return say(arg.toUpperCase());
    case 'reverse':
      return say([...arg].reverse().join(''));
    case 'sum': {
      const numbers = rest.map(Number);
      return say(numbers.length && numbers.every(Number.isFinite) ? String(numbers.reduce((a, b) => a + b, 0)) : 'sum: give numbers, such as: sum 1 2 3');
    }
    case 'count':
      return say(`${lines} line${lines === 1 ? '' : 's'} so far`);
    case 'time':
      return say(new Date().toISOString());
    case 'bye':
      say('bye'); // writes to a pipe are synchronous on Linux: the line is out before the exit
      return process.exit(0); // exit code 0: the client gets close 1000
    default:
      return say(`unknown command "${word}"; ${HELP}`);
  }
}).on('close', () => process.exit(0)); // stdin closed: the client went away
