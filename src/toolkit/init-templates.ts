/**
 * The templates of `porthole init` (their files are in templates/ at the
 * package's root) and the steps printed after one is written.
 */

export interface Template {
  name: string;
  /** One line for `porthole init --list`. */
  summary: string;
  /** Its package.json has dependencies: `npm install` is a step. */
  npmInstall: boolean;
  /** Programs it needs from the system, for the next steps. */
  needs?: string;
  /** The apps its porthole.yaml defines, in the order they are registered; the last one is the page to open. */
  apps(name: string): string[];
}

export const TEMPLATES: readonly Template[] = [
  { name: 'echo', summary: 'a WebSocket echo server (Node, ws) and a page that sends messages and shows the echo', npmInstall: true, apps: (n) => [n] },
  { name: 'chat', summary: 'chat rooms with presence (Node, ws): a page with a message list, who is here, and a form', npmInstall: true, apps: (n) => [n] },
  {
    name: 'vnc',
    summary: "a desktop in the browser: Xvfb, x11vnc on loopback, noVNC from npm, and Porthole's bridge in place of websockify",
    npmInstall: true,
    needs: 'Xvfb, x11vnc and xterm (apt-get install xvfb x11vnc xterm)',
    apps: (n) => [n],
  },
  {
    name: 'stdio',
    summary: 'a line-based program on a WebSocket (a stdio app: one process per connection) and a page to talk to it',
    npmInstall: false,
    apps: (n) => [`${n}-program`, n],
  },
];

export function findTemplate(name: string): Template | undefined {
  return TEMPLATES.find((t) => t.name === name);
}

/** Quotes a word for a POSIX shell only when it needs it. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What `porthole init` writes and what a person does next. */
export interface NextSteps {
  /** Shell lines, in order: cd, npm install, the registrations. */
  commands: string[];
  /** The `porthole apps add` lines among them, run from inside the app's directory. */
  register: string[];
  /** Where the page is, on a gateway at the default address. */
  open: string[];
}

/**
 * The steps after writing `template` as app `name` into `dir` (`shown` is
 * the directory as the person gave it, for the `cd` line; `porthole` how to
 * run this CLI from there).
 */
export function nextSteps(template: Template, name: string, shown: string, porthole: string): NextSteps {
  const apps = template.apps(name);
  const register = apps.map((app, i) => `${porthole} apps add ${app} --file porthole.yaml${i === apps.length - 1 ? ' --start' : ''}`);
  const commands = [`cd ${shellWord(shown)}`, ...(template.npmInstall ? ['npm install'] : []), ...register];
  const open = [`http://127.0.0.1:50000/${name}/`, ...(template.name === 'stdio' ? [] : [`http://${name}.localhost:50000/`])];
  return { commands, register, open };
}
