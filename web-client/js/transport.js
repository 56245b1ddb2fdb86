// @ts-check
// What both media transports share: the base classes `MediaTransport` (p2p.js: one connection per
// teacher–student pair; sfu.js: connections to the server's SFU) and `MediaLink` (one
// RTCPeerConnection with its ICE bookkeeping).
//
// A media transport is the seam between the class UI and how media travels. The UI only calls:
//   transport.syncPeers(peers)           the roster changed (PeerInfo[] of everyone else)
//   transport.setTrack(slot, track|null) publish or stop the local "screen" | "camera" | "mic"
//   transport.setPermissions({speak, camera, screen}) our rights changed (the UI stops the tracks)
//   transport.setIceServers(iceServers)  fresh TURN credentials (`ice_servers`)
//   transport.handleSignal(msg)          an offer / answer / candidate from the server
//   transport.handleError(err)           a server error; true when it was about this transport
//   transport.kick(peerId)               the peer is back: renegotiate if the link is not up
//   transport.kickAll()                  signaling is back (resumed): the same for every link
//   transport.collectStats()             -> Promise<{links: LinkStats[], frames: {[peer]: n}}>
//   transport.peerConnections()          every RTCPeerConnection (for the test hooks)
//   transport.close()
// and listens to:
//   "track"  {peer, slot, track|null}    a remote track for a slot (null: gone)
//   "state"  {peer, state}               RTCPeerConnectionState of the link to peer

import { LinkSampler } from './stats.js';
import { applyIceServers, iceServersFor } from './ice.js';

/** @typedef {import('./protocol.js').Slot} Slot */
/** @typedef {import('./protocol.js').IceServer} IceServer */
/** @typedef {import('./protocol.js').LinkStats} LinkStats */
/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {{screen: MediaStreamTrack | null, camera: MediaStreamTrack | null, mic: MediaStreamTrack | null, screenAudio: MediaStreamTrack | null}} Tracks */

/**
 * The media slots, in the order of their transceivers on every connection: the screen's sound
 * (a shared tab's audio) comes last, so the first three keep their places.
 * @type {Slot[]}
 */
export const SLOTS = ['screen', 'camera', 'mic', 'screenAudio'];
/** @type {Record<Slot, 'audio' | 'video'>} */
export const SLOT_KIND = { screen: 'video', camera: 'video', mic: 'audio', screenAudio: 'audio' };
/** A link disconnected this long is recovered (an ICE restart, or a new connection to the SFU). */
const DISCONNECTED_GRACE_MS = 4000;

/**
 * @typedef {object} TransportOptions
 * @property {{id: string, role: string}} me
 * @property {IceServer[]} iceServers from `welcome.ice_servers`
 * @property {boolean} forceRelay `?relay=force|tcp|tls`: media only through the TURN relay
 * @property {string | null} [relayTransport] "tcp" / "tls": only TURN over TCP / TLS
 * @property {(msg: ClientMessage) => boolean} send to the signaling server; false when dropped
 * @property {Partial<Tracks>} [tracks] what we publish now
 * @property {(...args: unknown[]) => void} [log]
 */

export class MediaTransport extends EventTarget {
  /**
   * @param {'p2p' | 'sfu'} kind
   * @param {TransportOptions} opts
   */
  constructor(kind, { me, iceServers, forceRelay, relayTransport, send, tracks, log }) {
    super();
    this.kind = kind;
    this.me = me;
    this.relayTransport = relayTransport;
    this.iceServers = iceServersFor(iceServers, relayTransport);
    this.forceRelay = !!forceRelay;
    this.send = send;
    /** @type {Tracks} */
    this.tracks = { screen: null, camera: null, mic: null, screenAudio: null, ...(tracks || {}) };
    this.log = log || (() => {});
  }

  /**
   * The links whose connections take new ICE servers (subclasses say which).
   * @returns {MediaLink[]}
   */
  liveLinks() {
    return [];
  }

  /**
   * A relayed link after fresh TURN credentials (subclasses decide whether it restarts ICE).
   * @param {MediaLink} _link
   */
  renewRelay(_link) {}

  /**
   * Fresh TURN credentials (`ice_servers`): every link uses them from now on, and a link that is
   * relayed may restart ICE so its relay allocation is made with them before the old ones expire.
   * @param {IceServer[]} iceServers
   */
  setIceServers(iceServers) {
    this.iceServers = iceServersFor(iceServers, this.relayTransport);
    for (const link of this.liveLinks()) {
      if (!applyIceServers(link.pc, this.iceServers)) continue;
      if (this.forceRelay || /^relay/.test(link.lastPath || '')) this.renewRelay(link);
    }
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** One RTCPeerConnection of a transport, with what its ICE gathering did (for the diagnosis). */
export class MediaLink {
  /**
   * @param {MediaTransport} transport
   * @param {string} peer the peer id at the other end ("sfu" for the SFU)
   */
  constructor(transport, peer) {
    this.t = transport;
    this.peer = peer;
    this.sampler = new LinkSampler();
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.disconnectTimer = undefined;
    /** @type {string | undefined} the path of the last stats sample */
    this.lastPath = undefined;
    /** @type {RTCPeerConnection} */
    this.pc = /** @type {any} */ (null);
    this.createdAt = 0;
    /** @type {Record<string, number>} local candidates gathered, by type */
    this.localTypes = {};
    this.remoteCandidates = 0;
    /** @type {Array<{code: number, text: string, url: string}>} */
    this.iceErrors = [];
    this.gatheringDone = false;
  }

  /**
   * Signals of one link are applied one at a time, in order.
   * @param {() => unknown} fn
   * @param {string} [what] how a failure is logged
   */
  enqueue(fn, what = 'signal failed') {
    this.queue = this.queue.then(fn).catch((e) => this.t.log(what, e));
  }

  /**
   * A fresh RTCPeerConnection with the transport's ICE configuration, its gathering counted from
   * zero. Local candidates go to `onLocalCandidate`; events of a replaced connection are ignored.
   * @returns {RTCPeerConnection}
   */
  newPeerConnection() {
    const t = this.t;
    const pc = new RTCPeerConnection({
      iceServers: t.iceServers,
      iceTransportPolicy: t.forceRelay ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    this.createdAt = performance.now();
    this.localTypes = {};
    this.remoteCandidates = 0;
    this.iceErrors = [];
    this.gatheringDone = false;
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc) return;
      if (!candidate) {
        this.gatheringDone = true;
        return;
      }
      const type = String(candidate.type);
      this.localTypes[type] = (this.localTypes[type] || 0) + 1;
      this.onLocalCandidate(candidate);
    };
    pc.onicecandidateerror = (/** @type {RTCPeerConnectionIceErrorEvent} */ e) => {
      if (pc !== this.pc) return;
      this.iceErrors.push({ code: e.errorCode, text: e.errorText, url: e.url });
      if (this.iceErrors.length > 10) this.iceErrors.shift();
    };
    return pc;
  }

  /**
   * A local candidate was gathered (and counted).
   * @param {RTCIceCandidate} _candidate
   */
  onLocalCandidate(_candidate) {}

  /**
   * After a connection state change: recovers a connection that stays `disconnected` for
   * DISCONNECTED_GRACE_MS (any other change cancels the wait).
   * @param {RTCPeerConnection} pc
   * @param {() => void} recover
   */
  watchDisconnect(pc, recover) {
    clearTimeout(this.disconnectTimer);
    if (pc.connectionState !== 'disconnected') return;
    this.disconnectTimer = setTimeout(() => {
      if (pc === this.pc && pc.connectionState === 'disconnected') recover();
    }, DISCONNECTED_GRACE_MS);
  }

  /**
   * Publishes a local track (or stops it) on its slot's transceiver: no renegotiation.
   * @param {Slot} slot
   * @param {MediaStreamTrack | null} track
   */
  setTrack(slot, track) {
    const tr = this.pc.getTransceivers()[SLOTS.indexOf(slot)];
    if (tr && !isStopped(tr)) tr.sender.replaceTrack(track || null).catch((e) => this.t.log('replaceTrack', e));
  }

  /**
   * Why the link failed, in words a teacher understands.
   * @returns {string | null}
   */
  diagnose() {
    return null;
  }

  /**
   * A stats sample of the connection (see stats.js).
   * @returns {Promise<{link: LinkStats, framesDecoded: number}>}
   */
  async sample() {
    const report = await this.pc.getStats();
    return this.sampler.sample(report, this.pc, { peer: this.peer, diagnose: () => this.diagnose() });
  }
}

/**
 * The SDP of a connection's local description (set just before it is read).
 * @param {RTCPeerConnection} pc
 * @returns {string}
 */
export function localSdp(pc) {
  return /** @type {RTCSessionDescription} */ (pc.localDescription).sdp;
}

/**
 * Whether a transceiver was stopped (`stopped` is not in every browser's typings).
 * @param {RTCRtpTransceiver} tr
 * @returns {boolean}
 */
export function isStopped(tr) {
  return !!(/** @type {{stopped?: boolean}} */ (/** @type {unknown} */ (tr)).stopped);
}
