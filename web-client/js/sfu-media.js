// @ts-check
// The media sections of SFU connections: the simulcast layers a publisher sends for the camera and
// the screen, and whose track each m-line of the SFU's offer to a subscriber carries (its msid
// stream id "aula.<peer>" and the order of that publisher's m-lines). Pure, no connections.

/** @typedef {import('./protocol.js').Slot} Slot */

/** Simulcast layers, low to high (Chromium wants them in this order). */
const CAMERA_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_200_000 },
];
const SCREEN_LAYERS = [
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 2_500_000 },
];
/** Send the screen as two layers too, so a student on a bad link gets the half-size layer. */
export const SCREEN_SIMULCAST = true;

/**
 * How a publisher's transceiver for a slot is made: send-only, the camera and (with
 * SCREEN_SIMULCAST) the screen as simulcast layers.
 * @param {Slot} slot
 * @returns {RTCRtpTransceiverInit}
 */
export function publishInit(slot) {
  /** @type {RTCRtpTransceiverInit} */
  const init = { direction: 'sendonly' };
  if (slot === 'camera') init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
  if (slot === 'screen' && SCREEN_SIMULCAST) init.sendEncodings = SCREEN_LAYERS.map((l) => ({ ...l }));
  return init;
}

/**
 * Whose media each m-line of the SFU's offer carries: mid → {peer, slot}, from the msid stream id
 * "aula.<peer>" and the order of that publisher's m-lines of each kind.
 * @param {string} sdp
 * @returns {Map<string, {peer: string, slot: Slot}>}
 */
export function slotsOf(sdp) {
  /** @type {Map<string, {peer: string, slot: Slot}>} */
  const slots = new Map();
  /** @type {Record<string, number>} */
  const seen = {};
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const kind = section.startsWith('video') ? 'video' : section.startsWith('audio') ? 'audio' : null;
    const mid = (/^a=mid:(\S+)/m.exec(section) || [])[1];
    const stream = (/^a=msid:(\S+)/m.exec(section) || [])[1];
    if (!kind || !mid || !stream || !stream.startsWith('aula.')) continue;
    const peer = stream.slice('aula.'.length);
    const key = `${peer} ${kind}`;
    const i = seen[key] || 0;
    seen[key] = i + 1;
    /** @type {Slot | null} */
    const slot = /** @type {Slot[]} */ (kind === 'audio' ? ['mic', 'screenAudio'] : ['screen', 'camera'])[i] || null;
    if (slot) slots.set(mid, { peer, slot });
  }
  return slots;
}
