// @ts-check
// The side panel: People, Chat and (teachers) Connectivity as tabs (the WAI-ARIA tabs pattern:
// one Tab stop, arrow keys move and select), with a count of raised hands on People and of new
// messages on Chat while it is not shown; what a role shows (a teacher's Mute all and Lower all
// hands, a student's "To" choice: everyone or the teachers only), the chat sound (a short
// WebAudio beep; its off switch is kept in localStorage), and reactions (the bar, and a
// reaction shown for a moment on the person's roster row and video tile).

import { $, h, toast } from './dom.js';
import { REACTIONS } from '../protocol.js';

/** @typedef {import('../room.js').Room} Room */

/** localStorage key of the chat sound switch: "off" when turned off. */
export const SOUND_KEY = 'aula.chatSound';
/** A reaction shows this long. */
const REACTION_MS = 4000;
/** At most one beep in this time, however many lines arrive. */
const BEEP_GAP_MS = 1500;

/** The tabs: tab id → the panel it shows. */
const TABS = /** @type {const} */ ({ people: 'tab-people', chat: 'tab-chat', connectivity: 'tab-conn' });
/** @typedef {keyof typeof TABS} Tab */

/**
 * What the panel keeps per room: beeps made (for the tests), the audio context, the tab shown
 * and the messages that arrived while the chat was not shown.
 * @typedef {{beeps: number, lastBeep: number, audio: AudioContext | null, tab: Tab, unread: number}} PanelState
 */
/** @type {WeakMap<Room, PanelState>} */
const states = new WeakMap();

/**
 * @param {Room} room
 * @returns {PanelState}
 */
export function panelState(room) {
  let s = states.get(room);
  if (!s) {
    s = { beeps: 0, lastBeep: 0, audio: null, tab: 'people', unread: 0 };
    states.set(room, s);
  }
  return s;
}

/**
 * Wires the tabs, the sound switch and the reaction bar (once, on entering the room). A teacher
 * starts on People, a student on Chat.
 * @param {Room} room
 */
export function wirePanel(room) {
  const tabs = /** @type {HTMLElement[]} */ ([...$('side-tabs').querySelectorAll('[role="tab"]')]);
  for (const tab of tabs) tab.addEventListener('click', () => selectTab(room, tabOf(tab)));
  $('side-tabs').addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    const shown = tabs.filter((t) => !t.hidden);
    const at = shown.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (at < 0) return;
    const to = e.key === 'ArrowRight' ? at + 1 : e.key === 'ArrowLeft' ? at - 1 : e.key === 'Home' ? 0 : e.key === 'End' ? shown.length - 1 : null;
    if (to === null) return;
    e.preventDefault();
    const target = shown[(to + shown.length) % shown.length];
    selectTab(room, tabOf(target));
    target.focus();
  });
  const me = room.state.me;
  selectTab(room, me && me.role === 'teacher' ? 'people' : 'chat');
  $('btn-chat-sound').addEventListener('click', () => {
    setSoundOn(!soundOn());
    renderSound();
  });
  renderSound();
  const bar = $('reactions');
  bar.replaceChildren(...REACTIONS.map((emoji, i) => {
    const b = h('button', { type: 'button', class: 'react', tabindex: i === 0 ? '0' : '-1' }, emoji);
    b.addEventListener('click', () => {
      if (!room.signaling.send({ type: 'react', emoji })) toast('Not connected; your reaction was not sent.', 'error');
    });
    return b;
  }));
  rovingKeys(bar, 'button.react', ['ArrowLeft', 'ArrowRight']);
}

/**
 * Arrow keys move focus (and the one Tab stop) among `selector` inside `container`.
 * @param {HTMLElement} container
 * @param {string} selector
 * @param {[string, string]} keys previous, next
 */
export function rovingKeys(container, selector, [prev, next]) {
  container.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    const items = /** @type {HTMLElement[]} */ ([...container.querySelectorAll(selector)]);
    const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    if (at < 0) return;
    const to = e.key === next ? at + 1 : e.key === prev ? at - 1 : e.key === 'Home' ? 0 : e.key === 'End' ? items.length - 1 : null;
    if (to === null) return;
    e.preventDefault();
    const target = items[(to + items.length) % items.length];
    for (const el of items) el.tabIndex = el === target ? 0 : -1;
    target.focus();
  });
}

/**
 * Which tab a tab element is.
 * @param {HTMLElement} el
 * @returns {Tab}
 */
function tabOf(el) {
  const found = /** @type {Array<[Tab, string]>} */ (Object.entries(TABS)).find(([, id]) => id === el.id);
  return found ? found[0] : 'people';
}

/**
 * Shows one tab's panel; showing the chat clears its count of new messages.
 * @param {Room} room
 * @param {Tab} tab
 */
export function selectTab(room, tab) {
  const s = panelState(room);
  s.tab = tab;
  for (const [name, id] of /** @type {Array<[Tab, string]>} */ (Object.entries(TABS))) {
    const el = $(id);
    const on = name === tab;
    el.setAttribute('aria-selected', String(on));
    el.tabIndex = on ? 0 : -1;
    $(el.getAttribute('aria-controls')).hidden = !on;
  }
  if (tab === 'chat') {
    s.unread = 0;
    renderUnread(room);
    const log = $('chat-log');
    log.scrollTop = log.scrollHeight;
  }
}

/** @param {Room} room */
function renderUnread(room) {
  const n = panelState(room).unread;
  const badge = $('chat-badge');
  badge.hidden = n === 0;
  badge.replaceChildren(h('span', { 'aria-hidden': 'true' }, n > 99 ? '99+' : String(n)),
    h('span', { class: 'sr-only' }, `, ${n} new ${n === 1 ? 'message' : 'messages'}`));
}

/**
 * The count of raised hands on the People tab.
 * @param {number} n
 */
export function renderHands(n) {
  const badge = $('hands-badge');
  badge.hidden = n === 0;
  const text = `${n} ${n === 1 ? 'hand' : 'hands'} up`;
  if (badge.title === text) return;
  badge.title = text;
  badge.replaceChildren(h('span', { 'aria-hidden': 'true' }, `✋ ${n}`), h('span', { class: 'sr-only' }, `, ${text}`));
}

/**
 * What our role shows: the roster tools and the Connectivity tab for teachers, the "To" choice
 * for students. Called on entering and when our role changes.
 * @param {Room} room
 */
export function applyPanelRole(room) {
  const me = room.state.me;
  if (!me) return;
  const teacher = me.role === 'teacher';
  $('people-tools').hidden = !teacher;
  $('roster-hint').hidden = !teacher;
  $('tab-conn').hidden = !teacher;
  if (!teacher && panelState(room).tab === 'connectivity') selectTab(room, 'people');
  $('chat-to-field').hidden = teacher;
  if (teacher) $('chat-to').value = 'everyone';
}

/**
 * A chat line arrived: a beep unless turned off and, while the chat is not shown, a count on
 * its tab (and a word for screen readers, since the hidden log's live region says nothing).
 * Our own lines and a `welcome`'s history do neither.
 * @param {Room} room
 * @param {{mine: boolean, history: boolean, from: string}} how
 */
export function chatArrived(room, { mine, history, from }) {
  if (mine || history) return;
  const s = panelState(room);
  if (s.tab !== 'chat') {
    s.unread += 1;
    renderUnread(room);
    $('panel-announce').textContent = `${s.unread} new in the chat, the last from ${from}`;
  }
  if (soundOn()) beep(room);
}

/** Whether new chat lines beep (on unless turned off on this browser). */
export function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) !== 'off';
  } catch {
    return true;
  }
}

/**
 * @param {boolean} on
 */
function setSoundOn(on) {
  try {
    localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  } catch {
    // Private mode without storage: the switch lasts for this page only.
  }
}

function renderSound() {
  const b = $('btn-chat-sound');
  b.setAttribute('aria-pressed', String(soundOn()));
  b.title = soundOn() ? 'New messages make a short sound' : 'New messages are silent';
}

/**
 * A short, quiet two-tone beep.
 * @param {Room} room
 */
function beep(room) {
  const s = panelState(room);
  const now = performance.now();
  if (now - s.lastBeep < BEEP_GAP_MS) return;
  s.lastBeep = now;
  try {
    const ctx = s.audio || (s.audio = new AudioContext());
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
    const t = ctx.currentTime;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.12, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    gain.connect(ctx.destination);
    const osc = ctx.createOscillator();
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1175, t + 0.09);
    osc.connect(gain);
    osc.start(t);
    osc.stop(t + 0.26);
    s.beeps += 1;
  } catch {
    // No audio output: the badge still says it.
  }
}

/**
 * `reaction`: shows the emoji for a moment on the person's roster row and video tile.
 * @param {Room} room
 * @param {import('../protocol.js').Reaction} msg
 */
export function showReaction(room, { peer, emoji }) {
  if (!REACTIONS.includes(emoji)) return;
  const row = room.rows.get(peer);
  const tile = document.querySelector(`#tiles figure[data-key^="${CSS.escape(peer)}:"]`);
  for (const host of [row, tile]) {
    if (!host) continue;
    host.querySelectorAll('.react-bubble').forEach((b) => b.remove());
    const bubble = h('span', { class: 'react-bubble', 'data-emoji': emoji }, emoji);
    host.append(bubble);
    setTimeout(() => bubble.remove(), REACTION_MS);
  }
}
