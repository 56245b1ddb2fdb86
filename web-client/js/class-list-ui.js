// @ts-check
/**
 * A class's list of students on "My classes" (js/dashboard.js): a dialog where the teacher adds
 * students one by one, pastes a list or opens a file (one name per line, or CSV with a name and
 * an optional email/id column; a "name, email" row under a plain first line is pointed out
 * first), sees each student's personal link (Copy) and takes a student off the list (after a
 * confirm dialog: her links stop working), downloads the list as CSV, prints a sheet of names,
 * links and QR codes, and switches the shared student link and class code on or off for the
 * class. The dialog and the print sheet are built here on first use, so the page's markup needs
 * none; the switch also shows or hides the class card's "personal links only" (`.class-shared`).
 * Links are on the address this page was reached by (`?origin=` for the CSV and the printed
 * cards). Calls `…/students`, `…/students.csv`, `…/students/{sid}` and `…/settings` (docs/api.md,
 * "Class lists and attendance"); state changes go through the dashboard's `change` (CSRF token,
 * 401 → sign in).
 */

import { api, failureText } from './staff.js';
import { h, toast } from './ui/dom.js';

/** @typedef {{id: string, name: string}} ClassRef */
/** @typedef {{token: string, url: string, expires_at: number}} Link */
/** @typedef {{id: string, name: string, reference?: string, created_at: number, link: Link}} Student */
/** @typedef {(method: string, path: string, body?: unknown) => Promise<{ok: boolean, status: number, body: any}>} Change */

/** The open dialog's class and its list as last loaded. */
const current = {
  /** @type {ClassRef | null} */
  cls: null,
  /** @type {Student[]} */
  students: [],
  /** @type {Change | null} */
  change: null,
};

/** @type {Record<string, any> | null} the dialog's parts, once built */
let ui = null;

/** @param {ClassRef} c */
const base = (c) => `/api/v1/classes/${encodeURIComponent(c.id)}`;

/**
 * A student's personal link on the address this page was reached by, as the dashboard's other
 * links (students reach the server the same way); the server's own `url` uses its public URL.
 * @param {Student} s
 */
const personalLink = (s) => `${location.origin}/join#token=${encodeURIComponent(s.link.token)}`;

/**
 * What to tell the teacher when adding failed: nothing was added, and why (the server names the
 * line of a paste that it refused, or says how much is too much).
 * @param {{status: number, body: any}} res
 */
function addFailureText(res) {
  const why = failureText(res);
  if (res.status === 413) return `Nothing was added: the list is too large (${why}). A class list holds at most 500 students, and one paste at most 64 KB.`;
  if (res.status === 400) return `Nothing was added. ${why.charAt(0).toUpperCase()}${why.slice(1)}.`;
  return why;
}

/**
 * The server reads a paste as CSV only when its first line holds a comma, semicolon or tab
 * (docs/api.md): a later "name, email" row under a plain first line would become one long name.
 * Says so (and how to fix it) before anything is added; null when the paste is consistent.
 * @param {string} text
 * @returns {{line: number, text: string} | null}
 */
function mixedPasteWarning(text) {
  const lines = text.split('\n');
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first < 0 || /[,;\t]/.test(lines[first])) return null;
  const at = lines.findIndex((l, i) => i > first && /[,;\t]/.test(l));
  if (at < 0) return null;
  const d = /[,;\t]/.exec(lines[at])?.[0];
  const mark = d === '\t' ? 'a tab' : `a "${d}"`;
  const header = d === '\t' ? 'name and email separated by a tab' : `"name${d}email"`;
  return {
    line: at + 1,
    text: `Line ${at + 1} has ${mark} but line ${first + 1} has none, so every line would be taken as a whole name ("${lines[at].trim()}"). `
      + `To read a name and an email or id, start the list with the line ${header}. To add the lines as they are, press Add these students again.`,
  };
}

/**
 * Selects line `n` (1-based) of a textarea, so the teacher sees which line the server refused.
 * @param {HTMLTextAreaElement} area
 * @param {number} n
 */
function selectLine(area, n) {
  const lines = area.value.split('\n');
  if (n < 1 || n > lines.length) return;
  const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + lines[n - 1].length);
}

/**
 * Copies a student's link; where the browser refuses, selects it for Ctrl+C.
 * @param {HTMLInputElement} field
 * @param {string} name
 */
async function copyLink(field, name) {
  try {
    await navigator.clipboard.writeText(field.value);
    toast(`${name}'s link copied.`);
  } catch {
    field.focus();
    field.select();
    toast(`Select ${name}'s link and copy it with Ctrl+C.`);
  }
}

/** Builds the dialog, the confirm dialog and the print sheet (once). */
function build() {
  const shared = h('input', { type: 'checkbox', id: 'students-shared', role: 'switch', 'aria-describedby': 'students-shared-hint' });
  const addName = h('input', { id: 'students-add-name', name: 'name', maxlength: '64', required: true, autocomplete: 'off' });
  const pasteText = h('textarea', {
    id: 'students-paste-text', name: 'paste', rows: 4, required: true, autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'students-paste-hint',
  });
  const file = h('input', { type: 'file', id: 'students-file', class: 'sr-only', accept: '.csv,.txt,.tsv,text/csv,text/plain', 'aria-describedby': 'students-paste-hint' });
  const msg = h('p', { id: 'students-msg', class: 'error', role: 'alert' });
  const note = h('p', { id: 'students-note', class: 'hint', role: 'status' });
  const list = h('ul', { id: 'students-list', class: 'student-list', 'aria-labelledby': 'students-list-title' });
  const empty = h('p', { id: 'students-empty', class: 'hint', hidden: true }, 'No students on the list yet. Add them above; each gets a personal link.');
  const count = h('span', { id: 'students-count' });
  const expiry = h('p', { id: 'students-expiry', class: 'hint', hidden: true });
  const csv = h('a', { id: 'students-csv', class: 'button', href: '#', download: '' }, 'Download CSV');
  const print = h('button', { type: 'button', id: 'students-print' }, 'Print');
  const close = h('button', { type: 'button', id: 'students-close' }, 'Close');
  const title = h('h2', { id: 'students-title' }, 'Class list');

  const addForm = h('form', { id: 'students-add', class: 'stack' },
    h('label', { for: 'students-add-name' }, 'Add a student'),
    h('div', { class: 'row' }, addName, h('button', { type: 'submit', class: 'primary' }, 'Add')));
  const pasteForm = h('form', { id: 'students-paste', class: 'stack' },
    h('label', { for: 'students-paste-text' }, 'Paste a list'),
    pasteText,
    h('p', { id: 'students-paste-hint', class: 'hint' },
      'One name per line, or rows copied from a spreadsheet: the name, then an optional email or student id (e.g. ',
      h('code', {}, 'Ben Okafor, ben@school.example'), '). A CSV or text file opens into the box to check before adding.'),
    h('div', { class: 'row end wrap' },
      h('label', { class: 'button file-pick' }, 'Open a file…', file),
      h('button', { type: 'submit' }, 'Add these students')));

  const dialog = h('dialog', { id: 'students-dialog', class: 'wide students-dialog', 'aria-labelledby': 'students-title' },
    h('div', { class: 'stack' },
      title,
      h('p', { class: 'hint' }, 'Each student gets a personal link that lets in only them, under the name on this list: they cannot change it. Taking someone off the list stops their link.'),
      h('div', { class: 'setting' },
        h('label', { class: 'check', for: 'students-shared' }, shared, 'Allow the shared student link and class code'),
        h('p', { id: 'students-shared-hint', class: 'hint' },
          'On: anyone with the class\'s student link or class code can join and type a name, as well as students with personal links. Off: students get in only with their personal link (teachers are not affected; those in the class now stay).')),
      h('div', { class: 'students-forms' }, addForm, pasteForm),
      msg,
      note,
      h('h3', { id: 'students-list-title', tabindex: '-1' }, 'Students (', count, ')'),
      expiry,
      empty,
      list,
      h('div', { class: 'row end wrap' }, csv, print, close)));

  const removeName = h('strong', { id: 'student-remove-name' });
  const removeMsg = h('p', { id: 'student-remove-msg', class: 'error', role: 'alert' });
  const removeCancel = h('button', { type: 'button', id: 'student-remove-cancel' }, 'Cancel');
  const removeForm = h('form', { id: 'student-remove-form', method: 'dialog', class: 'stack' },
    h('h2', { id: 'student-remove-title' }, 'Remove from the class list?'),
    h('p', { id: 'student-remove-text' }, 'Remove ', removeName,
      ' from the class list? Their personal link stops working: they cannot join with it again. Someone in the class right now stays until they leave.'),
    removeMsg,
    h('div', { class: 'row end' }, removeCancel, h('button', { type: 'submit', class: 'danger' }, 'Remove student')));
  const removeDialog = h('dialog', { id: 'student-remove-dialog', 'aria-labelledby': 'student-remove-title', 'aria-describedby': 'student-remove-text' }, removeForm);

  const sheet = h('section', { id: 'students-print-sheet', class: 'print-sheet', 'aria-label': 'Class list to print' });

  document.body.append(dialog, removeDialog, sheet);

  shared.addEventListener('change', () => void setShared(shared.checked));
  addForm.addEventListener('submit', (/** @type {SubmitEvent} */ ev) => {
    ev.preventDefault();
    void add({ names: [addName.value] }, addName);
  });
  /** The paste last warned about: sent as it is when submitted again unchanged. */
  let warned = '';
  pasteForm.addEventListener('submit', (/** @type {SubmitEvent} */ ev) => {
    ev.preventDefault();
    const warning = mixedPasteWarning(pasteText.value);
    if (warning && warned !== pasteText.value) {
      warned = pasteText.value;
      msg.textContent = warning.text;
      note.textContent = '';
      selectLine(pasteText, warning.line);
      return;
    }
    warned = '';
    void add({ paste: pasteText.value }, pasteText);
  });
  pasteText.addEventListener('input', () => { warned = ''; });
  file.addEventListener('change', () => void openFile(file, pasteText, msg, note));
  print.addEventListener('click', () => void printList());
  close.addEventListener('click', () => dialog.close());
  removeCancel.addEventListener('click', () => removeDialog.close());
  window.addEventListener('afterprint', () => document.body.classList.remove('printing'));

  return { dialog, title, shared, addName, pasteText, msg, note, list, empty, count, expiry, csv, removeDialog, removeForm, removeName, removeMsg, sheet, print };
}

/**
 * Puts a chosen file's text into the paste box for the teacher to check, then Add. A file that
 * is not UTF-8 (a spreadsheet's older "CSV" export) would garble names: refused with what to do.
 * @param {HTMLInputElement} input
 * @param {HTMLTextAreaElement} area
 * @param {HTMLElement} msg
 * @param {HTMLElement} note
 */
async function openFile(input, area, msg, note) {
  const chosen = input.files?.[0];
  input.value = '';
  if (!chosen) return;
  msg.textContent = '';
  note.textContent = '';
  if (chosen.size > 64 * 1024) {
    msg.textContent = `${chosen.name} is larger than 64 KB, more than one list can be. Split it, or keep only the name and email or id columns.`;
    return;
  }
  const text = await chosen.text();
  if (text.includes('\uFFFD')) {
    msg.textContent = `${chosen.name} is not UTF-8 text, so names with accents would come out wrong. In the spreadsheet, save it as "CSV UTF-8" and open that file.`;
    return;
  }
  area.value = text.replace(/^\uFEFF/, '');
  area.removeAttribute('aria-invalid');
  const lines = area.value.split('\n').filter((l) => l.trim()).length;
  note.textContent = `Opened ${chosen.name}: ${lines} ${lines === 1 ? 'line' : 'lines'} in the box. Check them, then Add these students.`;
  area.focus();
}

/**
 * Opens the class list of a class.
 * @param {ClassRef} cls
 * @param {Change} change the dashboard's state-changing call (CSRF token; 401 → sign in)
 */
export async function openClassList(cls, change) {
  if (!ui) ui = build();
  current.cls = cls;
  current.change = change;
  current.students = [];
  ui.title.textContent = `Class list: ${cls.name}`;
  ui.msg.textContent = '';
  ui.note.textContent = '';
  ui.addName.value = '';
  ui.pasteText.value = '';
  // The CSV's links on this page's address too, like the ones shown.
  ui.csv.href = `${base(cls)}/students.csv?origin=${encodeURIComponent(location.origin)}`;
  ui.list.replaceChildren();
  ui.count.textContent = '…';
  ui.empty.hidden = true;
  ui.expiry.hidden = true;
  ui.dialog.showModal();
  ui.addName.focus();
  const [list, settings] = await Promise.all([
    api('GET', `${base(cls)}/students`),
    api('GET', `${base(cls)}/settings`),
  ]);
  if (current.cls !== cls) return;
  if (list.status === 401 || settings.status === 401) {
    location.assign('/signin');
    return;
  }
  if (!list.ok || !settings.ok) {
    ui.msg.textContent = failureText(list.ok ? settings : list);
    return;
  }
  ui.shared.checked = !!settings.body.shared_links;
  render(list.body);
}

/**
 * Shows the list.
 * @param {Student[]} students
 */
function render(students) {
  if (!ui) return;
  current.students = students;
  ui.count.textContent = String(students.length);
  ui.empty.hidden = students.length > 0;
  const until = students.reduce((min, s) => Math.min(min, s.link.expires_at), Infinity);
  ui.expiry.hidden = !students.length;
  if (students.length) {
    ui.expiry.textContent = `These links work until ${new Date(until * 1000).toLocaleString()}. Open the list again for fresh ones: a student's new link lets in the same student.`;
  }
  ui.list.replaceChildren(...students.map(studentItem));
}

/**
 * One student on the list: name, email or id, the personal link with Copy, and Remove.
 * @param {Student} s
 */
function studentItem(s) {
  const nameId = `student-${s.id}-name`;
  const field = h('input', {
    class: 'link-field', readOnly: true, value: personalLink(s), 'aria-label': `Personal link: ${s.name}`, spellcheck: false,
  });
  return h('li', { class: 'student', 'data-student': s.id, 'aria-labelledby': nameId },
    h('p', { class: 'student-who' },
      h('span', { id: nameId, class: 'student-name' }, s.name),
      s.reference ? h('span', { class: 'hint student-ref' }, s.reference) : null),
    h('div', { class: 'row student-link' },
      field,
      h('button', { type: 'button', class: 'small', 'aria-label': `Copy link: ${s.name}`, onclick: () => copyLink(field, s.name) }, 'Copy link'),
      h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove: ${s.name}`, onclick: () => confirmRemove(s) }, 'Remove')));
}

/**
 * Adds typed or pasted students; on success the field is cleared and the new ones are listed.
 * @param {{names?: string[], paste?: string}} body
 * @param {HTMLInputElement | HTMLTextAreaElement} field
 */
async function add(body, field) {
  const { cls, change } = current;
  const submit = /** @type {HTMLButtonElement | null | undefined} */ (field.form?.querySelector('button[type="submit"]'));
  if (!ui || !cls || !change || submit?.disabled) return;
  ui.msg.textContent = '';
  ui.note.textContent = '';
  field.removeAttribute('aria-invalid');
  // One request at a time: a double click must not add the list twice.
  if (submit) submit.disabled = true;
  const res = await change('POST', `${base(cls)}/students`, body).finally(() => {
    if (submit) submit.disabled = false;
  });
  if (current.cls !== cls) return;
  if (!res.ok) {
    ui.msg.textContent = addFailureText(res);
    field.setAttribute('aria-invalid', 'true');
    field.setAttribute('aria-errormessage', 'students-msg');
    const line = /^line (\d+):/.exec(res.body?.error?.message ?? '');
    if (line && field instanceof HTMLTextAreaElement) selectLine(field, Number(line[1]));
    else field.focus();
    return;
  }
  /** @type {Student[]} */
  const added = res.body.students;
  const known = new Set(current.students.map((x) => x.name.toLowerCase()));
  const again = [...new Set(added.filter((x) => known.has(x.name.toLowerCase())).map((x) => x.name))];
  field.value = '';
  render([...current.students, ...added]);
  toast(added.length === 1 ? `Added ${added[0].name}.` : `Added ${added.length} students.`);
  // The same name twice is allowed (two students may share a name), but usually a list pasted
  // twice: say so, where it stays until the next change.
  if (again.length) {
    ui.note.textContent = `Already on the list before: ${again.join(', ')}. Each entry is a separate student with its own link; remove the ones you did not mean to add.`;
  }
  field.focus();
}

/**
 * Asks, then takes a student off the list.
 * @param {Student} s
 */
function confirmRemove(s) {
  if (!ui) return;
  const { removeDialog, removeForm, removeName, removeMsg } = ui;
  removeName.textContent = s.name;
  removeMsg.textContent = '';
  /** @param {SubmitEvent} ev */
  const submit = async (ev) => {
    ev.preventDefault();
    const { cls, change } = current;
    const button = removeForm.querySelector('button[type="submit"]');
    if (!cls || !change || button?.disabled) return;
    if (button) button.disabled = true;
    const res = await change('DELETE', `${base(cls)}/students/${encodeURIComponent(s.id)}`).finally(() => {
      if (button) button.disabled = false;
    });
    if (!res.ok && res.status !== 404) {
      removeMsg.textContent = failureText(res);
      return;
    }
    const at = current.students.findIndex((x) => x.id === s.id);
    removeDialog.close();
    if (ui) ui.note.textContent = '';
    render(current.students.filter((x) => x.id !== s.id));
    toast(`Removed ${s.name} from the class list.`);
    // Focus moves to the next student's row (or the list's heading), not back to a gone button.
    const next = ui?.list.children[Math.min(at, current.students.length - 1)];
    const target = next?.querySelector('button') ?? document.getElementById('students-list-title');
    target?.focus();
  };
  removeForm.addEventListener('submit', submit);
  removeDialog.addEventListener('close', () => removeForm.removeEventListener('submit', submit), { once: true });
  removeDialog.showModal();
}

/**
 * Switches the shared student link and class code on or off; a failure puts the switch back.
 * @param {boolean} on
 */
async function setShared(on) {
  const { cls, change } = current;
  if (!ui || !cls || !change) return;
  ui.msg.textContent = '';
  const res = await change('PATCH', `${base(cls)}/settings`, { shared_links: on });
  if (!res.ok) {
    ui.shared.checked = !on;
    ui.msg.textContent = failureText(res);
    return;
  }
  ui.shared.checked = !!res.body.shared_links;
  // The class's card on the dashboard says "personal links only" while they are off.
  const marker = document.querySelector(`li[data-class="${CSS.escape(cls.id)}"] .class-shared`);
  if (marker instanceof HTMLElement) marker.hidden = ui.shared.checked;
  toast(on ? 'The shared student link and class code work again.' : 'Students now join only with their personal link.');
}

/**
 * Runs `fn` over `items`, at most `limit` at a time; the results in the items' order.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T) => Promise<R>} fn
 * @returns {Promise<R[]>}
 */
async function mapLimited(items, limit, fn) {
  /** @type {R[]} */
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Prints names, links and a QR code per link: a sheet only print shows (style.css,
 * `body.printing`). Each student's card (`GET …/students/{sid}`) brings a fresh link on this
 * page's address with its QR code, so the printed link and code are the same link; a student
 * whose card fails is printed with the listed link and no code (and the teacher told).
 */
async function printList() {
  const { cls } = current;
  if (!ui || !cls || ui.print.disabled) return;
  ui.print.disabled = true;
  ui.note.textContent = 'Preparing the sheet…';
  const students = [...current.students];
  const origin = encodeURIComponent(location.origin);
  /** @type {({link: Link, qr_svg: string} | null)[]} */
  const cards = await mapLimited(students, 4, async (s) => {
    const res = await api('GET', `${base(cls)}/students/${encodeURIComponent(s.id)}?origin=${origin}`);
    return res.ok ? res.body : null;
  });
  ui.print.disabled = false;
  if (current.cls !== cls) return;
  const until = cards.reduce((min, c, i) => Math.min(min, (c ?? students[i]).link.expires_at), Infinity);
  const items = students.map((s, i) => {
    const card = cards[i];
    return h('li', { class: 'print-card' },
      card ? h('img', { class: 'print-qr', alt: `QR code of ${s.name}'s link`, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(card.qr_svg)}` }) : null,
      h('div', {},
        h('p', { class: 'print-name' }, s.name, s.reference ? ` (${s.reference})` : ''),
        h('p', { class: 'print-link' }, card ? card.link.url : personalLink(s))));
  });
  ui.sheet.replaceChildren(
    h('h1', {}, `${cls.name}: personal links`),
    h('p', {}, students.length
      ? `Each link and code lets in only the student it names. They work until ${new Date(until * 1000).toLocaleString()}.`
      : 'No students on the list.'),
    h('ul', { class: 'print-list' }, ...items));
  // The codes must be drawn before the print dialog takes its snapshot.
  await Promise.all([...ui.sheet.querySelectorAll('img')].map((img) => img.decode().catch(() => undefined)));
  const missing = cards.filter((c) => !c).length;
  ui.note.textContent = missing
    ? `${missing} of ${students.length} QR codes could not be made; those students' links are printed without one.`
    : '';
  document.body.classList.add('printing');
  window.print();
}
