// @ts-check
// Connectivity in plain words: the banner with the signaling connection's state and, for a
// student, the verdict on its own media link (the status pill, with the numbers one click away);
// and the teacher's list of each student's link — Good, Weak or Not connected, why, and what to
// do, with the numbers (path, bitrate, loss, round trip) in a details for whoever looks after the
// network. The verdicts come from verdict.js.

import { $, h } from './dom.js';
import { reconnectText, verdictSentence } from '../messages.js';
import { verdict, linkNumbers } from '../verdict.js';
import { renderSelfIndicator } from './roster.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../verdict.js').Verdict} Verdict */

/**
 * The banner for a signaling status (before entering the room: the join form's message).
 * @param {Room} room
 * @param {{state: string, attempt?: number, retryInMs?: number}} status
 */
export function renderStatus(room, { state, attempt, retryInMs }) {
  const el = $('conn');
  if (!room.entered) {
    if (state === 'waiting' && (attempt || 0) > 3) $('join-msg').textContent = 'Cannot reach the server; still trying…';
    return;
  }
  el.hidden = false;
  el.dataset.state = state;
  setText(el, state === 'connected' ? 'Connected' : reconnectText(state, retryInMs));
  renderSelfIndicator(room);
}

/**
 * The status pill once connected: a student's verdict on its media link (the details beside it
 * hold what to do and the numbers); a teacher's just says Connected.
 * @param {Room} room
 */
export function renderPill(room) {
  const st = room.state;
  const el = $('conn');
  const details = $('conn-details');
  if (st.status !== 'connected') {
    details.hidden = true;
    return;
  }
  const ind = st.selfIndicator(room.transport);
  el.dataset.state = ind.state;
  // The pill is a live region: its words change only when the verdict does, never with the numbers.
  setText(el, ind.text);
  const link = st.me && st.me.role === 'student' ? st.selfLink(room.transport) : null;
  details.hidden = !link;
  if (!link) return;
  const v = verdict(link);
  fillDetails(details, v, linkNumbers(link));
}

/**
 * The teacher's connectivity list: one row per student, updated in place (an open details and
 * the focus stay where they are).
 * @param {Room} room
 */
export function renderConnectivity(room) {
  const st = room.state;
  if (!st.me || st.me.role !== 'teacher') return;
  const body = $('conn-rows');
  const students = [...st.peers.values()].filter((p) => p.role === 'student');
  if (students.length === 0) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: '2' }, 'No students yet.')));
    return;
  }
  /** @type {Map<string, HTMLElement>} */
  const rows = new Map();
  body.querySelectorAll('tr[data-peer]').forEach((/** @type {HTMLElement} */ r) => rows.set(r.dataset.peer || '', r));
  const ordered = students.map((p) => {
    const l = p.connected ? st.linkOf(p.id) : null;
    const v = verdict(l, { connected: p.connected });
    const row = rows.get(p.id) || newRow(p.id, p.name);
    row.dataset.path = l ? l.path : 'none';
    row.dataset.level = v.level;
    /** @type {HTMLElement} */ (row.querySelector('th')).textContent = p.name;
    const sr = row.querySelector('summary .sr-only');
    if (sr) sr.textContent = ` for ${p.name}`;
    fillVerdict(/** @type {HTMLElement} */ (row.querySelector('.verdict-line')), v);
    fillDetails(/** @type {HTMLElement} */ (row.querySelector('details')), v, linkNumbers(l), false);
    return row;
  });
  // Keep the rows in roster order without moving one that is already in place.
  ordered.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  for (const extra of [...body.children].slice(ordered.length)) extra.remove();
}

/**
 * A student's row: name, verdict with reason and advice, and the numbers behind a details.
 * @param {string} id
 * @param {string} name
 * @returns {HTMLElement}
 */
function newRow(id, name) {
  return h('tr', { 'data-peer': id },
    h('th', { scope: 'row' }, name),
    h('td', {},
      h('p', { class: 'verdict-line' }),
      h('details', { class: 'numbers' },
        h('summary', {}, 'Details', h('span', { class: 'sr-only' }, ` for ${name}`)),
        h('dl', {}))));
}

/**
 * "Good — through the school's relay server", and what to do.
 * @param {HTMLElement} el
 * @param {Verdict} v
 */
function fillVerdict(el, v) {
  const parts = [h('strong', { class: 'verdict', 'data-level': v.level }, v.label), ' ', h('span', { class: 'reason' }, v.level === 'wait' ? `${v.reason}…` : v.reason)];
  if (v.advice) parts.push(h('span', { class: 'advice' }, v.advice));
  const key = `${v.level}|${v.reason}|${v.advice}`;
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.replaceChildren(...parts);
}

/**
 * A details' content: (for the pill) what to do, then the numbers as a definition list.
 * @param {HTMLElement} details
 * @param {Verdict} v
 * @param {Array<[string, string]>} numbers
 * @param {boolean} [withAdvice]
 */
function fillDetails(details, v, numbers, withAdvice = true) {
  const advice = details.querySelector('.advice-text');
  if (withAdvice && advice) advice.textContent = v.advice || `${verdictSentence(v)}.`;
  const dl = /** @type {HTMLElement} */ (details.querySelector('dl'));
  const key = JSON.stringify(numbers);
  if (dl.dataset.key === key) return;
  dl.dataset.key = key;
  dl.replaceChildren(...numbers.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

/**
 * Sets an element's text only when it changes (a live region re-reads every change).
 * @param {HTMLElement} el
 * @param {string} text
 */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
