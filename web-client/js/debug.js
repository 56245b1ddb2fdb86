// @ts-check
// The test hooks: `window.aula`, a read-only view of the room for the end-to-end tests
// (tests/e2e/). Names and shapes here are what those tests read; keep them.

import { stageView } from './ui/stage.js';
import { speakingNow } from './ui/speaking.js';

/** @typedef {import('./room.js').Room} Room */

/**
 * The `window.aula` object for a room.
 * @param {Room} room
 */
export function debugView(room) {
  return {
    timings: room.timings,
    get me() { return room.state.me; },
    get peers() { return [...room.state.peers.values()]; },
    get myLinks() { return Object.fromEntries(room.state.myLinks); },
    get theirLinks() { return Object.fromEntries(room.state.theirLinks); },
    get status() { return room.state.status; },
    get welcomes() { return room.welcomes; },
    /** How media flows now: "p2p" or "sfu" (the transport in use), and the class's mode. */
    get media() { return room.transport ? room.transport.kind : null; },
    get classMedia() { return room.state.cls ? room.state.cls.media || 'p2p' : null; },
    get transportSwitches() { return room.transportSwitches; },
    get iceRenewals() { return room.iceRenewals; },
    /** The stage: {main: {key, peer, slot, label, self} | null, presenting, pinned, tiles: [...]}. */
    get stage() { return stageView(); },
    /** Which slots we publish now, the screen's sound included. */
    get publishing() { return Object.fromEntries(Object.entries(room.media.tracks).map(([k, v]) => [k, !!v])); },
    /** Who is drawn as speaking now (peer ids, ours included). */
    get speaking() { return speakingNow(); },
    /** The local ICE ufrag of each RTCPeerConnection (it changes with an ICE restart). */
    iceUfrags() {
      if (!room.transport) return [];
      return room.transport.peerConnections().map((pc) => {
        const sdp = pc.localDescription ? pc.localDescription.sdp : '';
        return (/^a=ice-ufrag:(\S+)/m.exec(sdp) || [])[1] || null;
      });
    },
    /** The TURN usernames each RTCPeerConnection is configured with now. */
    iceUsernames() {
      if (!room.transport) return [];
      return room.transport.peerConnections().map((pc) => (pc.getConfiguration().iceServers || [])
        .filter((s) => s.username).map((s) => s.username));
    },
    /** Outbound video per connection: [{pc, streams: [{rid, track, bytesSent, frameWidth}]}]. */
    async outboundVideo() {
      if (!room.transport) return [];
      const out = [];
      const pcs = room.transport.peerConnections();
      for (let i = 0; i < pcs.length; i++) {
        const pc = pcs[i];
        const report = await pc.getStats();
        /** @type {Record<string, string>} */
        const sources = {};
        report.forEach((s) => { if (s.type === 'media-source') sources[s.id] = s.trackIdentifier; });
        /** @type {Array<{rid: string | null, track: string | null, bytesSent: number, frameWidth: number, active: boolean}>} */
        const streams = [];
        report.forEach((s) => {
          if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
          streams.push({ rid: s.rid || null, track: sources[s.mediaSourceId] || null, bytesSent: s.bytesSent || 0, frameWidth: s.frameWidth || 0, active: s.active !== false });
        });
        const senders = pc.getSenders().filter((x) => x.track && x.track.kind === 'video').map((x) => /** @type {MediaStreamTrack} */ (x.track).id);
        out.push({ pc: i, senders, streams });
      }
      return out;
    },
    async frames() { return room.transport ? (await room.transport.collectStats()).frames : {}; },
    /**
     * The id of the track this page receives for a peer's slot ("screen", "camera", "mic"), or
     * null: a test finds its inbound-rtp stats (trackIdentifier) and the element that shows it.
     * @param {string} peer
     * @param {import('./protocol.js').Slot} slot
     */
    remoteTrackId(peer, slot) {
      const track = (room.state.remote.get(peer) || {})[slot];
      return track ? track.id : null;
    },
    /**
     * Rebuilds an SFU link on a fresh connection, exactly as after a link failure ("sending" or
     * "receiving"); returns false outside SFU mode. For tests of the recovery path.
     * @param {'sending' | 'receiving'} which
     */
    restartSfuLink(which) {
      const t = room.transport;
      const channel = t && t.kind === 'sfu' ? t[which] : null;
      if (!channel) return false;
      channel.start();
      return true;
    },
    links() {
      if (!room.transport || !room.transport.links) return {};
      return Object.fromEntries([...room.transport.links].map(([id, l]) => [id, {
        polite: l.polite,
        signaling: l.pc.signalingState,
        connection: l.pc.connectionState,
        ice: l.pc.iceConnectionState,
        local: l.localTypes,
        remoteCandidates: l.remoteCandidates,
        transceivers: l.pc.getTransceivers().map((t) => ({
          mid: t.mid, direction: t.direction, current: t.currentDirection,
          sending: !!t.sender.track, receiving: t.receiver.track.readyState, muted: t.receiver.track.muted,
        })),
      }]));
    },
  };
}
