// @ts-check
// Keyboard shortcuts in the classroom: single keys, as in other meeting tools, that act only
// when the focus is not in a text field and no dialog is open — M microphone, V camera, H hand,
// C chat, ? this list. A screen reader in browse mode keeps its own single-key navigation (it
// does not pass these keys to the page); in focus mode they reach the page.

import { $, toast } from './dom.js';

/**
 * The shortcuts: key, what it does, and the button it presses (null: its own action).
 * @type {Array<{key: string, label: string, button: string | null}>}
 */
export const SHORTCUTS = [
  { key: 'M', label: 'Turn your microphone on or off', button: 'btn-mic' },
  { key: 'V', label: 'Turn your camera on or off', button: 'btn-camera' },
  { key: 'H', label: 'Raise or lower your hand', button: 'btn-hand' },
  { key: 'C', label: 'Go to the chat message box', button: null },
  { key: '?', label: 'Show these keyboard shortcuts', button: null },
];

/** What to say when the button for a key is not there (no right, or teachers have no hand). */
const UNAVAILABLE = /** @type {Record<string, string>} */ ({
  'btn-mic': 'Your microphone is off: the teacher can let you speak.',
  'btn-camera': 'Your camera is off: the teacher can let you share it.',
  'btn-hand': 'Raising a hand is for students.',
});

/**
 * Whether a key press belongs to what has the focus (typing, a dialog, a modified key).
 * @param {KeyboardEvent} e
 */
function notForUs(e) {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return true;
  const t = /** @type {HTMLElement | null} */ (e.target);
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return true;
  return !!document.querySelector('dialog[open]');
}

/**
 * Whether an element is shown (not hidden by itself or an ancestor).
 * @param {HTMLElement} el
 */
function shown(el) {
  return el.getClientRects().length > 0;
}

/** Focuses the chat box, opening the panel (a tab) that holds it if it is hidden. */
export function focusChat() {
  const input = $('chat-input');
  if (!input) return;
  if (!shown(input)) {
    for (const el of document.querySelectorAll('[aria-controls]')) {
      const panel = document.getElementById(el.getAttribute('aria-controls') || '');
      if (panel && panel.contains(input)) {
        /** @type {HTMLElement} */ (el).click();
        break;
      }
    }
  }
  input.focus();
}

/** Opens the list of shortcuts. */
export function showShortcuts() {
  const dlg = $('shortcuts-dialog');
  if (!dlg || dlg.open) return;
  dlg.showModal();
}

/**
 * Listens for the shortcuts while in the room, and adds `aria-keyshortcuts` to the buttons.
 * @param {() => boolean} inRoom whether the classroom is on screen
 */
export function wireShortcuts(inRoom) {
  const list = $('shortcuts-list');
  if (list && !list.children.length) {
    for (const s of SHORTCUTS) {
      const dt = document.createElement('dt');
      const kbd = document.createElement('kbd');
      kbd.textContent = s.key;
      dt.append(kbd);
      const dd = document.createElement('dd');
      dd.textContent = s.label;
      list.append(dt, dd);
    }
  }
  for (const s of SHORTCUTS) if (s.button) $(s.button).setAttribute('aria-keyshortcuts', s.key);
  $('btn-shortcuts').addEventListener('click', showShortcuts);
  document.addEventListener('keydown', (/** @type {KeyboardEvent} */ e) => {
    if (!inRoom() || notForUs(e)) return;
    const key = e.key === '?' ? '?' : e.key.length === 1 && !e.shiftKey ? e.key.toUpperCase() : '';
    const s = SHORTCUTS.find((x) => x.key === key);
    if (!s) return;
    e.preventDefault();
    if (s.key === '?') return showShortcuts();
    if (s.key === 'C') return focusChat();
    const btn = /** @type {HTMLButtonElement | null} */ ($(s.button || ''));
    if (!btn || btn.hidden) {
      toast(UNAVAILABLE[s.button || ''] || 'Not available now.');
      return;
    }
    if (!btn.disabled) btn.click();
  });
}
