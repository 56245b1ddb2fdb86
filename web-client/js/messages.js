// @ts-check
// What the page says in words: error and refusal texts, and small formatting helpers. Pure (no
// DOM), so the unit tests in tests/web_unit/ run them under node.

/** What each join-refusal and error code means for a person. */
export const ERROR_TEXT = {
  invalid_token: 'This link is not valid. Check that you copied all of it, or ask your teacher for a new link.',
  token_expired: 'This link has expired. Ask your teacher for a new one.',
  class_not_found: 'This class does not exist any more.',
  class_locked: 'The teacher has locked this class. Ask them to unlock it, then try again.',
  class_full: 'This class is full.',
  removed: 'The teacher removed you from this class. Only the teacher can let you back in.',
  declined: 'The teacher did not let you in. If you think this is a mistake, ask your teacher.',
  personal_link_required: 'This class lets students in only with their personal link. Ask your teacher for yours.',
  not_on_class_list: 'This personal link no longer works: you are not on the class list any more. Ask your teacher.',
  waiting_timeout: 'Nobody let you in for half an hour, so the server stopped waiting. You can knock again.',
  join_rate_limited: 'Too many people are joining from your network right now. Try again in a few seconds.',
  invalid_name: 'Please choose a name of 1 to 64 characters, without invisible or control characters.',
  forbidden: 'You are not allowed to do that.',
  rate_limited: 'You are sending too fast; slow down a little.',
  too_long: 'That message is too long.',
  invalid_text: 'Chat messages cannot contain control or text-direction characters.',
  media_unavailable: 'The media server cannot carry this class\'s video right now (it is unavailable or full).',
};

/** Error codes that refuse a join: the 4001 close that follows explains them. */
const JOIN_REFUSALS = ['invalid_token', 'token_expired', 'class_not_found', 'class_locked', 'class_full', 'invalid_name', 'removed', 'personal_link_required', 'not_on_class_list', 'declined', 'waiting_timeout'];

/**
 * Whether an `error` refuses our join (then the close that follows explains it, not a toast).
 * @param {string} code
 * @param {boolean} joined whether the signaling connection has joined
 * @returns {boolean}
 */
export function isJoinRefusal(code, joined) {
  return JOIN_REFUSALS.includes(code) || (code === 'rate_limited' && !joined);
}

/**
 * The toast for a server `error` that nothing else handled.
 * @param {{code: string, message?: string}} e
 * @returns {string}
 */
export function errorText(e) {
  const known = /** @type {Record<string, string>} */ (ERROR_TEXT)[e.code];
  return known && e.code !== 'forbidden' ? known : e.message || e.code;
}

/**
 * The title of the page shown when the server refused our join, by error code.
 * @param {string | undefined} code
 * @returns {string}
 */
export function refusalTitle(code) {
  return code === 'token_expired' ? 'This link has expired'
    : code === 'invalid_token' ? 'This link does not work'
    : code === 'class_locked' ? 'The class is locked'
    : code === 'class_full' ? 'The class is full'
    : code === 'removed' ? 'You were removed from this class'
    : code === 'personal_link_required' ? 'Use your personal link'
    : code === 'not_on_class_list' ? 'This link no longer works'
    : code === 'declined' ? 'The teacher did not let you in'
    : code === 'waiting_timeout' ? 'Nobody let you in'
    : code === 'class_not_found' ? 'This class does not exist'
    : 'You could not join';
}

/**
 * A teacher's notice of a join the server refused (`join_refused`).
 * @param {{name?: string, code: string, count: number}} refused
 * @returns {string}
 */
export function refusedNotice({ name, code, count }) {
  const why = /** @type {Record<string, string>} */ ({
    class_locked: 'the class is locked',
    class_full: 'the class is full',
    removed: 'you removed them',
    personal_link_required: 'the class takes personal links only',
    not_on_class_list: 'they are not on the class list',
    rate_limited: 'too many joins from one network',
  })[code] || code;
  const who = name ? `${name}` : 'Someone';
  const more = count > 1 ? ` (${count} attempts)` : '';
  return `${who} could not join: ${why}${more}.`;
}

/**
 * The local slots a teacher's `mute` turns off, and how to say it.
 * @param {import('./protocol.js').MuteKind} kind
 * @returns {{slots: import('./protocol.js').Slot[], what: string}}
 */
export function muted(kind) {
  if (kind === 'audio') return { slots: ['mic'], what: 'microphone' };
  if (kind === 'video') return { slots: ['camera', 'screen'], what: 'camera' };
  return { slots: ['mic', 'camera', 'screen'], what: 'microphone and camera' };
}

/**
 * The connection banner while signaling is not connected.
 * @param {string} state "waiting" (a retry is scheduled) or "connecting" / "reconnecting"
 * @param {number} [retryInMs]
 * @returns {string}
 */
export function reconnectText(state, retryInMs) {
  if (state === 'waiting') return `Connection lost. Reconnecting in ${Math.ceil((retryInMs || 0) / 1000)} s…`;
  return 'Reconnecting…';
}

/**
 * A chat time as hours and minutes in the reader's locale ('' when the clock cannot say).
 * @param {number} ms
 * @returns {string}
 */
export function formatTime(ms) {
  try {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  } catch {
    return '';
  }
}

/**
 * @param {string} s
 * @returns {string}
 */
export function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/**
 * A connectivity-table cell: a number with its unit, or a dash when unknown.
 * @param {number | null | undefined} value
 * @param {'kbps' | 'ms' | '%'} unit `%` takes a 0..1 fraction
 * @returns {string}
 */
export function quantity(value, unit) {
  if (value == null) return '–';
  if (unit === '%') return `${(value * 100).toFixed(1)} %`;
  return `${Math.round(value)} ${unit}`;
}

/** Why screen, camera and microphone are off on a page opened over plain http from another computer. */
export const INSECURE_MEDIA_TEXT = 'Screen sharing, camera and microphone are off: browsers allow them only over '
  + 'HTTPS or on this computer (localhost), and this page was opened over plain http. Ask the person who runs '
  + 'Aula to open it over https:// (the server\'s TLS settings), then use that link.';

/** Why the Share button is missing (a browser without getDisplayMedia, e.g. on a phone). */
export const NO_SCREEN_SHARE_TEXT = 'This browser cannot share a screen.';

/**
 * Why screen sharing cannot be offered here, or '' when it can: the real reason first (an insecure
 * page has no getDisplayMedia either, but a new browser does not help there).
 * @param {boolean} secure `window.isSecureContext`
 * @param {boolean} canShare whether the browser has getDisplayMedia
 * @returns {string}
 */
export function shareBlockedText(secure, canShare) {
  if (!secure) return INSECURE_MEDIA_TEXT;
  return canShare ? '' : NO_SCREEN_SHARE_TEXT;
}

/** A connection verdict's word (verdict.js decides the level). */
export const VERDICT_LABEL = {
  good: 'Good',
  weak: 'Weak',
  bad: 'Not connected',
  wait: 'Connecting',
};

/** How sound and video travel, in plain words, by the path of the link (stats.js). */
export const ROUTE_TEXT = {
  direct: 'straight between the two computers',
  sfu: 'through the school\'s media server',
  relay_udp: 'through the school\'s relay server',
  relay_tcp: 'through the school\'s relay server, the slower way (this network blocks the faster one)',
  relay_tls: 'through the school\'s relay server, the slower way (this network lets only web pages through)',
};

/** Why a link is weak or down, and what to do, in plain words. */
export const VERDICT_TEXT = {
  connecting: 'setting up sound and video',
  offline: 'lost touch with the class; Aula is reconnecting',
  offlineAdvice: 'If this lasts more than a minute, check the Wi-Fi or the network cable.',
  interrupted: 'the connection dropped for a moment; Aula is trying to recover it',
  failed: 'no way through the network worked, so sound and video cannot arrive',
  failedRelay: 'the school\'s relay server could not be used, so sound and video cannot arrive',
  failedAdvice: 'Ask the person who looks after Aula or the school network; the details below tell them what failed.',
  slowAdvice: 'Close other programs, tabs and videos that use the internet, or move nearer the Wi-Fi.',
};

/**
 * "video is stuttering: 8% lost": the loss as a whole percentage (one decimal below 1 %).
 * @param {number} loss 0..1
 * @returns {string}
 */
export function lossText(loss) {
  const pct = loss * 100;
  return `video is stuttering: ${pct < 1 ? pct.toFixed(1) : Math.round(pct)}% lost`;
}

/**
 * "replies arrive late: 650 ms round trip".
 * @param {number} ms
 * @returns {string}
 */
export function delayText(ms) {
  return `sound and video arrive late: ${Math.round(ms)} ms there and back`;
}

/**
 * A verdict as one sentence: for the status pill and the roster's dot.
 * @param {{level: string, reason: string}} v
 * @returns {string}
 */
export function verdictSentence({ level, reason }) {
  if (level === 'wait') return 'Connecting sound and video…';
  if (level === 'good') return `Good connection, ${reason}`;
  if (level === 'weak') return `Weak connection: ${reason}`;
  return `Not connected: ${reason}`;
}

/** The words for each right a teacher grants, as a student reads them. */
const RIGHT_WORDS = { speak: 'speak', camera: 'turn your camera on', screen: 'share your screen' };

/**
 * A list in words: "a", "a and b", "a, b and c".
 * @param {string[]} items
 * @returns {string}
 */
export function listWords(items) {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * What a student is told when the teacher grants rights: '' when nothing new was granted.
 * @param {import('./protocol.js').Permissions} before
 * @param {import('./protocol.js').Permissions} now
 * @returns {string}
 */
export function grantedText(before, now) {
  const rights = /** @type {Array<keyof typeof RIGHT_WORDS>} */ (['speak', 'camera', 'screen']);
  const granted = rights.filter((r) => now[r] && !before[r]).map((r) => RIGHT_WORDS[r]);
  return granted.length ? `The teacher lets you ${listWords(granted)} now.` : '';
}

/**
 * The note under a student's buttons about the rights it does not hold ('' when it holds all).
 * @param {import('./protocol.js').Permissions} p
 * @returns {string}
 */
export function rightsNote(p) {
  const rights = /** @type {Array<keyof typeof RIGHT_WORDS>} */ (['speak', 'camera', 'screen']);
  const missing = rights.filter((r) => !p[r]).map((r) => RIGHT_WORDS[r].replace('your ', 'a '));
  if (missing.length === rights.length) return 'The teacher can let you speak, turn on a camera or share a screen.';
  return missing.length ? `The teacher can let you ${listWords(missing)}.` : '';
}

/** A slot in a student's words. */
/** @type {Record<string, string>} */
const SLOT_WORDS = { mic: 'microphone', camera: 'camera', screen: 'screen share', screenAudio: 'screen sound' };

/**
 * What a student is told after a teacher's `mute`: what was actually turned off, of what the
 * teacher asked for (`kind`) and what was on (`wasOn`). '' when nothing was on after a `mute_all`
 * (nothing happened to this student).
 * @param {import('./protocol.js').MuteKind} kind
 * @param {Partial<Record<import('./protocol.js').Slot, boolean>>} wasOn
 * @param {boolean} everyone whether the teacher muted every student at once
 * @returns {string}
 */
export function mutedText(kind, wasOn, everyone) {
  const { slots, what } = muted(kind);
  const off = [...new Set(slots.filter((s) => wasOn[s]).map((s) => SLOT_WORDS[s]))];
  if (off.length === 0) return everyone ? '' : `The teacher asked to turn off your ${what}; it was already off.`;
  if (everyone) return `The teacher muted the class: your ${listWords(off)} ${off.length > 1 ? 'are' : 'is'} now off.`;
  return `The teacher turned off your ${listWords(off)}.`;
}
