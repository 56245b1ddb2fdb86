// @ts-check
/**
 * "Past lessons" on "My classes" (js/dashboard.js): per class, a dialog listing each lesson a
 * teacher ended, newest first (date, duration, how many students attended); a lesson opens to
 * show who attended (name, with teachers and personal-link students marked; joined, left, time
 * present, reconnects), with a link to its attendance CSV and a button that deletes its attendance; "Delete
 * all attendance" clears the class's. Both deletions ask first. The dialog says how long the
 * server keeps attendance (`attendance_retention_days` of `GET /api/v1/info`).
 *
 * Calls: `GET /api/v1/classes/{id}/sessions`, `…/sessions/{sid}/attendance.csv` (a plain link:
 * the session cookie goes with it), `DELETE …/sessions/{sid}` and `DELETE …/sessions` (through
 * the dashboard's `change`, which adds the CSRF token).
 */

import { api, failureText } from './staff.js';
import { h, toast } from './ui/dom.js';
import { duration } from './ui/ended.js';
import { formatTime } from './messages.js';

/** @typedef {{id: string, name: string}} ClassRef */
/** @typedef {{name: string, role: string, student?: string, joined: number, left: number, present_secs: number, reconnects: number}} Attended */
/** @typedef {{id: number, started: number, ended: number, attendance: Attended[]}} Lesson */
/** @typedef {(method: string, path: string, body?: unknown) => Promise<{ok: boolean, status: number, body: any}>} Change */

/** The dialogs, built on first use (the dashboard's markup stays as it is). */
/** @type {{dialog: HTMLDialogElement, title: HTMLElement, retention: HTMLElement, empty: HTMLElement, list: HTMLElement, msg: HTMLElement, deleteAll: HTMLButtonElement} | null} */
let ui = null;
/** @type {{dialog: HTMLDialogElement, form: HTMLFormElement, text: HTMLElement, msg: HTMLElement, ok: HTMLButtonElement} | null} */
let confirmUi = null;

/** `[attendance] retention_days` as the server says it (asked once). */
/** @type {Promise<number | null> | null} */
let retentionDays = null;

/**
 * The class's base path in the API.
 * @param {ClassRef} c
 */
const sessionsPath = (c) => `/api/v1/classes/${encodeURIComponent(c.id)}/sessions`;

/**
 * A lesson's date and start time, e.g. "Tue, 2 Dec 2026, 14:05".
 * @param {number} ms
 * @returns {string}
 */
export function lessonWhen(ms) {
  return new Date(ms).toLocaleString([], {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

/**
 * How many students took part, in words.
 * @param {Lesson} lesson
 * @returns {string}
 */
export function attendedText(lesson) {
  const n = lesson.attendance.filter((a) => a.role === 'student').length;
  if (n === 0) return 'no students attended';
  return n === 1 ? '1 student attended' : `${n} students attended`;
}

/**
 * What the dialog says about keeping attendance.
 * @param {number | null} days
 * @returns {string}
 */
export function retentionText(days) {
  if (days === 0) return 'This server does not keep attendance: lessons are not recorded.';
  const kept = days === null ? 'for a limited time (set by your Aula administrator)' : days === 1 ? 'for 1 day' : `for ${days} days`;
  return `Attendance is kept ${kept} after each lesson, then deleted automatically. You can delete it sooner here.`;
}

function retention() {
  retentionDays ??= api('GET', '/api/v1/info').then((res) => {
    const days = res.ok ? res.body?.attendance_retention_days : null;
    return typeof days === 'number' ? days : null;
  });
  return retentionDays;
}

function buildDialog() {
  if (ui) return ui;
  const title = h('h2', { id: 'lessons-title', tabindex: '-1' });
  const retentionEl = h('p', { id: 'lessons-retention', class: 'hint' });
  const empty = h('p', { id: 'lessons-empty', hidden: true },
    'No past lessons yet. When you end a lesson with "End class", who attended shows here.');
  const list = h('ol', { id: 'lessons-list', class: 'lessons' });
  const msg = h('p', { id: 'lessons-msg', class: 'error', role: 'alert' });
  const deleteAll = h('button', { type: 'button', class: 'danger', id: 'lessons-delete-all' }, 'Delete all attendance');
  const close = h('button', { type: 'button', id: 'lessons-close' }, 'Close');
  const dialog = h('dialog', { id: 'lessons-dialog', class: 'wide lessons-dialog', 'aria-labelledby': 'lessons-title', 'aria-describedby': 'lessons-retention' },
    h('div', { class: 'stack' }, title, retentionEl, empty, list, msg,
      h('div', { class: 'row end wrap' }, deleteAll, close)));
  close.addEventListener('click', () => dialog.close());
  document.body.append(dialog);
  ui = { dialog, title, retention: retentionEl, empty, list, msg, deleteAll };
  return ui;
}

function buildConfirm() {
  if (confirmUi) return confirmUi;
  const text = h('p', { id: 'lessons-confirm-text' });
  const msg = h('p', { id: 'lessons-confirm-msg', class: 'error', role: 'alert' });
  const ok = h('button', { type: 'submit', class: 'danger' }, 'Delete attendance');
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const form = h('form', { method: 'dialog', class: 'stack' },
    h('h2', { id: 'lessons-confirm-title' }, 'Delete attendance?'), text, msg,
    h('div', { class: 'row end' }, cancel, ok));
  const dialog = h('dialog', { id: 'lessons-confirm', role: 'alertdialog', 'aria-labelledby': 'lessons-confirm-title', 'aria-describedby': 'lessons-confirm-text' }, form);
  cancel.addEventListener('click', () => dialog.close());
  document.body.append(dialog);
  confirmUi = { dialog, form, text, msg, ok };
  return confirmUi;
}

/**
 * Asks before deleting; `run` deletes. A failure stays in the question, success closes it.
 * @param {string} question
 * @param {() => Promise<{ok: boolean, status: number, body: any}>} run
 * @returns {Promise<boolean>} whether it was deleted
 */
function confirmDelete(question, run) {
  const c = buildConfirm();
  c.text.textContent = question;
  c.msg.textContent = '';
  return new Promise((resolve) => {
    let done = false;
    /** @param {SubmitEvent} ev */
    const submit = async (ev) => {
      ev.preventDefault();
      c.ok.disabled = true;
      const res = await run();
      c.ok.disabled = false;
      if (!res.ok) {
        c.msg.textContent = failureText(res);
        return;
      }
      done = true;
      c.dialog.close();
    };
    c.form.addEventListener('submit', submit);
    c.dialog.addEventListener('close', () => {
      c.form.removeEventListener('submit', submit);
      resolve(done);
    }, { once: true });
    c.dialog.showModal();
  });
}

/**
 * One person's row: the name (with "teacher" or "personal link" marked), when they joined and
 * were last seen, the time present and how many times they came back.
 * @param {Attended} a
 */
function personRow(a) {
  return h('tr', {},
    h('th', { scope: 'row' }, a.name,
      a.role === 'teacher' ? h('span', { class: 'badge' }, 'teacher') : null,
      a.student ? h('span', { class: 'badge', title: 'Joined with their own link from the class list' }, 'personal link') : null),
    h('td', { class: 'when' }, h('span', {}, `${formatTime(a.joined)}–`), h('wbr'), h('span', {}, formatTime(a.left))),
    h('td', {}, duration(a.present_secs)),
    h('td', { class: 'num' }, String(a.reconnects)));
}

/**
 * One lesson: a line that opens to who attended, the CSV link and the delete button.
 * @param {ClassRef} c
 * @param {Lesson} lesson
 * @param {Change} change
 */
function lessonItem(c, lesson, change) {
  const when = lessonWhen(lesson.started);
  const secs = (lesson.ended - lesson.started) / 1000;
  const path = `${sessionsPath(c)}/${encodeURIComponent(String(lesson.id))}`;
  const label = `lesson of ${when}`;
  return h('li', { class: 'lesson', 'data-session': String(lesson.id) },
    h('details', {},
      h('summary', {},
        h('time', { datetime: new Date(lesson.started).toISOString() }, when),
        ` · ${duration(secs)} · ${attendedText(lesson)}`),
      h('div', { class: 'table-wrap', role: 'region', tabindex: '0', 'aria-label': `Who attended, ${label}` },
        h('table', { class: 'attendance' },
          h('thead', {}, h('tr', {},
            // Soft hyphens: the long heading breaks well in a phone's narrow column.
            ...['Name', 'Joined–left', 'Present', 'Re\u00adcon\u00adnects'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, ...lesson.attendance.map(personRow)))),
      h('div', { class: 'row wrap' },
        h('a', { class: 'button', href: `${path}/attendance.csv`, download: '', 'aria-label': `Download CSV: ${label}` }, 'Download CSV'),
        h('button', {
          type: 'button', class: 'danger', 'aria-label': `Delete attendance: ${label}`,
          onclick: async () => {
            const deleted = await confirmDelete(
              `Delete the attendance of the ${label} (${lesson.attendance.length} ${lesson.attendance.length === 1 ? 'person' : 'people'})? This cannot be undone.`,
              () => change('DELETE', path));
            if (!deleted) return;
            toast(`Deleted the attendance of the ${label}.`);
            await load(c, change);
            ui?.title.focus();
          },
        }, 'Delete attendance'))));
}

/**
 * Loads and shows the class's lessons in the open dialog.
 * @param {ClassRef} c
 * @param {Change} change
 */
async function load(c, change) {
  const d = buildDialog();
  const res = await api('GET', sessionsPath(c));
  if (res.status === 401) {
    location.assign('/signin');
    return;
  }
  if (!res.ok) {
    d.msg.textContent = failureText(res);
    return;
  }
  d.msg.textContent = '';
  /** @type {Lesson[]} */
  const lessons = res.body;
  lessons.sort((a, b) => b.ended - a.ended);
  d.list.replaceChildren(...lessons.map((l) => lessonItem(c, l, change)));
  d.empty.hidden = lessons.length > 0;
  d.deleteAll.hidden = lessons.length === 0;
}

/**
 * Opens "Past lessons" for a class.
 * @param {ClassRef} c
 * @param {Change} change
 */
async function open(c, change) {
  const d = buildDialog();
  d.title.textContent = `Past lessons: ${c.name}`;
  d.list.replaceChildren();
  d.empty.hidden = true;
  d.deleteAll.hidden = true;
  d.msg.textContent = '';
  d.deleteAll.onclick = async () => {
    const deleted = await confirmDelete(
      `Delete the attendance of every past lesson of ${c.name}? This cannot be undone.`,
      () => change('DELETE', sessionsPath(c)));
    if (!deleted) return;
    toast(`Deleted all attendance of ${c.name}.`);
    await load(c, change);
    d.title.focus();
  };
  const [days] = await Promise.all([retention(), load(c, change)]);
  d.retention.textContent = retentionText(days);
  if (!d.dialog.open) d.dialog.showModal();
  d.title.focus();
}

/**
 * The "Past lessons" button of a class's card.
 * @param {ClassRef} c
 * @param {Change} change the dashboard's state-changing call (with the CSRF token)
 */
export function pastLessonsButton(c, change) {
  return h('button', {
    type: 'button', 'aria-label': `Past lessons: ${c.name}`, 'aria-haspopup': 'dialog',
    onclick: () => open(c, change),
  }, 'Past lessons');
}
