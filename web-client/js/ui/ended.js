// @ts-check
// The end of a session, and coming back: the teacher's end screen (the lesson's duration and who
// attended, with "Start the class again"), the page after Leave ("You left the class", Rejoin),
// and rejoining — the page reloads and joins again by itself with the same link and name.

import { $, h, show } from './dom.js';
import { formatTime } from '../messages.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../protocol.js').LessonSummary} LessonSummary */

const AUTOJOIN_KEY = 'aula.autojoin';

/** Set when the page reloaded for a teacher's "Start the class again": the room sends `start`. */
export const autoStart = { pending: false };

/**
 * A length of time in words ("1 minute", "42 minutes", "1 h 05 min").
 * @param {number} secs
 * @returns {string}
 */
export function duration(secs) {
  const mins = Math.round(Math.max(0, secs) / 60);
  if (mins < 1) return 'less than a minute';
  if (mins < 60) return mins === 1 ? '1 minute' : `${mins} minutes`;
  return `${Math.floor(mins / 60)} h ${String(mins % 60).padStart(2, '0')} min`;
}

/**
 * The link this page was opened with comes back: the page reloads on it and joins by itself
 * (`start`: and starts the ended lesson again, for a teacher).
 * @param {{token: string, name: string, start?: boolean}} how
 */
export function rejoin({ token, name, start = false }) {
  try {
    sessionStorage.setItem(AUTOJOIN_KEY, JSON.stringify({ token, name, start }));
  } catch {
    /* storage off: the join form asks for the name again */
  }
  window.history.replaceState(null, '', `/join${window.location.search}#token=${encodeURIComponent(token)}`);
  window.location.reload();
}

/**
 * A rejoin asked for before the reload, if it is for this token (taken once).
 * @param {string} token
 * @returns {{name: string, start: boolean} | null}
 */
export function takeAutoJoin(token) {
  try {
    const raw = sessionStorage.getItem(AUTOJOIN_KEY);
    sessionStorage.removeItem(AUTOJOIN_KEY);
    const v = raw ? JSON.parse(raw) : null;
    if (v && v.token === token && typeof v.name === 'string') return { name: v.name, start: !!v.start };
  } catch {
    /* nothing usable */
  }
  return null;
}

/**
 * Takes the class link out of the address bar, so that opening it again in this tab is a
 * navigation the page sees (a `hashchange`), not a no-op on the same address.
 */
export function forgetLink() {
  window.history.replaceState(null, '', `/join${window.location.search}#left`);
}

/**
 * Shows the end-of-session page.
 * @param {{title: string, text: string, action?: {label: string, run: () => void}, summary?: LessonSummary | null}} page
 */
function endPage({ title, text, action, summary }) {
  $('ended-title').textContent = title;
  $('ended-text').textContent = text;
  const btn = $('ended-action');
  btn.hidden = !action;
  if (action) {
    btn.textContent = action.label;
    btn.onclick = () => {
      btn.disabled = true;
      action.run();
    };
  }
  renderSummary(summary || null);
  $('conn').hidden = true;
  show('ended');
  document.title = `${title} · Aula`;
  $('ended-title').setAttribute('tabindex', '-1');
  $('ended-title').focus();
}

/**
 * The lesson summary on the end screen: duration and who attended.
 * @param {LessonSummary | null} summary
 */
export function renderSummary(summary) {
  const box = $('summary');
  box.hidden = !summary;
  if (!summary) return;
  const secs = (summary.ended - summary.started) / 1000;
  $('summary-duration').textContent = `The lesson lasted ${duration(secs)} (${formatTime(summary.started)}–${formatTime(summary.ended)}).`;
  const students = summary.attendance.filter((a) => a.role === 'student');
  $('summary-count').textContent = students.length === 1 ? '1 student attended.' : `${students.length} students attended.`;
  $('summary-rows').replaceChildren(...summary.attendance.map((a) => h('tr', {},
    h('th', { scope: 'row' }, a.name, a.role === 'teacher' ? ' (teacher)' : ''),
    h('td', {}, formatTime(a.joined)),
    h('td', {}, formatTime(a.left)),
    h('td', {}, duration(a.present_secs)))));
}

/**
 * The teacher's end screen: what the lesson was, and "Start the class again".
 * @param {Room} room
 * @param {LessonSummary | null | undefined} summary
 * @param {{connected: boolean}} how `connected`: still joined (opened the link of an ended class)
 */
export function showTeacherEnded(room, summary, { connected }) {
  forgetLinkUnless(connected);
  endPage({
    title: 'The lesson has ended',
    text: 'Students who open the class link see "This lesson has ended" until you start the class again. The class and its links stay.',
    action: {
      label: 'Start the class again',
      run: () => {
        if (connected) room.signaling.send({ type: 'start' });
        else rejoin({ token: room.token, name: room.name, start: true });
      },
    },
    summary,
  });
}

/**
 * @param {boolean} connected
 */
function forgetLinkUnless(connected) {
  if (!connected) forgetLink();
}

/**
 * After Leave (or a wait given up): "You left the class", with Rejoin.
 * @param {Room} room
 * @param {{title?: string, text?: string, label?: string}} [words]
 */
export function showLeft(room, words = {}) {
  forgetLink();
  endPage({
    title: words.title || 'You left the class',
    text: words.text || 'You can rejoin with the same link whenever you like.',
    action: { label: words.label || 'Rejoin', run: () => rejoin({ token: room.token, name: room.name }) },
  });
}
