/**
 * `porthole init` as a command: --list, --help, the refusals (unknown
 * template with the nearest name, a non-empty DIR, an invalid --name, a DIR
 * that cannot be written) with their exit codes and error codes, --force,
 * the app name taken from DIR, what is written (placeholders filled,
 * porthole.yaml valid for the gateway's schema, scripts executable,
 * .gitignore), and `porthole apps add --file` reading an entry of a
 * porthole.yaml.
 */
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfigFile } from '../../src/config/load.js';
import { startAdmin, type AdminGateway } from '../helpers/admin.js';
import { CLI, runCli } from '../helpers/cli.js';

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'porthole-init-cli-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(args: string[], cwd = tmp, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string; out: string; err: string }> {
  const r = runCli(args, { cwd, env });
  const code = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

/** A fresh directory to run `porthole init` in. */
function scratch(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  return dir;
}

test('--list: one line per template, each with what it is', async () => {
  const r = await cli(['init', '--list']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(/\s+/)[0]),
    ['echo', 'chat', 'vnc', 'stdio'],
  );
  for (const l of lines) assert.ok(l.length > 40 && l.length < 160, `a line that says what it is: ${l}`);
});

test('--help: the templates, examples, next steps and exit codes', async () => {
  const r = await cli(['init', '--help']);
  assert.equal(r.code, 0, r.err);
  for (const s of ['porthole init echo', '--list', '--name', '--force', 'Templates:', 'Examples:', 'porthole apps add NAME --file porthole.yaml --start', 'Exit codes:', 'PH_ERR_INIT_NOT_EMPTY']) assert.ok(r.out.includes(s), `--help mentions ${s}`);
  const main = await cli(['--help']);
  assert.match(main.out, /init \[options\] \[template\] \[dir\]/);
});

test('an unknown template: exit 2, the nearest name as a hint, the list, nothing written', async () => {
  const cwd = scratch('unknown');
  const r = await cli(['init', 'ecko'], cwd);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown template "ecko" \(did you mean echo\?\); templates: echo, chat, vnc, stdio \[PH_ERR_INIT_TEMPLATE\]/);
  const far = await cli(['init', 'kubernetes'], cwd);
  assert.equal(far.code, 2);
  assert.doesNotMatch(far.err, /did you mean/, 'no hint when nothing is near');
  assert.match(far.err, /templates: echo, chat, vnc, stdio/);
  const none = await cli(['init'], cwd);
  assert.equal(none.code, 2);
  assert.match(none.err, /which template\?/);
  assert.equal((await cli(['init', 'echo', '--bogus'], cwd)).code, 2, 'an unknown option is bad usage');
  assert.deepEqual(readDir(cwd), []);
});

const readDir = (dir: string): string[] => readdirSync(dir).sort();

test('echo by default: ./echo, app "echo", placeholders filled, the entry valid for the gateway, the next steps', async () => {
  const cwd = scratch('default');
  const r = await cli(['init', 'echo'], cwd, { PATH: '/usr/bin:/bin' }); // no porthole on PATH
  assert.equal(r.code, 0, r.err);
  const dir = join(cwd, 'echo');
  assert.deepEqual(readDir(dir), ['.gitignore', 'README.md', 'package.json', 'porthole.yaml', 'public', 'server.js']);
  assert.match(r.out, new RegExp(`Wrote the echo template as app "echo" in ${dir}:`));
  // Outside a checkout or project that installed Porthole, npx would look for "porthole" in the registry:
  // the steps name this CLI by its path instead.
  const cliPath = realpathSync(CLI);
  assert.ok(r.out.includes(`\n  cd echo\n  npm install\n  node ${cliPath} apps add echo --file porthole.yaml --start\n`), r.out);
  assert.ok(readFileSync(join(dir, 'README.md'), 'utf8').includes(`node ${cliPath} apps add echo --file porthole.yaml --start`));
  assert.match(r.out, /Then open http:\/\/127\.0\.0\.1:50000\/echo\/ or http:\/\/echo\.localhost:50000\//);
  for (const f of ['README.md', 'package.json', 'porthole.yaml', 'public/index.html', 'server.js']) {
    assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), /\{\{[A-Z_]+\}\}/, `${f}: every placeholder filled`);
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'echo');
  assert.match(pkg.dependencies.ws, /^\d+\.\d+\.\d+$/, 'a pinned version');
  // The entry is what the gateway accepts: parsed by the config schema, cwd the directory written.
  const config = loadConfigFile(join(dir, 'porthole.yaml'));
  assert.equal(config.apps.length, 1);
  assert.equal(config.apps[0].name, 'echo');
  assert.equal(config.apps[0].cwd, dir);
  assert.equal(config.apps[0].cmd, 'node server.js');
  assert.equal(statSync(join(dir, 'server.js')).mode & 0o777, 0o644);
  assert.equal(readFileSync(join(dir, '.gitignore'), 'utf8'), 'node_modules/\n');
});

test('the steps name the CLI as the person can run it from DIR: porthole on PATH, npx inside the project, else its path', async () => {
  const cwd = scratch('command');
  const bin = join(cwd, 'bin');
  mkdirSync(bin);
  symlinkSync(CLI, join(bin, 'porthole'));
  const onPath = await cli(['init', 'stdio', 'a'], cwd, { PATH: `${bin}:/usr/bin:/bin` });
  assert.match(onPath.out, /\n {2}porthole apps add a-program --file porthole\.yaml\n {2}porthole apps add a --file porthole\.yaml --start\n/);
  assert.match(readFileSync(join(cwd, 'a', 'porthole.yaml'), 'utf8'), /#   porthole apps add a-program --file porthole\.yaml/);
  // A project that installed this Porthole: npx finds it in node_modules/.bin.
  mkdirSync(join(cwd, 'project', 'node_modules', '.bin'), { recursive: true });
  symlinkSync(CLI, join(cwd, 'project', 'node_modules', '.bin', 'porthole'));
  const inProject = await cli(['init', 'stdio', 'project/apps/b'], cwd, { PATH: '/usr/bin:/bin' });
  assert.match(inProject.out, /\n {2}npx porthole apps add b --file porthole\.yaml --start\n/);
});

test('the name: from DIR when it is a valid app name, else the template\'s; --name wins; an invalid --name is exit 2', async () => {
  const cwd = scratch('names');
  const fromDir = await cli(['init', 'chat', 'sub/team-room'], cwd);
  assert.equal(fromDir.code, 0, fromDir.err);
  assert.match(fromDir.out, /as app "team-room" in .*\/sub\/team-room:/);
  assert.match(fromDir.out, /\n {2}cd sub\/team-room\n/);
  const notAName = await cli(['init', 'echo', 'My Echo'], cwd);
  assert.equal(notAName.code, 0, notAName.err);
  assert.match(notAName.out, /as app "echo" in .*\/My Echo:/);
  assert.match(notAName.out, /\n {2}cd 'My Echo'\n/, 'the cd line is quoted for the shell');
  assert.equal(parseYaml(readFileSync(join(cwd, 'My Echo', 'porthole.yaml'), 'utf8')).apps[0].cwd, join(cwd, 'My Echo'));
  const named = await cli(['init', 'vnc', 'desk-dir', '--name', 'desk'], cwd);
  assert.equal(named.code, 0, named.err);
  assert.match(named.out, /as app "desk" in .*\/desk-dir:/);

  for (const [bad, why] of [
    ['Bad_Name', /"Bad_Name" is not an app name/],
    ['-x', /is not an app name/],
    ['webapp', /"webapp" is reserved for the gateway/],
    ['_porthole', /is not an app name/],
  ] as const) {
    const r = await cli(['init', 'echo', 'x', '--name', bad], cwd);
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    assert.match(r.err, why);
    assert.match(r.err, /\[PH_ERR_INIT_NAME\]/);
  }
  // stdio makes NAME-program too: a NAME that fits 63 characters alone may not.
  const long = 'a'.repeat(60);
  const r = await cli(['init', 'stdio', 'long', '--name', long], cwd);
  assert.equal(r.code, 2);
  assert.match(r.err, /makes the app name "a{60}-program", which is not one/);
});

test('a non-empty DIR is refused (exit 2, nothing written) unless --force, which leaves other files', async () => {
  const cwd = scratch('force');
  const dir = join(cwd, 'mine');
  mkdirSync(dir);
  writeFileSync(join(dir, 'notes.txt'), 'keep me');
  writeFileSync(join(dir, 'server.js'), 'old');
  const refused = await cli(['init', 'echo', 'mine'], cwd);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /mine is not empty \(notes\.txt, server\.js\): choose another DIR, or --force to write the template's files over it \[PH_ERR_INIT_NOT_EMPTY\]/);
  assert.deepEqual(readDir(dir), ['notes.txt', 'server.js']);
  assert.equal(readFileSync(join(dir, 'server.js'), 'utf8'), 'old');

  const forced = await cli(['init', 'echo', 'mine', '--force'], cwd);
  assert.equal(forced.code, 0, forced.err);
  assert.equal(readFileSync(join(dir, 'notes.txt'), 'utf8'), 'keep me');
  assert.match(readFileSync(join(dir, 'server.js'), 'utf8'), /WebSocketServer/);
  // --force replaces a link, never writes through it: the file it points to is left as it was.
  const outside = join(cwd, 'outside.txt');
  writeFileSync(outside, 'not yours');
  rmSync(join(dir, 'server.js'));
  symlinkSync(outside, join(dir, 'server.js'));
  rmSync(join(dir, 'package.json'));
  linkSync(outside, join(dir, 'package.json'));
  assert.equal((await cli(['init', 'echo', 'mine', '--force'], cwd)).code, 0);
  assert.equal(readFileSync(outside, 'utf8'), 'not yours');
  assert.ok(!lstatSync(join(dir, 'server.js')).isSymbolicLink());
  assert.match(readFileSync(join(dir, 'package.json'), 'utf8'), /"ws"/);
  // A DIR that is a link to a directory is written into.
  mkdirSync(join(cwd, 'real'));
  symlinkSync(join(cwd, 'real'), join(cwd, 'linked'));
  assert.equal((await cli(['init', 'echo', 'linked'], cwd)).code, 0);
  assert.ok(readDir(join(cwd, 'real')).includes('server.js'));
  // An empty DIR that exists is fine without --force.
  mkdirSync(join(cwd, 'empty'));
  assert.equal((await cli(['init', 'stdio', 'empty'], cwd)).code, 0);
});

test('a DIR that cannot be written: exit 1 with PH_ERR_INIT_WRITE naming the path and the cause', async () => {
  const cwd = scratch('unwritable');
  writeFileSync(join(cwd, 'afile'), '');
  const onFile = await cli(['init', 'echo', 'afile'], cwd);
  assert.equal(onFile.code, 1);
  assert.match(onFile.err, /cannot write into .*\/afile: it is a file, not a directory \[PH_ERR_INIT_WRITE\]/);
  const under = await cli(['init', 'echo', 'afile/sub'], cwd);
  assert.equal(under.code, 1);
  assert.match(under.err, /cannot write .*afile\/sub.*: a part of the path is a file, not a directory \(ENOTDIR\) \[PH_ERR_INIT_WRITE\]/);
});

test('scripts are executable whatever the template files\' modes: vnc start.sh, stdio program.mjs', async () => {
  const cwd = scratch('modes');
  assert.equal((await cli(['init', 'vnc'], cwd)).code, 0);
  assert.equal((await cli(['init', 'stdio'], cwd)).code, 0);
  assert.equal(statSync(join(cwd, 'vnc', 'start.sh')).mode & 0o777, 0o755);
  assert.equal(statSync(join(cwd, 'stdio', 'program.mjs')).mode & 0o777, 0o755);
  assert.equal(statSync(join(cwd, 'stdio', 'server.mjs')).mode & 0o777, 0o644);
  // The vnc entry's bridge port and start.sh's VNC_PORT are the same free port.
  const app = loadConfigFile(join(cwd, 'vnc', 'porthole.yaml')).apps[0];
  const port = Number(app.env?.VNC_PORT);
  assert.ok(port >= 5900 && port <= 5999, String(port));
  assert.equal(app.ws_bridge, `127.0.0.1:${port}`);
  // stdio: two apps, the program's under the page's prefix.
  const apps = loadConfigFile(join(cwd, 'stdio', 'porthole.yaml')).apps;
  assert.deepEqual(
    apps.map((a) => [a.name, a.prefix ?? null, a.stdio ?? a.cmd]),
    [
      ['stdio-program', '/stdio/ws', './program.mjs'],
      ['stdio', null, 'node server.mjs'],
    ],
  );
});

test('the package ships every template file (package.json "files"), the gitignore included', async () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const packed = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path).filter((p) => p.startsWith('templates/'));
  const onDisk = (function walk(dir: string): string[] {
    return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
  })('templates');
  assert.deepEqual(packed.sort(), onDisk.sort());
  for (const t of ['echo', 'chat', 'vnc']) assert.ok(packed.includes(`templates/${t}/gitignore`));
});

describe('porthole apps add --file with a porthole.yaml', () => {
  let gw: AdminGateway;
  before(async () => {
    gw = await startAdmin();
  });
  after(() => gw?.cleanup());

  test('takes the entry named NAME from the apps: list, with a relative cwd next to the file; a missing name is exit 2', async () => {
    const cwd = scratch('apps-add');
    writeFileSync(join(cwd, 'porthole.yaml'), 'apps:\n  - name: one\n    port: 9311\n  - name: two\n    cmd: node server.js\n    cwd: ./two\n');
    const env = { PORTHOLE_URL: gw.url, PORTHOLE_TOKEN: gw.token };
    const r = await cli(['apps', 'add', 'two', '--file', 'porthole.yaml', '--json'], cwd, env);
    assert.equal(r.code, 0, r.err);
    const app = JSON.parse(r.out);
    assert.equal(app.name, 'two');
    assert.equal(app.cmd, 'node server.js');
    assert.equal(app.cwd, join(cwd, 'two'), 'relative to the file, as in a config file');
    assert.notEqual(app.port, 9311, 'nothing of the other entry (its port is allocated)');
    const missing = await cli(['apps', 'add', 'three', '--file', 'porthole.yaml'], cwd, env);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /its apps: list has no app named three \(it has one, two\)/);
    // A plain one-app file still works as before.
    writeFileSync(join(cwd, 'app.yaml'), 'port: 9312\n');
    const plain = await cli(['apps', 'add', 'four', '--file', 'app.yaml', '--json'], cwd, env);
    assert.equal(plain.code, 0, plain.err);
    assert.equal(JSON.parse(plain.out).port, 9312);
  });
});
