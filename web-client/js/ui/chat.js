// @ts-check
// The chat: the message form (a student may send to the teachers only), chat lines (with the teacher badge from the server's role, and a mark on lines
// to the teachers only) and the page's own notes in the same log.

import { $, h, toast, roleBadge } from './dom.js';
import { formatTime } from '../messages.js';
import { chatArrived } from './panel.js';

/** @typedef {import('../room.js').Room} Room */

/** The chat log keeps this many lines. */
const MAX_LINES = 300;

/**
 * Sends what is typed in the chat form, and shows the chat.
 * @param {Room} room
 */
export function wireChat(room) {
  $('chat-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text) return;
    const me = room.state.me;
    const toTeachers = !!me && me.role === 'student' && $('chat-to').value === 'teachers';
    /** @type {import('../protocol.js').ClientMessage} */
    const msg = { type: 'chat', text };
    if (toTeachers) msg.to = 'teachers';
    if (room.signaling.send(msg)) {
      input.value = '';
    } else {
      toast('Not connected; your message was not sent.', 'error');
    }
  });
}

/**
 * A chat line (once per message id: a resumed welcome repeats the recent ones).
 * @param {Room} room
 * @param {import('../protocol.js').ChatEntry} entry
 * @param {{history?: boolean}} [opts] `history`: from a `welcome`, not new
 */
export function addChat(room, entry, { history = false } = {}) {
  if (room.chatIds.has(entry.id)) return;
  room.chatIds.add(entry.id);
  const me = room.state.me;
  const mine = !!me && entry.from === me.id;
  const sender = mine ? me : room.state.peers.get(entry.from);
  const toTeachers = entry.to === 'teachers';
  const li = h('li', { class: `${mine ? 'mine' : ''}${toTeachers ? ' private' : ''}`.trim() },
    h('span', { class: 'who' }, entry.name),
    sender && sender.role === 'teacher' ? roleBadge() : null,
    h('time', { datetime: new Date(entry.time).toISOString() }, formatTime(entry.time)),
    toTeachers ? h('span', { class: 'to-teachers' }, 'to teachers only') : null,
    h('p', {}, entry.text));
  const list = $('chat-log');
  list.append(li);
  while (list.children.length > MAX_LINES) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
  chatArrived(room, { mine, history, from: entry.name });
}

/**
 * A note from the page in the chat log (e.g. "Reconnected to the class.").
 * @param {string} text
 */
export function addNote(text) {
  const list = $('chat-log');
  list.append(h('li', { class: 'note' }, text));
  list.scrollTop = list.scrollHeight;
}
