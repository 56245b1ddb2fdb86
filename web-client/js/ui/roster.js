// @ts-check
// The roster ("People"): one row per person with a connection dot, badges, and the teacher's
// controls (grant speak/camera/screen, mute, lower the hand, make co-teacher, remove), raised
// hands on top in the order they went up; the teacher's Mute all and Lower all hands; the list
// of people removed this session; the notice of refused joins; and the connection banner's
// media verdict for ourselves.

import { renderPill } from './connectivity.js';
import { $, h, ask, toast, roleBadge } from './dom.js';
import { refusedNotice } from '../messages.js';
import { raisedHands } from '../state.js';

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
  $('people-count').textContent = `(${everyone.length})`;
  $('btn-lower-all').disabled = raisedHands(everyone).length === 0;
}

/**
 * A new row; a teacher's row of a student carries the controls that act on that student.
 * @param {Room} room
 * @param {PeerInfo} p
 * @returns {HTMLElement}
 */
function buildRow(room, p) {
  const kind = rowKind(room, p);
  const teacherView = kind === 'student' || kind === 'student-co';
  const send = (/** @type {import('../protocol.js').ClientMessage} */ m) => room.signaling.send(m);
  const row = h('li', { class: 'person', 'data-peer': p.id });
  const dot = h('span', { class: 'dot', role: 'img' });
  const name = h('span', { class: 'name' });
  const badges = h('span', { class: 'badges' });
  // The role comes from the server's `role`, drawn as a badge: a name is plain text and
  // cannot draw one, so "Ms Rivera · Teacher" typed as a name still reads as a student.
  row.append(dot, name, ...(p.role === 'teacher' ? [roleBadge()] : []), badges);
  if (teacherView) {
    /** @param {'speak' | 'camera' | 'screen'} right @param {string} label */
    const grant = (right, label) => {
      const box = h('input', { type: 'checkbox', class: `grant-${right}`, 'aria-label': `${label}` });
      box.addEventListener('change', () => send({ type: 'grant', peer: p.id, [right]: box.checked }));
      return box;
    };
    const speak = grant('speak', `Allow ${p.name} to speak`);
    const camera = grant('camera', `Allow ${p.name} to show a camera`);
    const screen = grant('screen', `Allow ${p.name} to share the screen`);
    const mute = h('button', { type: 'button', class: 'small', 'aria-label': `Mute ${p.name}` }, 'Mute');
    mute.addEventListener('click', () => {
      send({ type: 'mute', peer: p.id, kind: 'all' });
      toast(`Asked ${p.name}'s browser to turn off microphone and camera.`);
    });
    const remove = h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${p.name}` }, 'Remove');
    remove.addEventListener('click', async () => {
      const reason = await ask({ title: `Remove ${p.name}?`, text: 'They are disconnected and cannot come back this session unless you readmit them (under "Removed").', ok: 'Remove', field: 'Reason (shown to them)' });
      if (reason === null) return;
      /** @type {import('../protocol.js').ClientMessage} */
      const msg = { type: 'remove', peer: p.id };
      if (reason) msg.reason = reason;
      send(msg);
    });
    const lower = h('button', { type: 'button', class: 'small act-lower', 'aria-label': `Lower hand: ${p.name}` }, 'Lower hand');
    lower.addEventListener('click', () => send({ type: 'lower_hands', peer: p.id }));
    const promote = h('button', { type: 'button', class: 'small act-promote', 'aria-label': `Make co-teacher: ${p.name}`, hidden: kind === 'student-co' }, 'Make co-teacher');
    promote.addEventListener('click', async () => {
      const ok = await ask({
        title: `Make ${p.name} a co-teacher?`,
        text: 'A co-teacher can do what you can (let students speak or share, mute, lower hands, remove students, lock the class) except end the class or make co-teachers. You can make them a student again.',
        ok: 'Make co-teacher',
      });
      if (ok) send({ type: 'promote', peer: p.id });
    });
    row.append(h('span', { class: 'actions' },
      h('label', { class: 'grant' }, speak, 'Speak'),
      h('label', { class: 'grant' }, camera, 'Camera'),
      h('label', { class: 'grant' }, screen, 'Screen'),
      mute, lower, promote, remove));
  }
  if (kind === 'co-teacher') {
    const demote = h('button', { type: 'button', class: 'small', 'aria-label': `Make student: ${p.name}` }, 'Make student');
    demote.addEventListener('click', () => send({ type: 'demote', peer: p.id }));
    row.append(h('span', { class: 'actions' }, demote));
  }
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
  /** @type {HTMLElement | null} */
  const lower = row.querySelector('.act-lower');
  if (lower) lower.hidden = !p.hand_raised;
  for (const right of /** @type {const} */ (['speak', 'camera', 'screen'])) {
    /** @type {HTMLInputElement | null} */
    const box = row.querySelector(`.grant-${right}`);
    if (box) box.checked = !!p.permissions[right];
  }
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
