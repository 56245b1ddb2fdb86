// @ts-check
// The speaking indicator: who is heard right now, from the audio level of each microphone we
// receive (the receiver's `inbound-rtp` stats: the level of what was last played; the SFU does not
// forward the RTP audio-level extension that `getSynchronizationSources()` would need) and of our own (the sending side's `media-source` stats), drawn as an outline on the person's
// tile, the stage's label and their roster row. Purely visual: nothing is announced to screen
// readers (it would be a message every quarter second).

import { mayBe } from '../state.js';

/** @typedef {import('../room.js').Room} Room */

const EVERY_MS = 250;
/** Audio level (0..1, linear) above which someone counts as speaking (-20 dBov: a voice, not a room's hum). */
export const SPEAKING_LEVEL = 0.1;
/** Someone stays "speaking" this long after the last loud moment (no flicker between words). */
const HOLD_MS = 700;

/** @type {Map<string, number>} peer id → when last heard above SPEAKING_LEVEL */
const lastLoud = new Map();
/** @type {Set<string>} who is drawn as speaking now */
let speaking = new Set();

/** Who is drawn as speaking now (peer ids, ours included). */
export function speakingNow() {
  return [...speaking];
}

/**
 * The level of what a receiver last played (its `inbound-rtp` stats' `audioLevel`).
 * @param {RTCRtpReceiver} receiver
 */
async function receiverLevel(receiver) {
  let level = 0;
  (await receiver.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && typeof s.audioLevel === 'number') level = Math.max(level, s.audioLevel);
  });
  return level;
}

/**
 * Our own microphone's level, from the stats of a sender that carries it.
 * @param {RTCPeerConnection[]} pcs
 * @param {MediaStreamTrack} mic
 */
async function ownLevel(pcs, mic) {
  for (const pc of pcs) {
    const sender = pc.getSenders().find((x) => x.track === mic);
    if (!sender) continue;
    let level = 0;
    (await sender.getStats()).forEach((s) => {
      if (s.type === 'media-source' && s.kind === 'audio' && typeof s.audioLevel === 'number') level = Math.max(level, s.audioLevel);
    });
    return level;
  }
  return 0;
}

/**
 * Measures once and redraws the outlines.
 * @param {Room} room
 */
async function tick(room) {
  const st = room.state;
  const t = room.transport;
  if (!st.me || !t) return;
  const pcs = t.peerConnections().filter((pc) => pc.signalingState !== 'closed');
  const now = performance.timeOrigin + performance.now();
  /** @type {Map<string, RTCRtpReceiver>} */
  const receivers = new Map();
  for (const pc of pcs) for (const r of pc.getReceivers()) if (r.track && r.track.kind === 'audio') receivers.set(r.track.id, r);
  for (const [peer, tracks] of st.remote) {
    const r = tracks.mic && receivers.get(tracks.mic.id);
    // Only someone who may be heard and has the microphone on (an unheard one shows nothing).
    const p = st.peers.get(peer);
    if (!r || !p || !p.media.mic || !mayBe(p, 'speak')) continue;
    try {
      if ((await receiverLevel(r)) > SPEAKING_LEVEL) lastLoud.set(peer, now);
    } catch {
      /* the connection closed meanwhile */
    }
  }
  const mic = room.media.tracks.mic;
  if (mic && mic.enabled) {
    try {
      if ((await ownLevel(pcs, mic)) > SPEAKING_LEVEL) lastLoud.set(st.me.id, now);
    } catch {
      /* the connection closed meanwhile */
    }
  }
  const next = new Set([...lastLoud].filter(([, at]) => now - at < HOLD_MS).map(([id]) => id));
  for (const id of [...lastLoud.keys()]) if (!next.has(id)) lastLoud.delete(id);
  speaking = next;
  draw(room);
}

/**
 * The outlines: tiles, the stage's label, roster rows.
 * @param {Room} room
 */
export function draw(room) {
  document.querySelectorAll('#tiles .tile, #stage-label').forEach((el) => {
    const e = /** @type {HTMLElement} */ (el);
    e.classList.toggle('speaking', speaking.has(e.dataset.peer || ''));
  });
  for (const [id, row] of room.rows) row.classList.toggle('speaking', speaking.has(id));
}

/**
 * Starts measuring (once, on entering the room).
 * @param {Room} room
 */
export function startSpeakingIndicator(room) {
  let busy = false;
  setInterval(() => {
    if (busy) return;
    busy = true;
    tick(room).finally(() => {
      busy = false;
    });
  }, EVERY_MS);
}
