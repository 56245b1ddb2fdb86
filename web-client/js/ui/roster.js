// @ts-check
// The roster ("People"): one line per person with a connection dot, badges and, for a teacher,
// one ⋯ button that opens the actions for that person (person-menu.js: grant speak/camera/
// screen, lower the hand, mute, make co-teacher, remove); raised hands on top in the order they
// went up, counted on the People tab; the teacher's Mute all and Lower all hands; the list of
// people removed this session; the notice of refused joins; and the connection banner's media
// verdict for ourselves. The ⋯ buttons are one Tab stop (a roving tabindex: the arrow keys move
// between people), so the keyboard passes a class of 30 in one step.

import { renderPill } from './connectivity.js';
import { $, h, toast, roleBadge } from './dom.js';
import { refusedNotice } from '../messages.js';
import { raisedHands } from '../state.js';
import { menuButton, syncPersonMenu, wirePersonMenu } from './person-menu.js';
import { renderHands, rovingKeys } from './panel.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../protocol.js').PeerInfo} PeerInfo */

/**
 * Wires Mute all and Lower all hands (once, on entering the room).
 * @param {Room} room
 */
export function wireRoster(room) {
  $('btn-mute-all').addEventListener('click', () => {
    if (room.signaling.send({ type: 'mute_all', kind: 'audio' })) toast('Asked every student to turn off their microphone.');
  });
  $('btn-lower-all').addEventListener('click', () => room.signaling.send({ type: 'lower_hands' }));
  const list = $('roster');
  rovingKeys(list, 'button.act-menu', ['ArrowUp', 'ArrowDown']);
  // A button clicked (or focused by the arrows) is the roster's Tab stop from then on.
  list.addEventListener('focusin', (/** @type {FocusEvent} */ e) => {
    const t = /** @type {HTMLElement} */ (e.target);
    if (!t.matches('button.act-menu')) return;
    for (const b of list.querySelectorAll('button.act-menu')) /** @type {HTMLElement} */ (b).tabIndex = b === t ? 0 : -1;
  });
  wirePersonMenu();
}

/**
 * Which controls a person's row carries on our page (both roles decide).
 * @param {Room} room
 * @param {PeerInfo} p
 * @returns {string}
 */
function rowKind(room, p) {
  const me = /** @type {NonNullable<Room['state']['me']>} */ (room.state.me);
  if (me.role !== 'teacher' || p.id === me.id) return 'plain';
  if (p.role === 'student') return me.co_teacher ? 'student-co' : 'student';
  return p.co_teacher && !me.co_teacher ? 'co-teacher' : 'plain';
}

/**
 * Adds, orders and removes rows so the list matches the class.
 * @param {Room} room
 */
export function renderRoster(room) {
  if (!room.state.me) return;
  const list = $('roster');
  const everyone = room.state.roster(room.media.state());
  const ids = new Set(everyone.map((p) => p.id));
  for (const [id, row] of room.rows) {
    if (!ids.has(id)) {
      row.remove();
      room.rows.delete(id);
    }
  }
  everyone.forEach((p, i) => {
    let row = room.rows.get(p.id);
    const kind = rowKind(room, p);
    if (row && row.dataset.kind !== kind) {
      row.remove();
      row = undefined;
    }
    if (!row) {
      row = buildRow(room, p);
      row.dataset.kind = kind;
      room.rows.set(p.id, row);
    }
    if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
    renderRow(room, p.id);
  });
  // Exactly one ⋯ button is in the Tab order (the first, until another one had the focus).
  const buttons = /** @type {HTMLElement[]} */ ([...list.querySelectorAll('button.act-menu')]);
  if (buttons.length && !buttons.some((b) => b.tabIndex === 0)) buttons[0].tabIndex = 0;
  $('people-count').textContent = `(${everyone.length})`;
  const hands = raisedHands(everyone).length;
  $('btn-lower-all').disabled = hands === 0;
  renderHands(hands);
}

/**
 * A new row, on one line: connection dot, name, teacher badge, status badges and, on a
 * teacher's page, the ⋯ button that opens the actions for that person (person-menu.js).
 * @param {Room} room
 * @param {PeerInfo} p
 * @returns {HTMLElement}
 */
function buildRow(room, p) {
  const kind = rowKind(room, p);
  const row = h('li', { class: 'person', 'data-peer': p.id });
  const dot = h('span', { class: 'dot', role: 'img' });
  const name = h('span', { class: 'name' });
  const badges = h('span', { class: 'badges' });
  // The role comes from the server's `role`, drawn as a badge: a name is plain text and
  // cannot draw one, so "Ms Rivera · Teacher" typed as a name still reads as a student.
  row.append(dot, name, ...(p.role === 'teacher' ? [roleBadge()] : []), badges);
  if (kind !== 'plain') row.append(menuButton(room, p, /** @type {import('./person-menu.js').MenuKind} */ (kind)));
  return row;
}

/**
 * Refreshes one person's row: dot, name, badges, the teacher's grant boxes.
 * @param {Room} room
 * @param {string} id
 */
export function renderRow(room, id) {
  const st = room.state;
  const row = room.rows.get(id);
  if (!row || !st.me) return;
  const self = id === st.me.id;
  const p = self ? st.self(room.media.state(), st.status === 'connected') : st.peers.get(id);
  if (!p) return;
  const ind = self ? st.selfIndicator(room.transport) : st.indicator(p, room.transport);
  const dot = /** @type {HTMLElement} */ (row.querySelector('.dot'));
  dot.dataset.state = ind.state;
  dot.setAttribute('aria-label', ind.text);
  dot.title = ind.text;
  /** @type {HTMLElement} */ (row.querySelector('.name')).textContent = `${p.name}${self ? ' (you)' : ''}`;
  const badges = [];
  if (p.hand_raised) badges.push(h('span', { class: 'badge hand', role: 'img', 'aria-label': 'Hand raised', title: 'Hand raised' }, 'Hand up'));
  if (p.co_teacher) badges.push(h('span', { class: 'badge' }, 'Co-teacher'));
  if (p.media.screen) badges.push(h('span', { class: 'badge' }, 'Screen'));
  if (p.media.camera) badges.push(h('span', { class: 'badge' }, 'Camera'));
  if (p.media.mic) badges.push(h('span', { class: 'badge' }, 'Mic'));
  badges.push(h('span', { class: 'sr-only' }, `, ${ind.text}`));
  /** @type {HTMLElement} */ (row.querySelector('.badges')).replaceChildren(...badges);
  row.classList.toggle('raised', !!p.hand_raised);
  if (!self) syncPersonMenu(room, id);
}

/**
 * Our own row and the connection banner, with the media verdict once connected.
 * @param {Room} room
 */
export function renderSelfIndicator(room) {
  const st = room.state;
  if (!room.entered || !st.me) return;
  renderRow(room, st.me.id);
  renderPill(room);
}

/**
 * The teacher's list of people removed this session, each with a Readmit button.
 * @param {Room} room
 * @param {import('../protocol.js').RemovedPeer[]} removed
 */
export function renderRemoved(room, removed) {
  const section = $('removed-section');
  const list = $('removed-list');
  list.replaceChildren(...removed.map((r) => {
    const readmit = h('button', { type: 'button', class: 'small', 'aria-label': `Readmit ${r.name}` }, 'Readmit');
    readmit.addEventListener('click', () => room.signaling.send({ type: 'readmit', peer: r.id }));
    return h('li', { class: 'person', 'data-peer': r.id },
      h('span', { class: 'name' }, r.name),
      r.role === 'teacher' ? roleBadge() : null,
      h('span', { class: 'actions' }, readmit));
  }));
  section.hidden = removed.length === 0;
}

/**
 * A teacher's notice of joins the server refused (knocking at a locked class, full, removed…).
 * @param {import('../protocol.js').JoinRefused} refused
 */
export function showRefused(refused) {
  const note = $('knock-note');
  note.textContent = refusedNotice(refused);
  note.hidden = false;
  note.dataset.code = refused.code;
}
