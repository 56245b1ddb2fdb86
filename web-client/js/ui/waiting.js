// @ts-check
// The waiting room: the page a student sees while she waits to be let in ("Waiting for the
// teacher to let you in…", with a Leave button), and the teacher's list of who waits (name, how
// long) with Admit / Decline per person and Admit all, plus the "Waiting room" toggle.

import { $, h, show } from './dom.js';
import { formatTime } from '../messages.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../protocol.js').WaitReason} WaitReason */
/** @typedef {import('../protocol.js').WaitingPeer} WaitingPeer */

/**
 * What a waiting student reads, by why she waits.
 * @param {WaitReason} reason
 * @returns {{title: string, text: string}}
 */
export function waitingText(reason) {
  if (reason === 'ended') {
    return {
      title: 'This lesson has ended',
      text: 'You will be let in when your teacher starts the class again. You can keep this page open, or leave and open the link later.',
    };
  }
  const why = reason === 'locked' ? 'The teacher has locked the class. ' : '';
  return {
    title: 'Waiting for the teacher to let you in…',
    text: `${why}Your teacher can see that you are waiting. Keep this page open.`,
  };
}

/**
 * `waiting`: the student's waiting page.
 * @param {Room} room
 * @param {import('../protocol.js').Waiting} msg
 */
export function showWaiting(room, { reason, class_name: className }) {
  const { title, text } = waitingText(reason);
  $('waiting-title').textContent = title;
  $('waiting-text').textContent = text;
  $('waiting-class').textContent = className;
  $('title').textContent = className;
  document.title = `${title} · Aula`;
  document.body.dataset.waiting = reason;
  show('waiting');
  $('conn').hidden = true;
  const leave = $('waiting-leave');
  leave.onclick = () => room.leave();
  $('waiting-title').setAttribute('tabindex', '-1');
  $('waiting-title').focus();
}

/**
 * How long someone has waited, in words.
 * @param {number} since Unix ms (server time)
 * @param {number} now Unix ms
 * @returns {string}
 */
export function waitedFor(since, now) {
  const mins = Math.floor(Math.max(0, now - since) / 60_000);
  if (mins < 1) return 'just now';
  return mins === 1 ? '1 minute' : `${mins} minutes`;
}

/**
 * `waiting_list` (teachers): who waits to be let in, with Admit / Decline and Admit all.
 * @param {Room} room
 * @param {WaitingPeer[]} waiting
 */
export function renderWaitingList(room, waiting) {
  room.waitingList = waiting;
  const panel = $('waiting-room');
  const list = $('waiting-list');
  const before = list.children.length;
  // A keyboard user on an Admit / Decline button keeps her place when the list changes.
  const focused = /** @type {HTMLElement | null} */ (document.activeElement);
  const row = focused && list.contains(focused) ? focused.closest('li') : null;
  const focusAt = row ? [...list.children].indexOf(row) : -1;
  const focusLabel = focused ? focused.textContent : '';
  panel.hidden = waiting.length === 0;
  $('waiting-count').textContent = `(${waiting.length})`;
  $('admit-all').hidden = waiting.length < 2;
  const now = Date.now();
  list.replaceChildren(...waiting.map((w) => h('li', { class: 'waiter', 'data-id': w.id },
    h('span', { class: 'name' }, w.name),
    h('span', { class: 'hint' }, h('time', { datetime: new Date(w.since).toISOString(), title: formatTime(w.since), 'data-since': String(w.since) }, `waiting ${waitedFor(w.since, now)}`)),
    h('span', { class: 'actions' },
      h('button', { type: 'button', class: 'small primary', 'aria-label': `Admit ${w.name}`, onclick: () => room.signaling.send({ type: 'admit', id: w.id }) }, 'Admit'),
      h('button', { type: 'button', class: 'small', 'aria-label': `Decline ${w.name}`, onclick: () => room.signaling.send({ type: 'decline', id: w.id }) }, 'Decline')))));
  if (focusAt >= 0) {
    const next = list.children[Math.min(focusAt, list.children.length - 1)];
    const buttons = next ? [...next.querySelectorAll('button')] : [];
    const target = buttons.find((b) => b.textContent === focusLabel) || buttons[0] || $('btn-waiting-room');
    target.focus();
  }
  if (waiting.length > before) {
    const newest = waiting[waiting.length - 1];
    $('waiting-announce').textContent = `${newest.name} is waiting to join.`;
  }
}

/**
 * Brings "waiting 3 minutes" up to date without redrawing the list (called every few seconds).
 */
export function refreshWaitingTimes() {
  const now = Date.now();
  document.querySelectorAll('#waiting-list time[data-since]').forEach((t) => {
    const el = /** @type {HTMLElement} */ (t);
    el.textContent = `waiting ${waitedFor(Number(el.dataset.since), now)}`;
  });
}

/**
 * Wires the teacher's waiting-room controls (once, on entering the room).
 * @param {Room} room
 */
export function wireWaitingRoom(room) {
  const toggle = $('btn-waiting-room');
  toggle.hidden = !(room.state.me && room.state.me.role === 'teacher');
  toggle.addEventListener('click', () => {
    const on = !!(room.state.cls && room.state.cls.waiting_room);
    room.signaling.send({ type: 'waiting_room', enabled: !on });
  });
  $('admit-all').addEventListener('click', () => room.signaling.send({ type: 'admit_all' }));
}

/**
 * The toggle's state from the class.
 * @param {import('../protocol.js').ClassInfo} cls
 */
export function renderWaitingToggle(cls) {
  const toggle = $('btn-waiting-room');
  toggle.setAttribute('aria-pressed', String(!!cls.waiting_room));
  toggle.title = cls.waiting_room
    ? 'New students wait until you let them in. Press to let them straight in.'
    : 'Press to have new students wait until you let them in.';
}
