// @ts-check
// A teacher's actions for one person, on demand: the ⋯ button on a roster row opens this menu
// with the rights to speak, show a camera and share the screen (checkable items), lower the
// hand, mute, make co-teacher (or a student again) and remove. One menu element serves every
// row, so a class of 30 has 30 small buttons rather than 200 controls. It follows the WAI-ARIA
// menu button pattern: the first item gets the focus, arrow keys move, Escape or Tab closes and
// the focus goes back to the button; a click elsewhere closes it.

import { $, h, ask, toast } from './dom.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../protocol.js').PeerInfo} PeerInfo */
/** @typedef {'student' | 'student-co' | 'co-teacher'} MenuKind */

/** The open menu: whose, and the button that opened it. */
/** @type {{peer: string, button: HTMLButtonElement} | null} */
let open = null;

/**
 * The ⋯ button of a person's row (one Tab stop for the whole roster: see roster.js).
 * @param {Room} room
 * @param {PeerInfo} p
 * @param {MenuKind} kind
 * @returns {HTMLButtonElement}
 */
export function menuButton(room, p, kind) {
  const b = /** @type {HTMLButtonElement} */ (h('button', {
    type: 'button', class: 'small act-menu', tabindex: '-1', 'data-kind': kind,
    'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-controls': 'person-menu',
    'aria-label': `Actions for ${p.name}`, title: `Actions for ${p.name}`,
  }, h('span', { 'aria-hidden': 'true' }, '⋯')));
  b.addEventListener('click', () => {
    if (open && open.button === b) closePersonMenu(true);
    else openPersonMenu(room, p.id, b);
  });
  return b;
}

/**
 * Wires the menu's keys and closing it (once, on entering the room).
 */
export function wirePersonMenu() {
  const menu = $('person-menu');
  menu.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    const items = visibleItems();
    const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    /** @type {number | null} */
    let to = null;
    if (e.key === 'ArrowDown') to = at + 1;
    else if (e.key === 'ArrowUp') to = at - 1;
    else if (e.key === 'Home') to = 0;
    else if (e.key === 'End') to = items.length - 1;
    else if (e.key === 'Escape' || e.key === 'Tab') {
      e.preventDefault();
      e.stopPropagation();
      closePersonMenu(true);
      return;
    }
    if (to === null || !items.length) return;
    e.preventDefault();
    items[(to + items.length) % items.length].focus();
  });
  document.addEventListener('pointerdown', (e) => {
    if (!open) return;
    const t = /** @type {Node} */ (e.target);
    if (!menu.contains(t) && !open.button.contains(t)) closePersonMenu(false);
  });
  // The menu follows its button when the window or the roster moves.
  const follow = () => {
    if (open) place(menu, open.button);
  };
  window.addEventListener('resize', follow);
  $('panel-people').addEventListener('scroll', follow, { passive: true });
}

/** @returns {HTMLElement[]} */
function visibleItems() {
  return /** @type {HTMLElement[]} */ ([...$('person-menu').querySelectorAll('[role^="menuitem"]')].filter((el) => !el.hidden));
}

/**
 * Opens the menu for a person under (or above) its button, focus on the first item.
 * @param {Room} room
 * @param {string} peer
 * @param {HTMLButtonElement} button
 */
export function openPersonMenu(room, peer, button) {
  closePersonMenu(false);
  const p = room.state.peers.get(peer);
  if (!p) return;
  const menu = $('person-menu');
  const kind = /** @type {MenuKind} */ (button.dataset.kind);
  menu.replaceChildren(...items(room, p, kind));
  menu.setAttribute('aria-label', `Actions for ${p.name}`);
  menu.dataset.peer = peer;
  menu.hidden = false;
  button.setAttribute('aria-expanded', 'true');
  open = { peer, button };
  syncPersonMenu(room, peer);
  const first = visibleItems()[0];
  if (first) first.focus();
}

/**
 * Closes the menu; `focusButton`: the focus goes back to the ⋯ button that opened it.
 * @param {boolean} focusButton
 */
export function closePersonMenu(focusButton) {
  if (!open) return;
  const { button } = open;
  open = null;
  const menu = $('person-menu');
  menu.hidden = true;
  menu.replaceChildren();
  button.setAttribute('aria-expanded', 'false');
  if (focusButton && button.isConnected) button.focus();
}

/**
 * Brings an open menu up to date with the person (called whenever the row is redrawn): the
 * checked rights and Lower hand follow the server; it closes when the person or the row is gone.
 * @param {Room} room
 * @param {string} peer
 */
export function syncPersonMenu(room, peer) {
  if (!open || open.peer !== peer) return;
  const p = room.state.peers.get(peer);
  if (!p || !open.button.isConnected) {
    closePersonMenu(false);
    return;
  }
  const menu = $('person-menu');
  for (const right of /** @type {const} */ (['speak', 'camera', 'screen'])) {
    const item = menu.querySelector(`[data-right="${right}"]`);
    if (item) item.setAttribute('aria-checked', String(!!p.permissions[right]));
  }
  const lower = /** @type {HTMLElement | null} */ (menu.querySelector('[data-act="lower"]'));
  if (lower) {
    if (!p.hand_raised && document.activeElement === lower) /** @type {HTMLElement} */ (menu.querySelector('[role^="menuitem"]')).focus();
    lower.hidden = !p.hand_raised;
  }
  place(menu, open.button);
}

/**
 * Puts the menu beside its button: right edges aligned, below it when there is room, else above.
 * @param {HTMLElement} menu
 * @param {HTMLElement} button
 */
function place(menu, button) {
  const b = button.getBoundingClientRect();
  const m = menu.getBoundingClientRect();
  const left = Math.max(8, Math.min(b.right - m.width, window.innerWidth - m.width - 8));
  const below = b.bottom + 4;
  const top = below + m.height <= window.innerHeight - 8 ? below : Math.max(8, b.top - m.height - 4);
  menu.style.left = `${Math.round(left)}px`;
  menu.style.top = `${Math.round(top)}px`;
}

/**
 * The menu's items for a person.
 * @param {Room} room
 * @param {PeerInfo} p
 * @param {MenuKind} kind
 * @returns {HTMLElement[]}
 */
function items(room, p, kind) {
  const send = (/** @type {import('../protocol.js').ClientMessage} */ m) => room.signaling.send(m);
  /**
   * @param {string} label
   * @param {() => void} act
   * @param {Record<string, string>} [attrs]
   */
  const item = (label, act, attrs = {}) => {
    const el = h('button', { type: 'button', role: 'menuitem', tabindex: '-1', ...attrs }, label);
    el.addEventListener('click', act);
    return el;
  };
  /** A step that asks first: the menu closes, the dialog opens. @param {() => void} then */
  const thenClose = (then) => () => {
    closePersonMenu(true);
    then();
  };
  if (kind === 'co-teacher') {
    return [item('Make student', thenClose(() => send({ type: 'demote', peer: p.id })), { 'data-act': 'demote' })];
  }
  /** @param {'speak' | 'camera' | 'screen'} right @param {string} label */
  const grant = (right, label) => item(label, () => {
    // The item keeps the menu open and shows the server's answer (peer_updated) when it comes.
    const now = room.state.peers.get(p.id);
    if (now) send({ type: 'grant', peer: p.id, [right]: !now.permissions[right] });
  }, { role: 'menuitemcheckbox', 'aria-checked': 'false', 'data-right': right });
  const list = [
    grant('speak', 'Allow to speak'),
    grant('camera', 'Allow to show a camera'),
    grant('screen', 'Allow to share the screen'),
    h('div', { role: 'separator' }),
    item('Lower hand', thenClose(() => send({ type: 'lower_hands', peer: p.id })), { 'data-act': 'lower' }),
    item('Mute microphone and camera', thenClose(() => {
      send({ type: 'mute', peer: p.id, kind: 'all' });
      toast(`Asked ${p.name}'s browser to turn off microphone and camera.`);
    }), { 'data-act': 'mute' }),
  ];
  if (kind === 'student') {
    list.push(item('Make co-teacher…', thenClose(async () => {
      const ok = await ask({
        title: `Make ${p.name} a co-teacher?`,
        text: 'A co-teacher can do what you can (let students speak or share, mute, lower hands, remove students, lock the class) except end the class or make co-teachers. You can make them a student again.',
        ok: 'Make co-teacher',
      });
      if (ok) send({ type: 'promote', peer: p.id });
    }), { 'data-act': 'promote' }));
  }
  list.push(item('Remove from the class…', thenClose(async () => {
    const reason = await ask({ title: `Remove ${p.name}?`, text: 'They are disconnected and cannot come back this session unless you readmit them (under "Removed").', ok: 'Remove', field: 'Reason (shown to them)' });
    if (reason === null) return;
    /** @type {import('../protocol.js').ClientMessage} */
    const msg = { type: 'remove', peer: p.id };
    if (reason) msg.reason = reason;
    send(msg);
  }), { 'data-act': 'remove', class: 'danger' }));
  return list;
}
