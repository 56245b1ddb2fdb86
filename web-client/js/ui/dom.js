// @ts-check
// DOM helpers for every view: element lookup and building, switching views, the failure page,
// toasts, the modal question, and attaching a track to a <video>.

/**
 * The element with this id (the page's markup, index.html, has every one the code asks for).
 * @param {string} id
 * @returns {any}
 */
export const $ = (id) => document.getElementById(id);

/**
 * @param {...unknown} args
 */
export const log = (...args) => console.info('[aula]', ...args);

/**
 * The `detail` of a CustomEvent (what the transports, signaling and local media emit).
 * @param {Event} e
 * @returns {any}
 */
export const detail = (e) => /** @type {CustomEvent} */ (e).detail;

/** @typedef {Node | string | null | undefined | false} Child */

/**
 * Small DOM builder: h('li', {class: 'x', 'aria-label': 'y'}, 'text', child). Text is never
 * parsed as HTML.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {any}
 */
export function h(tag, attrs = {}, ...children) {
  /** @type {any} */
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/**
 * Shows one of the page's views.
 * @param {'home' | 'join' | 'room' | 'fatal' | 'waiting' | 'ended'} section
 */
export function show(section) {
  for (const id of ['home', 'join', 'room', 'fatal', 'waiting', 'ended']) $(id).hidden = id !== section;
  document.body.dataset.view = section;
}

/**
 * The failure page: a title and what happened, in words.
 * @param {string} title
 * @param {string} text
 */
export function fatal(title, text) {
  $('fatal-title').textContent = title;
  $('fatal-text').textContent = text;
  $('conn').hidden = true;
  show('fatal');
  document.title = `${title} · Aula`;
  $('fatal-title').setAttribute('tabindex', '-1');
  $('fatal-title').focus();
}

/**
 * A short message that goes away by itself.
 * @param {string} text
 * @param {'info' | 'error'} [kind]
 */
export function toast(text, kind = 'info') {
  const el = h('p', { class: `toast ${kind}` }, text);
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 5000);
}

/**
 * A modal question; resolves to the input's value (or true) on OK, null on cancel.
 * @param {{title: string, text?: string, ok: string, field?: string}} question
 * @returns {Promise<string | true | null>}
 */
export function ask({ title, text, ok, field }) {
  const dlg = $('dialog');
  $('dialog-title').textContent = title;
  $('dialog-text').textContent = text || '';
  $('dialog-ok').textContent = ok;
  $('dialog-field').hidden = !field;
  $('dialog-input').value = '';
  if (field) $('dialog-label').textContent = field;
  dlg.returnValue = '';
  dlg.showModal();
  if (field) $('dialog-input').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (dlg.returnValue !== 'ok') resolve(null);
      else resolve(field ? $('dialog-input').value.trim() : true);
    }, { once: true });
  });
}

/**
 * The teacher badge, drawn from the server's `role` (never from a name).
 * @returns {HTMLElement}
 */
export function roleBadge() {
  return h('span', { class: 'role-badge', 'data-role': 'teacher', role: 'img', 'aria-label': 'Teacher', title: 'Teacher' },
    h('span', { 'aria-hidden': 'true' }, 'Teacher'));
}

/**
 * Shows a track in a <video> (hidden without one), labelled for screen readers.
 * @param {HTMLVideoElement} video
 * @param {MediaStreamTrack | null | undefined} track
 * @param {string} label
 */
export function setVideo(video, track, label) {
  const src = /** @type {MediaStream | null} */ (video.srcObject);
  const current = src && src.getTracks()[0];
  if (track && current !== track) {
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
  } else if (!track && video.srcObject) {
    video.srcObject = null;
  }
  video.hidden = !track;
  video.setAttribute('aria-label', label);
}
