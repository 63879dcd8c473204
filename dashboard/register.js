/**
 * The register form: the fields of `POST /webapp`, sent as
 * `PUT /_porthole/api/apps/{name}`. The server validates; its `error.fields`
 * messages show beside their fields (aria-describedby, aria-invalid) and the
 * general message above the form.
 */
import { useState } from 'preact/hooks';
import { html } from './html.js';
import { api, appPath } from './api.js';

/** `node` is empty for "this node" (in a cluster; outside one the field is not shown and never sent). */
const EMPTY = { name: '', node: '', cmd: '', port: '', ws_port: '', url: '', cwd: '', health_path: '', hosts: '', env: '', autostart: false };

/** The form's id prefix: field `port` is `#reg-port`, its message `#reg-port-error`. */
const ID = 'reg';

/** A port as typed: a number when it is all digits, else the text itself, so the server's check names it. */
const portValue = (s) => (/^\d+$/.test(s) ? Number(s) : s);

/**
 * The request body from the form's values, or `{ errors }` for what cannot be sent at all.
 * @returns {{ name: string, body: Record<string, unknown> } | { errors: Record<string, string> }}
 */
export function toBody(v) {
  /** @type {Record<string, string>} */
  const errors = {};
  const name = v.name.trim();
  if (!name) errors.name = 'required: the app is served at /{name}/';
  /** @type {Record<string, unknown>} */
  const body = { autostart: v.autostart };
  for (const key of ['node', 'cmd', 'url', 'cwd', 'health_path']) {
    if (v[key].trim()) body[key] = v[key].trim();
  }
  for (const key of ['port', 'ws_port']) {
    if (v[key].trim()) body[key] = portValue(v[key].trim());
  }
  const hosts = v.hosts.split(/[\s,]+/).filter(Boolean);
  if (hosts.length) body.hosts = hosts;
  /** @type {Record<string, string>} */
  const env = {};
  v.env.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#')) return;
    const eq = t.indexOf('=');
    if (eq <= 0) errors.env ??= `line ${i + 1}: expected KEY=VALUE, got "${t.slice(0, 40)}"`;
    else env[t.slice(0, eq).trim()] = t.slice(eq + 1);
  });
  if (Object.keys(env).length) body.env = env;
  return Object.keys(errors).length ? { errors } : { name, body };
}

function Field({ name, label, hint, error, children }) {
  const id = `${ID}-${name}`;
  return html`<div class=${`field field-${name}${error ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${error ? html`<p class="field-error" id=${`${id}-error`}>${error}</p>` : null}
    ${hint ? html`<p class="hint" id=${`${id}-hint`}>${hint}</p>` : null}
  </div>`;
}

/** Props for a field's input: id, value binding and its descriptions. */
function bind(name, values, set, errors, hint) {
  const id = `${ID}-${name}`;
  const describedBy = [hint ? `${id}-hint` : '', errors[name] ? `${id}-error` : ''].filter(Boolean).join(' ');
  return {
    id,
    name,
    value: values[name],
    onInput: (e) => set(name, e.currentTarget.value),
    'aria-describedby': describedBy || undefined,
    'aria-invalid': errors[name] ? 'true' : undefined,
  };
}

const HINTS = {
  name: 'lowercase letters, digits and dashes; served at /name/ and name.localhost',
  cmd: 'run by Porthole with $PORT set; leave empty for an app you run yourself',
  port: 'where the app listens (HTTP and WebSocket); empty: Porthole picks one for a cmd',
  ws_port: 'only if WebSocket upgrades go to another port',
  url: 'instead of a port: an upstream such as http://127.0.0.1:8080',
  cwd: 'working directory of the cmd',
  health_path: 'readiness check path, e.g. /healthz',
  hosts: 'extra host names, separated by spaces or commas',
  env: 'one KEY=VALUE a line',
  node: 'the node that runs it; any: a live node the cluster picks, and another if that one goes down',
};

/** The node select: every node of the cluster (down ones said so), then "any". */
function NodeSelect({ cluster, values, set, errors }) {
  const nodes = cluster.nodes ?? [];
  const props = bind('node', values, set, errors, HINTS.node);
  return html`<select ...${props} value=${values.node || cluster.node} onChange=${props.onInput}>
    ${nodes.map((n) => html`<option value=${n.name}>${n.name}${n.self ? ' (this node)' : ''}${n.up ? '' : ' (down)'}</option>`)}
    ${nodes.some((n) => n.name === cluster.node) ? null : html`<option value=${cluster.node}>${cluster.node} (this node)</option>`}
    <option value="any">any (a live node the cluster picks)</option>
  </select>`;
}

export function RegisterForm({ apps, cluster, onRegistered }) {
  const [values, setValues] = useState(EMPTY);
  const [errors, setErrors] = useState(/** @type {Record<string, string>} */ ({}));
  const [general, setGeneral] = useState(/** @type {{ text: string, problems: string[] } | null} */ (null));
  const [done, setDone] = useState('');
  const [sending, setSending] = useState(false);

  const set = (name, value) => {
    setValues((v) => ({ ...v, [name]: value }));
    // A field being fixed stops being marked wrong; the rest stay marked until the next try.
    setErrors((e) => {
      if (!(name in e)) return e;
      const { [name]: _, ...rest } = e;
      return rest;
    });
  };
  const input = (name, extra = {}) => html`<input type="text" autocomplete="off" spellcheck="false" ...${bind(name, values, set, errors, HINTS[name])} ...${extra} />`;

  const focusFirstError = (errs) => {
    const first = Object.keys(EMPTY).find((k) => errs[k]);
    if (first) setTimeout(() => document.getElementById(`${ID}-${first}`)?.focus(), 0);
  };

  const submit = async (e) => {
    e.preventDefault();
    if (sending) return;
    setDone('');
    setGeneral(null);
    // In a cluster the node is always sent (this node when not chosen); outside one, never.
    const built = toBody({ ...values, node: cluster ? values.node || cluster.node : '' });
    if ('errors' in built) {
      setErrors(built.errors);
      setGeneral({ text: 'Fix the fields marked below.', problems: [] });
      focusFirstError(built.errors);
      return;
    }
    const existing = apps.find((a) => a.name === built.name);
    if (existing && !confirm(`An app named ${built.name} exists (${existing.source === 'config' ? 'from the config file' : 'registered'}). Replace its definition?`)) return;
    setSending(true);
    try {
      const r = await api(appPath(built.name), { method: 'PUT', body: built.body });
      setErrors({});
      setValues(EMPTY);
      setDone(`Registered ${built.name}${r.app?.state ? ` (${r.app.state})` : ''}.`);
      onRegistered(r.app);
    } catch (err) {
      const fields = /** @type {Record<string, string>} */ (err.fields ?? {});
      const known = Object.fromEntries(Object.entries(fields).filter(([k]) => k in EMPTY));
      const unknown = Object.entries(fields).filter(([k]) => !(k in EMPTY)).map(([k, m]) => `${k}: ${m}`);
      setErrors(known);
      const matched = Object.keys(known).length > 0;
      setGeneral({
        text: matched ? `Not registered: fix the field${Object.keys(known).length > 1 ? 's' : ''} marked below.` : `Not registered: ${err.message}`,
        problems: [...unknown, ...(matched ? [] : (err.problems ?? []).filter((p) => p !== err.message))],
      });
      focusFirstError(known);
    } finally {
      setSending(false);
    }
  };

  return html`<section class="panel" aria-labelledby="register-title">
    <div class="panel-head"><h2 id="register-title">Register an app</h2></div>
    <form class="register" novalidate onSubmit=${submit} aria-describedby=${general ? 'register-general' : undefined}>
      <div class="form-messages" aria-live="polite">
        ${general
          ? html`<div class="notice error" id="register-general" role="alert">
              <p>${general.text}</p>
              ${general.problems.length ? html`<ul>${general.problems.map((p) => html`<li>${p}</li>`)}</ul>` : null}
            </div>`
          : null}
        ${done ? html`<p class="notice ok" role="status">${done}</p>` : null}
      </div>
      <div class="fields">
        <${Field} name="name" label="Name" hint=${HINTS.name} error=${errors.name}>${input('name', { required: true, 'aria-required': 'true' })}<//>
        ${cluster
          ? html`<${Field} name="node" label="Node" hint=${HINTS.node} error=${errors.node}><${NodeSelect} cluster=${cluster} values=${values} set=${set} errors=${errors} /><//>`
          : null}
        <${Field} name="cmd" label="Command (cmd)" hint=${HINTS.cmd} error=${errors.cmd}>${input('cmd')}<//>
        <${Field} name="port" label="Port" hint=${HINTS.port} error=${errors.port}>${input('port', { inputmode: 'numeric' })}<//>
        <${Field} name="ws_port" label="WebSocket port (ws_port)" hint=${HINTS.ws_port} error=${errors.ws_port}>${input('ws_port', { inputmode: 'numeric' })}<//>
        <${Field} name="url" label="Upstream URL (url)" hint=${HINTS.url} error=${errors.url}>${input('url', { inputmode: 'url' })}<//>
        <${Field} name="cwd" label="Working directory (cwd)" hint=${HINTS.cwd} error=${errors.cwd}>${input('cwd')}<//>
        <${Field} name="health_path" label="Health path" hint=${HINTS.health_path} error=${errors.health_path}>${input('health_path')}<//>
        <${Field} name="hosts" label="Host names (hosts)" hint=${HINTS.hosts} error=${errors.hosts}>${input('hosts')}<//>
        <${Field} name="env" label="Environment (env)" hint=${HINTS.env} error=${errors.env}>
          <textarea rows="3" spellcheck="false" ...${bind('env', values, set, errors, HINTS.env)}></textarea>
        <//>
      </div>
      <div class=${`field-check${errors.autostart ? ' invalid' : ''}`}>
        <input
          type="checkbox"
          id=${`${ID}-autostart`}
          checked=${values.autostart}
          onChange=${(e) => set('autostart', e.currentTarget.checked)}
          aria-describedby=${errors.autostart ? `${ID}-autostart-error` : undefined}
          aria-invalid=${errors.autostart ? 'true' : undefined}
        />
        <label for=${`${ID}-autostart`}>Start it whenever Porthole starts (autostart)</label>
        ${errors.autostart ? html`<p class="field-error" id=${`${ID}-autostart-error`}>${errors.autostart}</p>` : null}
      </div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${sending}>${sending ? 'Registering…' : 'Register'}</button>
        <button type="button" onClick=${() => {
          setValues(EMPTY);
          setErrors({});
          setGeneral(null);
          setDone('');
        }}>Clear</button>
      </div>
    </form>
  </section>`;
}
