// @ts-check
// The class as this page knows it: who we are, the class, everyone else, the tracks we receive and
// what each end reports about its media links — and what follows from that (who is on the stage,
// the roster's order, a link's verdict, a person's indicator). Pure: no DOM, no sockets; time is
// passed in. The page (room.js) feeds it server messages and renders from it.

import { SFU_PEER } from './protocol.js';
import { verdict } from './verdict.js';
import { verdictSentence } from './messages.js';

/** A report from the other end of a link counts for this long. */
const REPORT_FRESH_MS = 10_000;

/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./protocol.js').ClassInfo} ClassInfo */
/** @typedef {import('./protocol.js').LinkStats} LinkStats */
/** @typedef {import('./protocol.js').MediaState} MediaState */
/** @typedef {import('./protocol.js').Permissions} Permissions */
/** @typedef {import('./protocol.js').Welcome} Welcome */
/** @typedef {{id: string, role: import('./protocol.js').Role, name: string, permissions: Permissions, hand_raised: boolean, hand_raised_at?: number, co_teacher?: boolean}} Me */
/** @typedef {{screen?: MediaStreamTrack | null, camera?: MediaStreamTrack | null, mic?: MediaStreamTrack | null, screenAudio?: MediaStreamTrack | null}} RemoteTracks */
/** @typedef {LinkStats & {at: number}} Report a link report from the other end, with when it came */
/** @typedef {{path: string, reason: string | null, bitrate_kbps?: number, loss?: number, rtt_ms?: number}} LinkView */
/** @typedef {{state: string, text: string}} Indicator */
/** What the state needs of the media transport: its kind and its links by peer id. */
/** @typedef {{kind: string, links: Map<string, unknown>} | null} TransportView */

/**
 * Whether the server says `peer` may be heard (`right` "speak") or seen on camera ("camera") or
 * sharing a screen ("screen"): a teacher always, a student only while holding the right. Unknown
 * peers may not.
 * @param {PeerInfo | null | undefined} peer
 * @param {keyof Permissions} right
 * @returns {boolean}
 */
export function mayBe(peer, right) {
  return !!peer && (peer.role === 'teacher' || !!(peer.permissions && peer.permissions[right]));
}

/**
 * The class's media mode now ("p2p" when the server does not say: an older server).
 * @param {ClassInfo | null | undefined} cls
 * @returns {'p2p' | 'sfu'}
 */
export function mediaMode(cls) {
  return cls && cls.media === 'sfu' ? 'sfu' : 'p2p';
}

/**
 * The link to a peer as best known from our measurement and the other end's report: a relay or
 * a failure seen by either end wins. A report older than REPORT_FRESH_MS is ignored.
 * @param {LinkStats | undefined} mine
 * @param {Report | undefined} theirs
 * @param {number} now `Date.now()`
 * @returns {LinkView | null}
 */
export function mergeLinks(mine, theirs, now) {
  if (!mine && !theirs) return null;
  const fresh = theirs && now - theirs.at < REPORT_FRESH_MS ? theirs : null;
  /** @type {Partial<LinkStats>} */
  const a = mine || {};
  /** @type {Partial<LinkStats>} */
  const b = fresh || {};
  // The end that holds the relay allocation knows its protocol (the other end only sees a relay
  // candidate), so a relay without a reason wins.
  /** @type {Partial<LinkStats> | null} */
  let src = null;
  for (const cand of ['failed', 'relay_tls', 'relay_tcp', 'relay_udp']) {
    const ends = [b, a].filter((e) => e.path === cand);
    if (ends.length) {
      src = ends.find((e) => !e.reason) || ends[0];
      break;
    }
  }
  const path = /** @type {string} */ (src ? src.path : a.path || b.path || 'connecting');
  const reason = src ? src.reason || null : a.reason || b.reason || null;
  return {
    path,
    reason: path === 'direct' ? null : reason,
    bitrate_kbps: a.bitrate_kbps ?? b.bitrate_kbps,
    loss: b.loss ?? a.loss,
    rtt_ms: a.rtt_ms ?? b.rtt_ms,
  };
}

/**
 * A link's dot and words (verdict.js): green good, blue good through the relay, amber weak or
 * connecting, red not connected.
 * @param {LinkView} l
 * @returns {Indicator}
 */
export function describeLink(l) {
  const v = verdict(l);
  const state = v.level === 'good' ? (l.path.startsWith('relay') ? 'relay' : 'good') : v.level;
  return { state, text: verdictSentence(v) };
}

/**
 * The roster's order: raised hands first, the first raised first (a hand without a time last
 * among them); then teachers, ourselves first within our role, then by name.
 * @template {{role: string, name: string, self?: boolean, hand_raised?: boolean, hand_raised_at?: number | null}} T
 * @param {T[]} everyone
 * @returns {T[]} the same array, sorted
 */
export function rosterOrder(everyone) {
  const raisedAt = (/** @type {T} */ p) => (p.hand_raised ? p.hand_raised_at ?? Number.MAX_SAFE_INTEGER : null);
  return everyone.sort((a, b) => {
    const ha = raisedAt(a);
    const hb = raisedAt(b);
    if (ha !== null || hb !== null) {
      if (ha === null) return 1;
      if (hb === null) return -1;
      if (ha !== hb) return ha - hb;
    }
    return a.role === b.role ? (a.self ? -1 : b.self ? 1 : a.name.localeCompare(b.name)) : a.role === 'teacher' ? -1 : 1;
  });
}

/**
 * The raised hands, the first raised first.
 * @template {{hand_raised?: boolean, hand_raised_at?: number | null, role: string, name: string}} T
 * @param {T[]} everyone
 * @returns {T[]}
 */
export function raisedHands(everyone) {
  return rosterOrder(everyone.filter((p) => p.hand_raised));
}

/**
 * Link reports as the server takes them: a `reason` over 200 characters is refused
 * (docs/protocol.md), so it is cut.
 * @param {LinkStats[]} links
 * @returns {LinkStats[]}
 */
export function clipReasons(links) {
  return links.map((l) => (l.reason && l.reason.length > 200 ? { ...l, reason: l.reason.slice(0, 200) } : l));
}

export class ClassState {
  constructor() {
    /** @type {Me | null} */
    this.me = null;
    /** @type {ClassInfo | null} */
    this.cls = null;
    /** @type {Map<string, PeerInfo>} everyone else */
    this.peers = new Map();
    /** @type {Map<string, RemoteTracks>} the tracks we receive, by whose media they are */
    this.remote = new Map();
    /** @type {Map<string, LinkStats>} each link as measured here */
    this.myLinks = new Map();
    /** @type {Map<string, Report>} each peer's report about its link to us */
    this.theirLinks = new Map();
    /** The signaling connection: "connecting", "connected", "waiting", "reconnecting". */
    this.status = 'connecting';
  }

  /**
   * Takes a `welcome` (the class is set separately). Returns whether it gave us a new identity:
   * the server did not resume us, so ids may now belong to other people.
   * @param {Welcome} w
   * @returns {boolean}
   */
  welcome(w) {
    const newIdentity = !this.me || !w.resumed;
    this.me = { id: w.id, role: w.role, name: w.name, permissions: w.permissions, hand_raised: w.hand_raised, co_teacher: !!w.co_teacher };
    this.peers = new Map(w.peers.map((p) => [p.id, p]));
    return newIdentity;
  }

  /** Forgets every received track and link report (the links they were about are gone). */
  forgetLinks() {
    this.remote.clear();
    this.myLinks.clear();
    this.theirLinks.clear();
  }

  /**
   * `peer_joined` / `peer_updated` about someone else: the entry it replaces, if any.
   * @param {PeerInfo} peer
   * @returns {PeerInfo | undefined}
   */
  upsertPeer(peer) {
    const old = this.peers.get(peer.id);
    this.peers.set(peer.id, peer);
    return old;
  }

  /**
   * `peer_updated` about us: our rights, hand and role (a teacher may make us co-teacher).
   * Returns the rights we had before.
   * @param {PeerInfo} peer
   * @returns {Permissions}
   */
  updateMe(peer) {
    const me = /** @type {Me} */ (this.me);
    const before = me.permissions;
    me.permissions = peer.permissions;
    me.hand_raised = peer.hand_raised;
    if (peer.hand_raised_at === undefined) delete me.hand_raised_at;
    else me.hand_raised_at = peer.hand_raised_at;
    me.role = peer.role;
    me.co_teacher = !!peer.co_teacher;
    return before;
  }

  /**
   * `peer_left`: forgets the peer, its tracks and its links; returns who it was.
   * @param {string} id
   * @returns {PeerInfo | undefined}
   */
  removePeer(id) {
    const p = this.peers.get(id);
    this.peers.delete(id);
    this.remote.delete(id);
    this.myLinks.delete(id);
    this.theirLinks.delete(id);
    return p;
  }

  /**
   * `hand`: returns "me" for our own hand, the peer for someone else's, null for an unknown one.
   * `at` is when it went up (server time), for the order of hands.
   * @param {string} peer
   * @param {boolean} raised
   * @param {number | null} [at]
   * @returns {'me' | PeerInfo | null}
   */
  setHand(peer, raised, at = null) {
    const when = raised ? at : null;
    if (this.me && peer === this.me.id) {
      this.me.hand_raised = raised;
      if (when === null) delete this.me.hand_raised_at;
      else this.me.hand_raised_at = when;
      return 'me';
    }
    const p = this.peers.get(peer);
    if (!p) return null;
    p.hand_raised = raised;
    if (when === null) delete p.hand_raised_at;
    else p.hand_raised_at = when;
    return p;
  }

  /**
   * A received track for a slot of a peer's media (null: gone).
   * @param {string} peer
   * @param {import('./protocol.js').Slot} slot
   * @param {MediaStreamTrack | null} track
   */
  setRemoteTrack(peer, slot, track) {
    const r = this.remote.get(peer) || {};
    r[slot] = track;
    this.remote.set(peer, r);
  }

  /**
   * `stats` from a peer: keeps what it says about its link to us or, in SFU mode, to the SFU.
   * @param {string} from
   * @param {LinkStats[]} links
   * @param {boolean} viaSfu whether our media flows through the SFU
   * @param {number} now `Date.now()`
   */
  takeReport(from, links, viaSfu, now) {
    if (!this.me) return;
    const meId = this.me.id;
    const mine = links.find((l) => l.peer === meId) || (viaSfu ? links.find((l) => l.peer === SFU_PEER) : null);
    if (mine) this.theirLinks.set(from, { ...mine, at: now });
  }

  /**
   * The link to a peer as best known (see mergeLinks).
   * @param {string} peerId
   * @param {number} [now]
   */
  linkOf(peerId, now = Date.now()) {
    return mergeLinks(this.myLinks.get(peerId), this.theirLinks.get(peerId), now);
  }

  /**
   * The teacher whose media the stage shows: the one sharing a screen, else the first.
   * @returns {PeerInfo | null}
   */
  stageTeacher() {
    const teachers = [...this.peers.values()].filter((p) => p.role === 'teacher');
    return teachers.find((p) => p.media.screen) || teachers.find((p) => p.media.camera) || teachers[0] || null;
  }

  /**
   * A student sharing a screen whose picture we receive (through the SFU), or null.
   * @returns {PeerInfo | null}
   */
  stageStudent() {
    return [...this.peers.values()].find((p) => p.role === 'student' && p.media.screen
      && mayBe(p, 'screen') && (this.remote.get(p.id) || {}).screen) || null;
  }

  /**
   * Ourselves as a roster entry.
   * @param {MediaState} media what we publish
   * @param {boolean} connected
   */
  self(media, connected) {
    return { .../** @type {Me} */ (this.me), connected, media, self: true };
  }

  /**
   * Everyone, ourselves included, in roster order.
   * @param {MediaState} media what we publish
   */
  roster(media) {
    /** @type {Array<PeerInfo & {self?: boolean}>} */
    const everyone = [this.self(media, true), ...this.peers.values()];
    return rosterOrder(everyone);
  }

  /**
   * The peer id of the link that carries a peer's media here: the peer, or the SFU.
   * @param {string} peerId
   * @param {TransportView} transport
   */
  linkPeerOf(peerId, transport) {
    return transport && transport.kind === 'sfu' ? SFU_PEER : peerId;
  }

  /**
   * Whether there is (or should be) a media link with this peer.
   * @param {PeerInfo} p
   * @param {TransportView} transport
   */
  hasMediaLink(p, transport) {
    if (!transport || !this.me) return false;
    if (transport.kind === 'sfu') {
      // Students reach the class through the SFU; the teacher sees their reports about that link.
      return this.me.role === 'teacher' ? p.role === 'student' : p.role === 'teacher';
    }
    return transport.links.has(p.id);
  }

  /**
   * A person's connection indicator: signaling presence plus the media link, when there is one.
   * @param {PeerInfo} p
   * @param {TransportView} transport
   * @param {number} [now]
   * @returns {Indicator}
   */
  indicator(p, transport, now = Date.now()) {
    if (!p.connected) return { state: 'offline', text: 'Reconnecting' };
    if (!this.hasMediaLink(p, transport)) return { state: 'online', text: 'Online' };
    // Through the SFU a student's own link to it is its link to the teacher; a teacher sees what
    // each student reports about its link.
    const teacher = !!this.me && this.me.role === 'teacher';
    const l = this.linkOf(teacher ? p.id : this.linkPeerOf(p.id, transport), now);
    if (!l) return { state: 'wait', text: 'Connecting media' };
    return describeLink(l);
  }

  /**
   * Our own indicator: the signaling connection, and a student's media link to the teacher.
   * @param {TransportView} transport
   * @param {number} [now]
   * @returns {Indicator}
   */
  selfIndicator(transport, now = Date.now()) {
    if (this.status !== 'connected') return { state: 'offline', text: 'Reconnecting' };
    const l = this.selfLink(transport, now);
    if (l) return describeLink(l);
    return { state: 'online', text: 'Connected' };
  }

  /**
   * A student's media link to the teacher (directly, or to the SFU) as best known; null for a
   * teacher, or before there is one.
   * @param {TransportView} transport
   * @param {number} [now]
   * @returns {LinkView | null}
   */
  selfLink(transport, now = Date.now()) {
    if (!this.me || this.me.role !== 'student') return null;
    const t = this.stageTeacher();
    if (!t || !this.hasMediaLink(t, transport)) return null;
    return this.linkOf(this.linkPeerOf(t.id, transport), now);
  }
}
