// @ts-check
// Connectivity: the banner with the signaling connection's state, and the teacher's table of each
// student's media link (path, bitrate, loss, round trip).

import { $, h } from './dom.js';
import { PATH_LABEL } from '../stats.js';
import { quantity, reconnectText } from '../messages.js';
import { renderSelfIndicator } from './roster.js';

/** @typedef {import('../room.js').Room} Room */

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
  el.textContent = state === 'connected' ? 'Connected' : reconnectText(state, retryInMs);
  renderSelfIndicator(room);
}

/**
 * The teacher's connectivity table: one row per student.
 * @param {Room} room
 */
export function renderConnectivity(room) {
  const st = room.state;
  if (!st.me || st.me.role !== 'teacher') return;
  const body = $('conn-rows');
  const students = [...st.peers.values()].filter((p) => p.role === 'student');
  if (students.length === 0) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: '5' }, 'No students yet.')));
    return;
  }
  body.replaceChildren(...students.map((p) => {
    const l = p.connected ? st.linkOf(p.id) : null;
    const label = l && /** @type {Record<string, string>} */ (PATH_LABEL)[l.path];
    const path = !p.connected ? 'Offline' : l ? label || l.path : 'Connecting';
    const pathCell = h('td', { 'data-path': l ? l.path : 'none' }, path);
    if (l && l.reason) pathCell.append(h('div', { class: 'why' }, l.reason));
    return h('tr', { 'data-peer': p.id },
      h('th', { scope: 'row' }, p.name),
      pathCell,
      h('td', {}, quantity(l && l.bitrate_kbps, 'kbps')),
      h('td', {}, quantity(l && l.loss, '%')),
      h('td', {}, quantity(l && l.rtt_ms, 'ms')));
  }));
}
