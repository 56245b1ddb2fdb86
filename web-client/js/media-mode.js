// @ts-check
// The transport choice: which media transport carries the class now (direct links, p2p.js, or
// the server's SFU, sfu.js), switching between them in place when the class's media mode changes,
// and a student's fallback to the SFU when its direct link to the teacher does not connect.

import { P2PTransport, floorNotice } from './p2p.js';
import { SfuTransport } from './sfu.js';
import { mediaMode } from './state.js';
import { log, toast, detail } from './ui/dom.js';
import { renderRow, renderSelfIndicator } from './ui/roster.js';
import { dropRemoteAudio } from './ui/stage.js';

/** @typedef {import('./room.js').Room} Room */
/** @typedef {P2PTransport | SfuTransport} Transport */

/** A student in an `auto` class whose direct link has not connected in this time asks for the SFU. */
const P2P_FALLBACK_MS = 6000;
/** Our fallback `subscribe` counts as the reason for a switch to the SFU for this long. */
const SUBSCRIBED_RECENTLY_MS = 10_000;

/**
 * The media transport for the class's media mode: direct links (p2p.js) or one link to the
 * server's SFU (sfu.js). Keeps the welcome's ICE servers for a later switch.
 * @param {Room} room
 * @param {import('./protocol.js').Welcome | null} w
 * @returns {Transport}
 */
export function makeTransport(room, w) {
  if (w) room.iceServers = w.ice_servers;
  const me = /** @type {NonNullable<Room['state']['me']>} */ (room.state.me);
  const opts = {
    me: { id: me.id, role: me.role },
    iceServers: room.iceServers,
    forceRelay: room.forceRelay,
    relayTransport: room.relayTransport,
    send: (/** @type {import('./protocol.js').ClientMessage} */ m) => room.signaling.send(m),
    tracks: { ...room.media.tracks },
    permissions: me ? me.permissions : null,
    log,
  };
  // Our own `subscribe` (direct link failed) may be what moved the class to the SFU: its offer comes.
  const subscribed = room.askedForSfu !== null && performance.now() - room.askedForSfu < SUBSCRIBED_RECENTLY_MS;
  room.askedForSfu = null;
  const t = mediaMode(room.state.cls) === 'sfu'
    ? new SfuTransport({ ...opts, subscribed, notify: (text, kind) => toast(text, /** @type {'info' | 'error'} */ (kind)) })
    : new P2PTransport(opts);
  log(`media transport: ${t.kind}`);
  t.addEventListener('track', (e) => room.onRemoteTrack(detail(e)));
  t.addEventListener('state', (e) => {
    const { peer, state } = detail(e);
    if (state === 'failed') log('media link failed', peer);
    if (state === 'connected') room.statsTick();
    renderRow(room, peer);
    renderSelfIndicator(room);
  });
  return t;
}

/**
 * Tears down the current transport and starts the one for the class's media mode.
 * @param {Room} room
 */
export function switchTransport(room) {
  const old = /** @type {Transport} */ (room.transport);
  log(`media mode ${old.kind} → ${mediaMode(room.state.cls)}`);
  old.close();
  room.transportSwitches += 1;
  room.state.forgetLinks();
  dropRemoteAudio();
  room.transport = makeTransport(room, null);
}

/**
 * A teacher on direct links is told when a student she lets speak or share reaches only the
 * teachers (a class too large for floor links, see p2p.js).
 * @param {Room} room
 * @param {import('./protocol.js').PeerInfo | undefined} before
 * @param {import('./protocol.js').PeerInfo} peer
 */
export function noteFloorReach(room, before, peer) {
  const t = room.transport;
  const me = room.state.me;
  if (!t || t.kind !== 'p2p' || !me || me.role !== 'teacher') return;
  const students = room.peerList().filter((p) => p.role === 'student').length;
  const notice = floorNotice(before, peer, students);
  if (notice) toast(notice, 'info');
}

/**
 * In an `auto` class still on direct links, a student whose link to the teacher has not
 * connected within P2P_FALLBACK_MS (or failed) asks for the SFU: the server moves the class to it
 * (everyone gets class_updated) and answers us with the SFU's offer. Once per page.
 * @param {Room} room
 */
export function maybeFallBackToSfu(room) {
  const t = room.transport;
  const st = room.state;
  if (!t || t.kind !== 'p2p' || room.sfuFallbackUsed || !st.me || st.me.role !== 'student') return;
  if (!st.cls || st.cls.topology !== 'auto' || st.status !== 'connected') return;
  const teacher = st.stageTeacher();
  const link = teacher && teacher.connected && /** @type {P2PTransport} */ (t).links.get(teacher.id);
  if (!link || link.everConnected) return;
  const state = link.pc.connectionState;
  if (state !== 'failed' && performance.now() - link.createdAt < P2P_FALLBACK_MS) return;
  room.sfuFallbackUsed = true;
  room.askedForSfu = performance.now();
  log(`direct link to the teacher ${state} after ${Math.round(performance.now() - link.createdAt)} ms: asking for the SFU`);
  room.signaling.send({ type: 'subscribe' });
}
