// @ts-check
// The peer-to-peer media transport: one RTCPeerConnection per teacher–student pair, and — while a
// student holds a right (speak, camera or screen) — one per pair of that student and each classmate (a
// *floor link*), so the whole class hears and sees a student the teacher gave the floor. The
// surface every media transport offers the page is described in transport.js.
//
// Who offers: the teacher end of each pair is the "impolite" peer of perfect negotiation and makes
// the first offer, with three transceivers in a fixed order — screen (video), camera (video),
// microphone (audio) — so every slot is known by its transceiver's position, and publishing later
// is a replaceTrack() without renegotiation. The student end is "polite", answers, and turns the
// transceivers to sendrecv so it can publish too once allowed. Between two students (a floor
// link) the smaller id offers, as between two teachers; each end sends only what it publishes
// (a student without a right publishes nothing), and each page plays a student only while the
// server says she may be heard or seen (ui/stage.js). Either end may renegotiate (ICE
// restart); collisions resolve by perfect negotiation. Relay forcing is local: each end that has
// ?relay=force uses iceTransportPolicy "relay", which makes that end's media go through TURN no
// matter what the other end does.

import { LinkSampler } from './stats.js';
import { gatheringProblem, relayErrors } from './ice.js';
import { MediaLink, MediaTransport, SLOTS, SLOT_KIND, isStopped, localSdp } from './transport.js';

export { SLOTS };

/**
 * @typedef {{id: string, role: string, name?: string, permissions?: import('./protocol.js').Permissions | null}} Party
 * a peer as far as who connects and offers goes
 */
/** @typedef {import('./protocol.js').Slot} Slot */

/**
 * Students link to each other (floor links) only in a class of at most this many students: the
 * server refuses their signaling beyond it (MAX_FLOOR_LINK_STUDENTS in signaling/src/hub/signal.rs,
 * docs/protocol.md). A student with the floor holds at most this many minus one floor links.
 */
export const FLOOR_LINK_MAX_STUDENTS = 30;

/**
 * Whether a peer holds any right a teacher grants (speak, share, …).
 * @param {Party} p
 * @returns {boolean}
 */
export function holdsRight(p) {
  return !!p.permissions && Object.values(p.permissions).some(Boolean);
}

/**
 * Which pairs get a connection: every pair with a teacher in it, and two students while one of
 * them holds a right, in a class of at most FLOOR_LINK_MAX_STUDENTS students.
 * @param {Party} me
 * @param {Party} peer
 * @param {number} [students] students in the class, us included
 * @returns {boolean}
 */
export function shouldConnect(me, peer, students = 0) {
  if (me.role === 'teacher' || peer.role === 'teacher') return true;
  return students <= FLOOR_LINK_MAX_STUDENTS && (holdsRight(me) || holdsRight(peer));
}

/**
 * For a teacher of a direct class: the notice due when a student gains her first right in a class
 * too large for floor links (she is then heard and seen by the teachers only), else null.
 * @param {Party | undefined} before the student as we knew her
 * @param {Party} now the student now
 * @param {number} students students in the class
 * @returns {string | null}
 */
export function floorNotice(before, now, students) {
  if (now.role !== 'student' || students <= FLOOR_LINK_MAX_STUDENTS) return null;
  if (!holdsRight(now) || (before && holdsRight(before))) return null;
  return `Only teachers receive ${now.name || 'this student'}: in a class on direct connections with more than `
    + `${FLOOR_LINK_MAX_STUDENTS} students, students are not linked to each other. For a large class, use the media server (topology "auto" or "sfu").`;
}

/**
 * Whether the link between two peers is a floor link (two students).
 * @param {Party} me
 * @param {Party} peer
 * @returns {boolean}
 */
export function isFloorLink(me, peer) {
  return me.role === 'student' && peer.role === 'student';
}

/** The `ref` of a floor link's signals: the server refuses them once the floor is over. */
const FLOOR_REF = 'p2p-floor';

/**
 * The impolite end (makes the first offer): the teacher; between two teachers, the smaller id.
 * @param {Party} me
 * @param {Party} peer
 * @returns {boolean}
 */
export function isImpolite(me, peer) {
  if (me.role !== peer.role) return me.role === 'teacher';
  return idOrder(me.id, peer.id) < 0;
}

/**
 * Orders peer ids by their number ("p2" < "p10"), else as strings.
 * @param {string} a
 * @param {string} b
 * @returns {number}
 */
function idOrder(a, b) {
  const na = Number(String(a).replace(/\D/g, ''));
  const nb = Number(String(b).replace(/\D/g, ''));
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The link to one peer: perfect negotiation over one RTCPeerConnection. */
class PeerLink extends MediaLink {
  /**
   * @param {P2PTransport} transport
   * @param {{id: string, role: string}} peer
   */
  constructor(transport, peer) {
    super(transport, peer.id);
    /** @type {P2PTransport} */
    this.t = transport;
    this.polite = !isImpolite(transport.me, peer);
    /** A link between two students, there while one of them holds a right. */
    this.floor = isFloorLink(transport.me, peer);
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** @type {RTCIceCandidateInit[]} */
    this.pendingCandidates = [];
    this.everConnected = false;
    this.createPc();
    if (!this.polite) this.addTransceivers();
  }

  createPc() {
    const t = this.t;
    const pc = this.newPeerConnection();
    this.everConnected = false;
    pc.onnegotiationneeded = () => this.negotiate();
    pc.ontrack = (e) => {
      if (pc !== this.pc) return;
      const slot = this.slotOf(e.transceiver);
      if (slot) t.emit('track', { peer: this.peer, slot, track: e.track });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      if (state === 'connected') this.everConnected = true;
      t.emit('state', { peer: this.peer, state });
      this.watchDisconnect(pc, () => this.restartIce());
      if (state === 'failed') this.restartIce();
    };
  }

  /**
   * Candidates go to the other end through the signaling server.
   * @param {RTCIceCandidate} candidate
   */
  onLocalCandidate(candidate) {
    this.signal({ type: 'candidate', to: this.peer, candidate: candidate.toJSON() });
  }

  /**
   * Sends a signal of this link; a floor link's carry FLOOR_REF, so a refusal that raced with
   * the end of the floor is recognised (P2PTransport.handleError).
   * @param {import('./protocol.js').ClientMessage} msg
   */
  signal(msg) {
    this.t.send(this.floor ? { ...msg, ref: FLOOR_REF } : msg);
  }

  addTransceivers() {
    for (const slot of SLOTS) {
      const track = this.t.tracks[slot];
      const tr = this.pc.addTransceiver(SLOT_KIND[slot], { direction: 'sendrecv' });
      if (track) tr.sender.replaceTrack(track);
    }
  }

  /**
   * Slot by transceiver position: the impolite end created them as screen, camera, mic.
   * @param {RTCRtpTransceiver} transceiver
   * @returns {Slot | null}
   */
  slotOf(transceiver) {
    const idx = this.pc.getTransceivers().indexOf(transceiver);
    return SLOTS[idx] || null;
  }

  async negotiate() {
    const pc = this.pc;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      if (pc !== this.pc) return;
      this.signal({ type: 'offer', to: this.peer, sdp: localSdp(pc) });
    } catch (err) {
      this.t.log('offer failed', err);
    } finally {
      this.makingOffer = false;
    }
  }

  /**
   * An offer or answer from the other end (perfect negotiation).
   * @param {'offer' | 'answer'} type
   * @param {string} sdp
   */
  async onDescription(type, sdp) {
    let pc = this.pc;
    const offerCollision = type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && offerCollision;
    if (this.ignoreOffer) return;
    try {
      await pc.setRemoteDescription({ type, sdp });
    } catch (err) {
      if (type !== 'offer') {
        // Our offer was answered by a connection that is not the one we offered to: start over.
        this.t.log('could not apply answer, restarting the link', err);
        this.reset();
        return;
      }
      // The other end restarted with a brand-new connection (e.g. it reloaded or rejoined):
      // start over with a fresh one and apply the offer there.
      this.reset();
      pc = this.pc;
      await pc.setRemoteDescription({ type, sdp });
    }
    await this.flushCandidates();
    if (type === 'offer') {
      this.prepareAnswerSide();
      await pc.setLocalDescription();
      if (pc !== this.pc) return;
      this.signal({ type: 'answer', to: this.peer, sdp: localSdp(pc) });
    }
  }

  /** On the answering end, make every slot able to send, and attach what we publish. */
  prepareAnswerSide() {
    this.pc.getTransceivers().forEach((tr, i) => {
      const slot = SLOTS[i];
      if (!slot || isStopped(tr)) return;
      if (tr.direction !== 'sendrecv') tr.direction = 'sendrecv';
      const track = this.t.tracks[slot];
      if (tr.sender.track !== track) tr.sender.replaceTrack(track || null);
    });
  }

  /**
   * @param {RTCIceCandidateInit} candidate
   */
  async onCandidate(candidate) {
    this.remoteCandidates += 1;
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (err) {
      if (!this.ignoreOffer) this.t.log('could not add candidate', err);
    }
  }

  async flushCandidates() {
    const list = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of list) {
      try {
        await this.pc.addIceCandidate(c);
      } catch {
        /* stale candidate of an earlier session */
      }
    }
  }

  restartIce() {
    if (this.pc.signalingState === 'closed') return;
    // Before a first negotiation there is nothing to restart; the impolite end will offer.
    if (!this.pc.remoteDescription && this.polite) return;
    this.pc.restartIce();
  }

  /** The other end is reachable again: make sure a negotiation is under way if we are not connected. */
  kick() {
    const pc = this.pc;
    if (pc.connectionState === 'connected') return;
    if (!this.polite && pc.signalingState === 'have-local-offer' && pc.localDescription) {
      // Our offer may have been lost while the other end was away: send it again.
      this.signal({ type: 'offer', to: this.peer, sdp: localSdp(pc) });
      return;
    }
    if (!this.polite && pc.getTransceivers().length === 0) this.addTransceivers();
    else this.restartIce();
  }

  /** Replaces the connection with a fresh one. */
  reset() {
    const old = this.pc;
    for (const slot of SLOTS) this.t.emit('track', { peer: this.peer, slot, track: null });
    this.sampler = new LinkSampler();
    this.pendingCandidates = [];
    this.createPc();
    old.close();
    if (!this.polite) this.addTransceivers();
  }

  /** Why the link failed, in words a teacher understands. */
  diagnose() {
    const gathering = gatheringProblem(this, this.t);
    if (gathering) return gathering;
    const { refused: relayRefused, unreachable: relayUnreachable } = relayErrors(this.iceErrors);
    if (this.remoteCandidates === 0) return 'the other side sent no candidates';
    if (!this.localTypes.relay) {
      if (relayRefused) return `relay refused: ${relayRefused.code} ${relayRefused.text}`.trim();
      if (relayUnreachable) return 'UDP blocked and the relay is unreachable';
      return 'no direct path (UDP blocked?) and no relay candidate';
    }
    return 'no candidate pair worked (firewall blocks UDP and TCP?)';
  }

  /** A link that cannot work even though ICE has not given up (yet): the reason, else null. */
  hopeless() {
    const hasTurn = this.t.iceServers.some((s) => /** @type {string[]} */ ([]).concat(s.urls).some((u) => /^turns?:/.test(u)));
    if (this.t.forceRelay && !hasTurn) return 'relay forced but the server offers no relay';
    const total = Object.values(this.localTypes).reduce((a, b) => a + b, 0);
    if (this.gatheringDone && total === 0 && performance.now() - this.createdAt > 5000) return this.diagnose();
    return null;
  }

  async stats() {
    const out = await this.sample();
    this.lastPath = out.link.path;
    if (out.link.path === 'connecting') {
      const why = this.hopeless();
      if (why) {
        out.link.path = 'failed';
        out.link.reason = why;
      }
    }
    return out;
  }

  close() {
    clearTimeout(this.disconnectTimer);
    this.pc.close();
    for (const slot of SLOTS) this.t.emit('track', { peer: this.peer, slot, track: null });
  }
}

export class P2PTransport extends MediaTransport {
  /**
   * @param {import('./transport.js').TransportOptions & {permissions?: import('./protocol.js').Permissions | null}} opts
   */
  constructor(opts) {
    super('p2p', opts);
    /** @type {'p2p'} */
    this.kind = 'p2p';
    /** @type {Party} us, with our rights (they decide our floor links) */
    this.me = { ...opts.me, permissions: opts.permissions || null };
    /** @type {Map<string, PeerLink>} */
    this.links = new Map();
    /** @type {Party[]} everyone else, as last synced */
    this.peers = [];
  }

  /**
   * Creates links for new peers we connect to, closes links of peers that left (or whose floor
   * link ended: nobody of the pair holds a right any more, or the class grew too large).
   * @param {Party[]} peers
   */
  syncPeers(peers) {
    this.peers = peers;
    const students = peers.filter((p) => p.role === 'student').length + (this.me.role === 'student' ? 1 : 0);
    const wanted = new Set();
    for (const p of peers) {
      if (!shouldConnect(this.me, p, students)) continue;
      wanted.add(p.id);
      if (!this.links.has(p.id)) this.links.set(p.id, new PeerLink(this, p));
    }
    for (const [id, link] of this.links) {
      if (!wanted.has(id)) {
        link.close();
        this.links.delete(id);
      }
    }
  }

  /**
   * @param {import('./protocol.js').Description | import('./protocol.js').Candidate} msg
   */
  handleSignal(msg) {
    const link = this.links.get(msg.from);
    if (!link) return;
    if (msg.type === 'offer' || msg.type === 'answer') {
      link.enqueue(() => link.onDescription(msg.type, msg.sdp));
    } else if (msg.type === 'candidate' && msg.candidate) {
      const { candidate } = msg;
      link.enqueue(() => link.onCandidate(candidate));
    }
  }

  /**
   * @param {Slot} slot
   * @param {MediaStreamTrack | null} track
   */
  setTrack(slot, track) {
    this.tracks[slot] = track || null;
    for (const link of this.links.values()) link.setTrack(slot, track);
  }

  /** Every link takes fresh TURN credentials (see MediaTransport.setIceServers). */
  liveLinks() {
    return [...this.links.values()];
  }

  /**
   * A relayed link restarts ICE so its relay allocation is made with the fresh credentials.
   * @param {PeerLink} link
   */
  renewRelay(link) {
    link.restartIce();
  }

  /**
   * Our rights changed: floor links to every classmate open while we hold one, and close when
   * the last is revoked (a revoked right's tracks are stopped by the page).
   * @param {import('./protocol.js').Permissions} permissions
   */
  setPermissions(permissions) {
    this.me = { ...this.me, permissions };
    this.syncPeers(this.peers);
  }

  /**
   * @param {string} peerId
   */
  kick(peerId) {
    const link = this.links.get(peerId);
    if (link) link.kick();
  }

  kickAll() {
    for (const link of this.links.values()) link.kick();
  }

  /**
   * A floor link's signal refused: the floor ended (or the class moved) while it was on its way;
   * the roster update that says so closes the link. Other errors are not about direct links.
   * @param {import('./protocol.js').ErrorMsg} err
   * @returns {boolean}
   */
  handleError(err) {
    if (err.ref !== FLOOR_REF) return false;
    this.log('floor link signal refused', err.code, err.message);
    return true;
  }

  /** Every RTCPeerConnection of this transport (one per link). */
  peerConnections() {
    return [...this.links.values()].map((l) => l.pc);
  }

  async collectStats() {
    /** @type {import('./protocol.js').LinkStats[]} */
    const links = [];
    /** @type {Record<string, number>} */
    const frames = {};
    for (const link of [...this.links.values()]) {
      try {
        const s = await link.stats();
        links.push(s.link);
        frames[link.peer] = s.framesDecoded;
      } catch {
        /* closed meanwhile */
      }
    }
    return { links, frames };
  }

  close() {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}
