// The SFU media transport: one RTCPeerConnection to the server's selective forwarding unit, which
// is the reserved peer "sfu" of the signaling protocol (docs/protocol.md, "Media: direct
// connections or the SFU"). Same surface as the P2P transport (see p2p.js):
//   syncPeers(peers), setTrack(slot, track), handleSignal(msg), handleError(err), kick(peer),
//   kickAll(), collectStats(), close(); events "track" {peer: "sfu", slot, track} and
//   "state" {peer: "sfu", state}.
//
// Publisher (a teacher): makes the offer, with three send-only transceivers in the fixed order
// screen (video), camera (video), microphone (audio); starting or stopping a share is a
// replaceTrack() with no renegotiation. The camera (and, when SCREEN_SIMULCAST, the screen) is sent
// as simulcast layers (rids); the SFU picks one per student. The screen favours resolution
// (contentHint "detail", degradationPreference "maintain-resolution"). The SFU takes one publisher
// per class: a second teacher is refused ("already has a publisher") and subscribes instead.
//
// Subscriber (students, other teachers): sends {"type":"subscribe"}; the SFU offers send-only
// m-lines (audio and video slots); we answer. A later offer from "sfu" (more slots) is answered
// too. Slot k of a kind carries the publisher's m-line k of that kind: video 0 = screen,
// video 1 = camera, audio 0 = microphone.
//
// Recovery: the SFU drops a peer whose ICE goes quiet, so a failed link (or one disconnected for
// 4 s) is rebuilt from scratch: a subscriber resubscribes (the server replaces the old
// subscription), a publisher offers again on a fresh connection; with backoff 1 s doubling to 15 s.
// The SFU is ICE-lite and learns our address from our connectivity checks, so we send no
// candidates. Relay forcing works as in P2P: iceTransportPolicy "relay" sends our checks and media
// through the TURN relay to the SFU's address.

import { LinkSampler } from './stats.js';
import { iceServersFor } from './ice.js';

export const SFU_PEER = 'sfu';
const SLOTS = ['screen', 'camera', 'mic'];
const SLOT_KIND = { screen: 'video', camera: 'video', mic: 'audio' };
const DISCONNECTED_GRACE_MS = 4000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
/** A publish or subscribe the SFU has not replied to in this time is started over. */
const REPLY_TIMEOUT_MS = 10000;

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

export class SfuTransport extends EventTarget {
  /**
   * @param {{me: {id: string, role: string}, iceServers: object[], forceRelay: boolean,
   *          relayTransport?: string, send: (msg: object) => boolean, tracks?: object,
   *          log?: Function, notify?: (text: string, kind?: string) => void}} opts
   */
  constructor({ me, iceServers, forceRelay, relayTransport, send, tracks, log, notify, subscribed }) {
    super();
    this.kind = 'sfu';
    this.me = me;
    this.iceServers = iceServersFor(iceServers, relayTransport);
    this.forceRelay = !!forceRelay;
    this.send = send;
    this.tracks = { screen: null, camera: null, mic: null, ...(tracks || {}) };
    this.log = log || (() => {});
    this.notify = notify || (() => {});
    // A teacher publishes; if the class already has a publisher it subscribes instead.
    this.role = me.role === 'teacher' ? 'publisher' : 'subscriber';
    this.closed = false;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
    this.unavailableShown = false;
    /** @type {Map<string, SfuLink>} one entry, "sfu", once started (same shape as P2P's links) */
    this.links = new Map();
    // `subscribed`: the page already sent `subscribe` (its direct link failed, which moved the
    // class to the SFU): wait for that offer instead of asking again.
    this.start({ subscribed: !!subscribed && this.role === 'subscriber' });
  }

  /** A fresh connection and a fresh publish / subscribe (unless one is already under way). */
  start({ subscribed = false } = {}) {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const link = this.newLink();
    if (subscribed) link.expectReply();
    else link.begin();
  }

  newLink() {
    const old = this.links.get(SFU_PEER);
    if (old) old.close();
    const link = new SfuLink(this);
    this.links.set(SFU_PEER, link);
    return link;
  }

  /** Start over after a delay that doubles on every attempt that does not connect. */
  retry(why) {
    if (this.closed || this.retryTimer) return;
    const jitter = 0.8 + Math.random() * 0.4;
    const delay = Math.round(this.retryMs * jitter);
    this.log(`SFU link: ${why}; retrying in ${delay} ms`);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start();
    }, delay);
  }

  connected() {
    this.retryMs = RETRY_MIN_MS;
    this.unavailableShown = false;
  }

  /** The roster does not change the SFU link: everyone reaches the class through it. */
  syncPeers() {}

  handleSignal(msg) {
    if (msg.from !== SFU_PEER) return; // a stale direct-connection signal from before the switch
    let link = this.links.get(SFU_PEER);
    if (!link) return;
    if (msg.type === 'offer' && link.isNewSession(msg.sdp)) {
      // An offer of a new subscription (the server replaced the old one): a fresh connection.
      this.log('SFU: offer of a new session; new connection');
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      link = this.newLink();
    }
    if (msg.type === 'offer' || msg.type === 'answer') link.enqueue(() => link.onDescription(msg.type, msg.sdp));
  }

  /**
   * An error from the server while a publish or subscribe is under way. Returns true when it was
   * about the SFU and has been dealt with (the page then shows nothing else).
   */
  handleError(err) {
    const link = this.links.get(SFU_PEER);
    if (!link || !link.awaiting) return false;
    if (err.code === 'media_unavailable') {
      link.awaiting = false;
      if (this.role === 'publisher' && /already has a publisher/i.test(err.message || '')) {
        // Another teacher publishes to this class: watch through the SFU like the students.
        this.log('another teacher publishes; subscribing instead');
        this.role = 'subscriber';
        this.notify('Another teacher is already sending to this class through the media server, so you watch their share.');
        this.start();
        return true;
      }
      if (!this.unavailableShown) {
        this.unavailableShown = true;
        this.notify(this.role === 'publisher'
          ? 'The media server cannot take your screen, camera or microphone right now (it is unavailable or full). Trying again…'
          : 'The media server cannot send you the class\'s video right now (it is unavailable or full). Trying again…', 'error');
      }
      this.retry(`refused: ${err.message || err.code}`);
      return true;
    }
    if (err.code === 'forbidden' && this.role === 'publisher') {
      link.awaiting = false;
      this.role = 'subscriber';
      this.notify('You are not allowed to send to the class; you watch the teacher\'s share.', 'error');
      this.start();
      return true;
    }
    return false;
  }

  setTrack(slot, track) {
    this.tracks[slot] = track || null;
    const link = this.links.get(SFU_PEER);
    if (link && this.role === 'publisher') link.setTrack(slot, track);
    if (track && this.role !== 'publisher' && this.me.role !== 'teacher') {
      this.notify('In this large class only the teacher is sent through the media server, so the class does not see what you share yet.');
    }
  }

  /** A peer is back: the SFU link does not depend on it. */
  kick() {}

  /** Signaling is back (resumed): if our link is not up, start it over. */
  kickAll() {
    const link = this.links.get(SFU_PEER);
    if (!link || link.pc.connectionState === 'connected' || this.retryTimer) return;
    this.start();
  }

  linkState(peerId) {
    const link = this.links.get(peerId);
    return link ? link.pc.connectionState : null;
  }

  /** Every RTCPeerConnection of this transport (one). */
  peerConnections() {
    return [...this.links.values()].map((l) => l.pc);
  }

  async collectStats() {
    const links = [];
    const frames = {};
    const link = this.links.get(SFU_PEER);
    if (link) {
      try {
        const s = await link.stats();
        links.push(s.link);
        frames[SFU_PEER] = s.framesDecoded;
      } catch {
        /* closed meanwhile */
      }
    }
    return { links, frames };
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

class SfuLink {
  constructor(t) {
    this.t = t;
    this.peer = SFU_PEER;
    this.polite = t.role !== 'publisher'; // for the debug view: who makes the offer
    this.sampler = new LinkSampler();
    this.queue = Promise.resolve();
    this.awaiting = false; // a publish / subscribe waits for the SFU's reply
    this.disconnectTimer = null;
    this.localTypes = {};
    this.remoteCandidates = 0;
    this.iceErrors = [];
    this.gatheringDone = false;
    this.createdAt = performance.now();
    const pc = new RTCPeerConnection({
      iceServers: t.iceServers,
      iceTransportPolicy: t.forceRelay ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
    });
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) {
        this.gatheringDone = true;
        return;
      }
      // Counted for the diagnosis; not sent: the ICE-lite SFU learns our address from our checks.
      this.localTypes[candidate.type] = (this.localTypes[candidate.type] || 0) + 1;
    };
    pc.onicecandidateerror = (e) => {
      this.iceErrors.push({ code: e.errorCode, text: e.errorText, url: e.url });
      if (this.iceErrors.length > 10) this.iceErrors.shift();
    };
    pc.ontrack = (e) => {
      const slot = this.slotOf(e.transceiver);
      if (slot) t.emit('track', { peer: SFU_PEER, slot, track: e.track });
    };
    pc.onconnectionstatechange = () => {
      if (this.t.links.get(SFU_PEER) !== this) return;
      const state = pc.connectionState;
      t.emit('state', { peer: SFU_PEER, state });
      clearTimeout(this.disconnectTimer);
      if (state === 'connected') {
        t.connected();
      } else if (state === 'failed') {
        t.retry('connection failed');
      } else if (state === 'disconnected') {
        this.disconnectTimer = setTimeout(() => {
          if (pc.connectionState === 'disconnected') t.retry('disconnected');
        }, DISCONNECTED_GRACE_MS);
      }
    };
  }

  enqueue(fn) {
    this.queue = this.queue.then(fn).catch((e) => this.t.log('SFU signal failed', e));
  }

  begin() {
    if (this.t.role === 'publisher') this.enqueue(() => this.publish());
    else this.subscribe();
  }

  subscribe() {
    this.expectReply();
    if (!this.t.send({ type: 'subscribe' })) this.t.retry('signaling is down');
  }

  /** A publish / subscribe is under way: its reply (or an error) is due. */
  expectReply() {
    this.awaiting = true;
    clearTimeout(this.replyTimer);
    this.replyTimer = setTimeout(() => {
      if (this.awaiting && this.t.links.get(SFU_PEER) === this) this.t.retry('no reply from the SFU');
    }, REPLY_TIMEOUT_MS);
  }

  /** Whether an offer from the SFU starts a new session (another ICE ufrag than the current one). */
  isNewSession(sdp) {
    const current = this.pc.remoteDescription;
    if (!current) return false;
    const ufrag = (text) => (/^a=ice-ufrag:(.+)$/m.exec(text) || [])[1];
    return ufrag(current.sdp) !== ufrag(sdp);
  }

  async publish() {
    for (const slot of SLOTS) {
      const init = { direction: 'sendonly' };
      if (slot === 'camera') init.sendEncodings = CAMERA_LAYERS.map((l) => ({ ...l }));
      if (slot === 'screen' && SCREEN_SIMULCAST) init.sendEncodings = SCREEN_LAYERS.map((l) => ({ ...l }));
      let tr;
      try {
        tr = this.pc.addTransceiver(SLOT_KIND[slot], init);
      } catch (e) {
        // A browser without simulcast: one layer.
        this.t.log(`simulcast refused for ${slot}`, e);
        tr = this.pc.addTransceiver(SLOT_KIND[slot], { direction: 'sendonly' });
      }
      if (slot === 'screen') await this.favourResolution(tr.sender);
      const track = this.t.tracks[slot];
      if (track) await tr.sender.replaceTrack(track);
    }
    await this.pc.setLocalDescription();
    this.expectReply();
    if (!this.t.send({ type: 'offer', to: SFU_PEER, sdp: this.pc.localDescription.sdp })) this.t.retry('signaling is down');
  }

  async favourResolution(sender) {
    try {
      const p = sender.getParameters();
      p.degradationPreference = 'maintain-resolution';
      await sender.setParameters(p);
    } catch {
      /* not supported here: the track's contentHint "detail" says the same */
    }
  }

  /** Slot of a received track: its transceiver's position among those of its kind. */
  slotOf(transceiver) {
    const kind = transceiver.receiver.track.kind;
    const idx = this.pc.getTransceivers().filter((x) => x.receiver.track.kind === kind).indexOf(transceiver);
    if (kind === 'audio') return idx === 0 ? 'mic' : null;
    return ['screen', 'camera'][idx] || null;
  }

  async onDescription(type, sdp) {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return;
    if (type === 'answer') {
      if (pc.signalingState !== 'have-local-offer') return; // a late answer to an abandoned offer
      this.awaiting = false;
      await pc.setRemoteDescription({ type, sdp });
      return;
    }
    // An offer from the SFU: our subscription (first one, or more slots later).
    this.awaiting = false;
    await pc.setRemoteDescription({ type, sdp });
    await pc.setLocalDescription();
    this.t.send({ type: 'answer', to: SFU_PEER, sdp: pc.localDescription.sdp });
  }

  setTrack(slot, track) {
    const tr = this.pc.getTransceivers()[SLOTS.indexOf(slot)];
    if (tr && !tr.stopped) tr.sender.replaceTrack(track || null).catch((e) => this.t.log('replaceTrack', e));
  }

  diagnose() {
    const total = Object.values(this.localTypes).reduce((a, b) => a + b, 0);
    const relayErr = this.iceErrors.find((e) => /^turns?:/.test(e.url || ''));
    if (this.t.forceRelay && this.t.iceServers.length === 0) return 'relay forced but the server offers no relay';
    if (total === 0) {
      if (relayErr) return relayErr.code === 701 ? 'no candidates: the relay is unreachable from this network' : `relay refused: ${relayErr.code} ${relayErr.text}`.trim();
      return 'no candidates gathered on this device';
    }
    return 'the media server is unreachable from this network (UDP blocked?)';
  }

  async stats() {
    const report = await this.pc.getStats();
    const out = this.sampler.sample(report, this.pc, { peer: SFU_PEER, diagnose: () => this.diagnose() });
    // The SFU's only candidate is a host one: a link that is not relayed by us goes to the SFU.
    if (out.link.path === 'direct') {
      out.link.path = 'sfu';
      delete out.link.reason;
    }
    if (out.link.path === 'connecting' && this.t.forceRelay && this.t.iceServers.length === 0) {
      out.link.path = 'failed';
      out.link.reason = this.diagnose();
    }
    return out;
  }

  close() {
    clearTimeout(this.disconnectTimer);
    clearTimeout(this.replyTimer);
    this.awaiting = false;
    this.pc.close();
    for (const slot of SLOTS) this.t.emit('track', { peer: SFU_PEER, slot, track: null });
  }
}
