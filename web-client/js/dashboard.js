// @ts-check
/**
 * `/classes`, a signed-in teacher's "My classes": her classes (name, topology, created), a form
 * for a new one, and per class: open it as teacher, copy the student link or the class code,
 * rename, delete (after a confirm dialog), its class list with personal links
 * (js/class-list-ui.js) and its past lessons' attendance (js/attendance-ui.js). Not signed
 * in → `/signin`. Links are minted on demand
 * (`POST /api/v1/classes/{id}/tokens`) because the list answer carries none; the class code is
 * the class id (what `POST /api/v1/join` takes).
 */

import { openClassList } from './class-list-ui.js';
import { api, failureText } from './staff.js';
import { pastLessonsButton } from './attendance-ui.js';
import { h, toast } from './ui/dom.js';

/** @typedef {{id: string, name: string, topology: string, created_at: number, peers: number, shared_links?: boolean}} ClassSummary */

/** Topology values as a teacher reads them. */
const TOPOLOGY_TEXT = /** @type {Record<string, string>} */ ({
  auto: 'Automatic',
  p2p: 'Direct',
  sfu: 'Through the server',
});

/** The session's CSRF token, sent with every state change (the session itself is a cookie). */
let csrf = '';

/**
 * @param {string} id
 * @returns {any}
 */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e;
}

/**
 * A state-changing call with the CSRF token; a lapsed session sends the teacher to sign in.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function change(method, path, body) {
  const res = await api(method, path, body, { 'x-csrf-token': csrf });
  if (res.status === 401) location.assign('/signin');
  return res;
}

/**
 * A join link for one role in a class, on the address this page was reached by (the way
 * students reach the server too); null after a failure (shown as a toast).
 * @param {string} classId
 * @param {'teacher' | 'student'} role
 * @returns {Promise<string | null>}
 */
async function joinLink(classId, role) {
  const res = await change('POST', `/api/v1/classes/${encodeURIComponent(classId)}/tokens`, { role });
  if (!res.ok) {
    toast(failureText(res), 'error');
    return null;
  }
  return `${location.origin}/join#token=${encodeURIComponent(res.body.token)}`;
}

/**
 * Copies text; where the browser refuses, shows it in a toast to copy by hand.
 * @param {string} text
 * @param {string} what
 */
async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} copied.`);
  } catch {
    toast(`${what}: ${text}`);
  }
}

/**
 * One class in the list.
 * @param {ClassSummary} c
 */
function classItem(c) {
  const created = new Date(c.created_at * 1000);
  const titleId = `class-${c.id}-name`;
  const label = (/** @type {string} */ action) => `${action}: ${c.name}`;
  return h('li', { class: 'class-item card', 'data-class': c.id, 'aria-labelledby': titleId },
    h('h3', { id: titleId, class: 'class-name' }, c.name),
    h('p', { class: 'hint' },
      `${TOPOLOGY_TEXT[c.topology] ?? c.topology} · class code `,
      h('code', { class: 'class-code' }, c.id),
      ' · created ',
      h('time', { datetime: created.toISOString() }, created.toLocaleString()),
      h('span', { class: 'class-shared', hidden: c.shared_links !== false }, ' · personal links only'),
      c.peers ? ` · ${c.peers} in class now` : ''),
    h('div', { class: 'class-actions' },
      h('button', {
        type: 'button', class: 'primary', 'aria-label': label('Open as teacher'),
        onclick: async () => {
          const link = await joinLink(c.id, 'teacher');
          if (link) location.assign(link);
        },
      }, 'Open as teacher'),
      h('button', {
        type: 'button', 'aria-label': label('Copy student link'),
        onclick: async () => {
          const link = await joinLink(c.id, 'student');
          if (link) await copy(link, 'Student link');
        },
      }, 'Copy student link'),
      h('button', {
        type: 'button', 'aria-label': label('Copy class code'),
        onclick: () => copy(c.id, 'Class code'),
      }, 'Copy class code'),
      h('button', { type: 'button', 'aria-label': label('Class list'), onclick: () => openClassList(c, change) }, 'Class list'),
      pastLessonsButton(c, change),
      h('button', { type: 'button', 'aria-label': label('Rename'), onclick: () => rename(c) }, 'Rename'),
      h('button', { type: 'button', class: 'danger', 'aria-label': label('Delete'), onclick: () => remove(c) }, 'Delete')));
}

/** Loads and shows the teacher's classes, newest first. */
async function refresh() {
  const res = await api('GET', '/api/v1/classes');
  if (res.status === 401) {
    location.assign('/signin');
    return;
  }
  if (!res.ok) {
    el('class-list-msg').textContent = failureText(res);
    return;
  }
  el('class-list-msg').textContent = '';
  /** @type {ClassSummary[]} */
  const classes = res.body;
  classes.sort((a, b) => b.created_at - a.created_at);
  el('class-list').replaceChildren(...classes.map(classItem));
  el('class-list-empty').hidden = classes.length > 0;
}

/**
 * A dialog whose form submits `run`; a failure stays in the dialog, success closes it.
 * @param {string} name the dialog's id prefix (`rename`, `delete`)
 * @param {() => Promise<{ok: boolean, status: number, body: any}>} run
 */
function openDialog(name, run) {
  const dlg = /** @type {HTMLDialogElement} */ (el(`${name}-dialog`));
  const form = /** @type {HTMLFormElement} */ (el(`${name}-form`));
  el(`${name}-msg`).textContent = '';
  const cancel = () => dlg.close();
  /** @param {SubmitEvent} ev */
  const submit = async (ev) => {
    ev.preventDefault();
    const res = await run();
    if (!res.ok) {
      el(`${name}-msg`).textContent = failureText(res);
      return;
    }
    dlg.close();
    await refresh();
  };
  el(`${name}-cancel`).addEventListener('click', cancel);
  form.addEventListener('submit', submit);
  dlg.addEventListener('close', () => {
    el(`${name}-cancel`).removeEventListener('click', cancel);
    form.removeEventListener('submit', submit);
  }, { once: true });
  dlg.showModal();
}

/** @param {ClassSummary} c */
function rename(c) {
  const field = el('rename-name');
  field.value = c.name;
  openDialog('rename', () => change('PATCH', `/api/v1/classes/${encodeURIComponent(c.id)}`, { name: field.value.trim() }));
  field.select();
}

/** @param {ClassSummary} c */
function remove(c) {
  el('delete-name').textContent = c.name;
  openDialog('delete', async () => {
    const res = await change('DELETE', `/api/v1/classes/${encodeURIComponent(c.id)}`);
    if (res.ok) toast(`Deleted ${c.name}.`);
    return res;
  });
}

async function main() {
  const me = await api('GET', '/api/v1/session');
  if (!me.ok) {
    location.assign('/signin');
    return;
  }
  csrf = me.body.csrf_token;
  el('who-name').textContent = me.body.account.name;
  el('who').hidden = false;
  el('sign-out').hidden = false;
  el('dashboard').hidden = false;

  el('sign-out').addEventListener('click', async () => {
    const res = await api('DELETE', '/api/v1/session', undefined, { 'x-csrf-token': csrf });
    if (!res.ok && res.status !== 401) {
      toast(failureText(res), 'error');
      return;
    }
    location.assign('/signin');
  });

  const form = /** @type {HTMLFormElement} */ (el('new-class'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    el('new-class-msg').textContent = '';
    const res = await change('POST', '/api/v1/classes', {
      name: el('new-class-name').value.trim(),
      topology: el('new-class-topology').value,
    });
    if (!res.ok) {
      el('new-class-msg').textContent = failureText(res);
      return;
    }
    form.reset();
    toast(`Created ${res.body.name}.`);
    await refresh();
    el(`class-${res.body.id}-name`).closest('li')?.querySelector('button')?.focus();
  });

  await refresh();
}

void main();
