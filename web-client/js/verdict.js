// @ts-check
// A media link's verdict in words a teacher understands — Good, Weak or Not connected, with the
// reason and what to do — and the numbers behind it for whoever looks after the network. Pure (no
// DOM): the unit tests in tests/web_unit/verdict.test.mjs run it under node.
//
// Thresholds (a link is Weak at or above either):
// - LOSS_WEAK, 5 % of packets lost over the last stats interval: video freezes now and then and
//   speech breaks up; below it, WebRTC's error correction and retransmission hide most of it.
// - RTT_WEAK_MS, 500 ms round trip: a reply to a question comes noticeably late (a quarter of a
//   second each way, over what ITU-T G.114 calls fine for a conversation).
// A link that failed is Not connected; one still being set up is Connecting.

import { PATH_LABEL } from './stats.js';
import { ROUTE_TEXT, VERDICT_LABEL, VERDICT_TEXT, delayText, lossText, quantity } from './messages.js';

/** At or above this fraction of packets lost, a link is Weak. */
export const LOSS_WEAK = 0.05;
/** At or above this round trip, a link is Weak. */
export const RTT_WEAK_MS = 500;

/** @typedef {'good' | 'weak' | 'bad' | 'wait'} Level */
/**
 * @typedef {object} Verdict
 * @property {Level} level
 * @property {string} label "Good", "Weak", "Not connected", "Connecting"
 * @property {string} reason why, in plain words
 * @property {string} advice what to do ('' when nothing)
 */
/** @typedef {import('./state.js').LinkView} LinkView */

/**
 * @param {Level} level
 * @param {string} reason
 * @param {string} [advice]
 * @returns {Verdict}
 */
function make(level, reason, advice = '') {
  return { level, label: VERDICT_LABEL[level], reason, advice };
}

/**
 * The verdict on a link as best known (state.js `linkOf`), or on a person whose signaling
 * connection is down (`connected` false).
 * @param {LinkView | null | undefined} l
 * @param {{connected?: boolean}} [opts]
 * @returns {Verdict}
 */
export function verdict(l, { connected = true } = {}) {
  if (!connected) return make('bad', VERDICT_TEXT.offline, VERDICT_TEXT.offlineAdvice);
  if (!l || l.path === 'connecting') return make('wait', VERDICT_TEXT.connecting);
  if (l.path === 'failed') {
    const relay = /relay/i.test(l.reason || '');
    return make('bad', relay ? VERDICT_TEXT.failedRelay : VERDICT_TEXT.failed, VERDICT_TEXT.failedAdvice);
  }
  if (l.loss != null && l.loss >= LOSS_WEAK) return make('weak', lossText(l.loss), VERDICT_TEXT.slowAdvice);
  if (l.rtt_ms != null && l.rtt_ms >= RTT_WEAK_MS) return make('weak', delayText(l.rtt_ms), VERDICT_TEXT.slowAdvice);
  if (l.reason && /interrupted/.test(l.reason)) return make('weak', VERDICT_TEXT.interrupted, VERDICT_TEXT.offlineAdvice);
  const route = /** @type {Record<string, string>} */ (ROUTE_TEXT)[l.path];
  return make('good', route || l.path);
}

/**
 * The numbers behind a verdict, for the details: [term, value] pairs.
 * @param {LinkView | null | undefined} l
 * @returns {Array<[string, string]>}
 */
export function linkNumbers(l) {
  if (!l) return [['Path', 'none yet']];
  const label = /** @type {Record<string, string>} */ (PATH_LABEL)[l.path] || l.path;
  /** @type {Array<[string, string]>} */
  const out = [
    ['Path', label],
    ['Bitrate', quantity(l.bitrate_kbps, 'kbps')],
    ['Loss', quantity(l.loss, '%')],
    ['Round trip (RTT)', quantity(l.rtt_ms, 'ms')],
  ];
  if (l.reason) out.push(['Note', l.reason]);
  return out;
}
