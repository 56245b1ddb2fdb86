// @ts-check
// The SFU media transport: connections to the server's selective forwarding unit, which is the
// reserved peer "sfu" of the signaling protocol (docs/protocol.md, "Media: direct connections or
// the SFU"). Same surface as the P2P transport (transport.js); its events are "track"
// {peer, slot, track} (peer: whose media it is) and "state" {peer: "sfu", state}.
//
// Two independent channels, each one RTCPeerConnection with its own retry:
// - Receiving (everyone): sends {"type":"subscribe"}; the SFU offers one send-only m-line per
//   track of every other publisher, with the msid stream id "aula.<peer id>"; we answer. A later
//   offer from "sfu" (someone started publishing) is answered too. A publisher's m-lines of one
//   kind keep its order: video 0 = screen, video 1 = camera, audio 0 = microphone, audio 1 = the
//   shared screen's sound (a tab's audio).
// - Sending (a teacher at once; a student the teacher allowed to speak, show a camera or share a screen, once they turn
//   something on): makes the offer, with three send-only transceivers in the fixed order screen
//   (video), camera (video), microphone (audio), screen's sound (audio); starting or stopping a share is a replaceTrack()
//   with no renegotiation. The camera and the screen are sent as simulcast layers (rids); the SFU
//   picks one per receiver. The screen favours resolution (contentHint "detail",
//   degradationPreference "maintain-resolution"). Several people may publish at once (two
//   teachers, a student with the floor); the server forwards only what each is allowed to send.
//
// Recovery: the SFU drops a peer whose ICE goes quiet, so a failed link (or one disconnected for
// 4 s) is rebuilt from scratch: the receiving channel resubscribes (the server replaces the old
// subscription), the sending channel offers again on a fresh connection (the SFU replaces the old
// session); with backoff 1 s doubling to 15 s. The SFU is ICE-lite and learns our address from our
// connectivity checks, so we send no candidates. Relay forcing works as in P2P: iceTransportPolicy
// "relay" sends our checks and media through the TURN relay to the SFU's address.

import { gatheringProblem } from './ice.js';
import { SFU_PEER } from './protocol.js';
import { MediaLink, MediaTransport, SLOTS, SLOT_KIND, localSdp } from './transport.js';
import { publishInit, slotsOf } from './sfu-media.js';

export { SFU_PEER };

/** @typedef {import('./protocol.js').Slot} Slot */

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
/** A publish or subscribe the SFU has not replied to in this time is started over. */
const REPLY_TIMEOUT_MS = 10000;
/** The `ref` of our messages to the SFU: an error carrying it says which channel it is about. */
const REF = { publish: 'sfu-publish', subscribe: 'sfu-subscribe', answer: 'sfu-answer' };

export class SfuTransport extends MediaTransport {
  /**
   * @param {import('./transport.js').TransportOptions & {
   *          permissions?: import('./protocol.js').Permissions | null,
   *          notify?: (text: string, kind?: string) => void, subscribed?: boolean}} opts
   */
  constructor(opts) {
    super('sfu', opts);
    const { me, permissions, notify, subscribed } = opts;
    /** @type {'sfu'} */
    this.kind = 'sfu';
    this.permissions = me.role === 'teacher' ? { speak: true, camera: true, screen: true } : { speak: false, camera: false, screen: false, ...(permissions || {}) };
    this.notify = notify || (() => {});
    this.closed = false;
    this.receiving = new Channel(this, 'subscriber');
    /** @type {Channel | null} */
    this.sending = null;
    // `subscribed`: the page already sent `subscribe` (its direct link failed, which moved the
    // class to the SFU): wait for that offer instead of asking again.
    this.receiving.start({ subscribed: !!subscribed });
    if (me.role === 'teacher' || Object.values(this.tracks).some(Boolean)) this.startSending();
  }

  mayPublish() {
    return !!(this.permissions.speak || this.permissions.camera || this.permissions.screen);
  }

  startSending() {
    if (this.sending || !this.mayPublish() || this.closed) return;
    this.sending = new Channel(this, 'publisher');
    this.sending.start();
  }

  stopSending() {
    if (!this.sending) return;
    this.sending.close();
    this.sending = null;
  }

  /**
   * The link shown as this page's media link ("sfu"): a teacher's sending link (its uplink is what
   * the class depends on), everyone else's receiving link.
   */
  primary() {
    if (this.me.role === 'teacher' && this.sending && this.sending.link) return this.sending.link;
    return this.receiving.link;
  }

  /** "sfu" → the primary link (same shape as P2P's links, for the page and its debug view). */
  get links() {
    const l = this.primary();
    return new Map(l ? [[SFU_PEER, l]] : []);
  }

  /** The roster does not change the SFU links: everyone reaches the class through them. */
  syncPeers() {}

  /**
   * An offer or answer from "sfu" (the SFU sends no candidates).
   * @param {import('./protocol.js').Description | import('./protocol.js').Candidate} msg
   */
  handleSignal(msg) {
    if (msg.from !== SFU_PEER) return; // a stale direct-connection signal from before the switch
    if (msg.type === 'answer') {
      const link = this.sending && this.sending.link;
      if (link) link.enqueue(() => link.onDescription('answer', msg.sdp));
      return;
    }
    if (msg.type !== 'offer') return;
    let link = this.receiving.link;
    if (!link || link.isNewSession(msg.sdp)) {
      // An offer of a new subscription (the server replaced the old one): a fresh connection.
      this.log('SFU: offer of a new session; new connection');
      link = this.receiving.newLink();
    }
    link.enqueue(() => link.onDescription('offer', msg.sdp));
  }

  /**
   * An error from the server about one of our channels. Returns true when it was about the SFU
   * and has been dealt with (the page then shows nothing else).
   */
  /**
   * @param {import('./protocol.js').ErrorMsg} err
   * @returns {boolean}
   */
  handleError(err) {
    const ref = err.ref;
    /** @type {Channel | null} */
    let channel = null;
    if (ref === REF.publish) channel = this.sending;
    else if (ref === REF.subscribe || ref === REF.answer) channel = this.receiving;
    else if (this.sending && this.sending.link && this.sending.link.awaiting) channel = this.sending;
    else if (this.receiving.link && this.receiving.link.awaiting) channel = this.receiving;
    if (!channel || !channel.link) return false;
    const publishing = channel.role === 'publisher';
    if (err.code === 'forbidden' && publishing) {
      this.stopSending();
      this.notify('The teacher has not allowed you to send to the class.', 'error');
      return true;
    }
    if (err.code === 'rate_limited' && (ref === REF.subscribe || ref === REF.publish)) {
      // Subscribing too often (docs/protocol.md, "Limits on receiving"): back off and retry.
      channel.link.awaiting = false;
      channel.retry(`refused: ${err.message || err.code}`);
      return true;
    }
    if (err.code !== 'media_unavailable') return false;
    channel.link.awaiting = false;
    if (!channel.unavailableShown) {
      channel.unavailableShown = true;
      this.notify(publishing
        ? 'The media server cannot take your screen, camera or microphone right now (it is unavailable or full). Trying again…'
        : 'The media server cannot send you the class\'s video right now (it is unavailable or full). Trying again…', 'error');
    }
    channel.retry(`refused: ${err.message || err.code}`);
    return true;
  }

  /**
   * @param {Slot} slot
   * @param {MediaStreamTrack | null} track
   */
  setTrack(slot, track) {
    this.tracks[slot] = track || null;
    if (this.sending && this.sending.link) this.sending.link.setTrack(slot, track);
    else if (track) this.startSending();
  }

  /**
   * Fresh TURN credentials (`ice_servers`): both links and their replacements use them. A sending
   * link we relay restarts ICE so its allocation is made with them before the old ones expire.
   * The receiving link cannot (the SFU makes its offers): if relayed, it is rebuilt by the
   * failure path once the relay refuses its old credentials.
   */
  liveLinks() {
    return /** @type {SfuLink[]} */ ([this.sending && this.sending.link, this.receiving.link].filter(Boolean));
  }

  /**
   * @param {SfuLink} link
   */
  renewRelay(link) {
    if (link.publishing && link.pc.connectionState === 'connected') link.restartIce();
  }

  /**
   * Our rights changed: without any right to send, the sending channel closes.
   * @param {import('./protocol.js').Permissions} p
   */
  setPermissions(p) {
    if (this.me.role === 'teacher') return;
    this.permissions = { ...p };
    if (!this.mayPublish()) this.stopSending();
  }

  /** A peer is back: the SFU links do not depend on it. */
  kick() {}

  /** Signaling is back (resumed): restart each channel whose link is not up. */
  kickAll() {
    for (const c of [this.receiving, this.sending]) {
      if (!c || c.retryTimer || (c.link && c.link.pc.connectionState === 'connected')) continue;
      c.start();
    }
  }

  /** Every RTCPeerConnection of this transport (sending first). */
  peerConnections() {
    return this.liveLinks().map((l) => l.pc);
  }

  async collectStats() {
    /** @type {import('./protocol.js').LinkStats[]} */
    const links = [];
    /** @type {Record<string, number>} */
    const frames = {};
    try {
      const primary = this.primary();
      if (primary) links.push((await primary.stats()).link);
      const rx = this.receiving.link;
      if (rx) frames[SFU_PEER] = rx === primary ? (await rx.lastStats).framesDecoded : (await rx.stats()).framesDecoded;
    } catch {
      /* closed meanwhile */
    }
    return { links, frames };
  }

  close() {
    this.closed = true;
    this.receiving.close();
    this.stopSending();
  }
}

/** One direction (sending or receiving) with its current link and its retry state. */
class Channel {
  /**
   * @param {SfuTransport} t
   * @param {'publisher' | 'subscriber'} role
   */
  constructor(t, role) {
    this.t = t;
    this.role = role;
    /** @type {SfuLink | null} */
    this.link = null;
    this.retryMs = RETRY_MIN_MS;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.unavailableShown = false;
    this.closed = false;
  }

  /** A fresh connection and a fresh publish / subscribe (unless one is already under way). */
  start({ subscribed = false } = {}) {
    if (this.closed || this.t.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const link = this.newLink();
    if (subscribed) link.expectReply();
    else link.begin();
  }

  newLink() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.link) this.link.close();
    this.link = new SfuLink(this);
    return this.link;
  }

  /**
   * Start over after a delay that doubles on every attempt that does not connect.
   * @param {string} why for the log
   */
  retry(why) {
    if (this.closed || this.t.closed || this.retryTimer) return;
    const jitter = 0.8 + Math.random() * 0.4;
    const delay = Math.round(this.retryMs * jitter);
    this.t.log(`SFU ${this.role} link: ${why}; retrying in ${delay} ms`);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.start();
    }, delay);
  }

  connected() {
    this.retryMs = RETRY_MIN_MS;
    this.unavailableShown = false;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.link) this.link.close();
    this.link = null;
  }
}

/** The one connection of a channel: a publish or a subscription at the SFU. */
class SfuLink extends MediaLink {
  /**
   * @param {Channel} channel
   */
  constructor(channel) {
    const t = channel.t;
    super(t, SFU_PEER);
    /** @type {SfuTransport} */
    this.t = t;
    this.channel = channel;
    this.publishing = channel.role === 'publisher';
    this.polite = !this.publishing; // for the debug view: who makes the offer
    /** @type {Promise<{framesDecoded: number}>} */
    this.lastStats = Promise.resolve({ framesDecoded: 0 });
    this.awaiting = false; // a publish / subscribe waits for the SFU's reply
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.replyTimer = undefined;
    this.slots = new Map(); // mid → {peer, slot} of the media we receive
    this.emitted = new Map(); // "peer slot" → {peer, slot}: tracks announced to the page
    // Local candidates are counted for the diagnosis and not sent: the ICE-lite SFU learns our
    // address from our checks.
    const pc = this.newPeerConnection();
    pc.ontrack = (e) => {
      const s = this.slots.get(e.transceiver.mid);
      if (!s) return;
      this.emitted.set(`${s.peer} ${s.slot}`, s);
      t.emit('track', { peer: s.peer, slot: s.slot, track: e.track });
    };
    pc.onconnectionstatechange = () => {
      if (channel.link !== this) return;
      const state = pc.connectionState;
      if (t.primary() === this) t.emit('state', { peer: SFU_PEER, state });
      this.watchDisconnect(pc, () => channel.retry('disconnected'));
      if (state === 'connected') {
        channel.connected();
      } else if (state === 'failed') {
        channel.retry('connection failed');
      }
    };
  }

  /**
   * @param {() => unknown} fn
   */
  enqueue(fn) {
    super.enqueue(fn, 'SFU signal failed');
  }

  begin() {
    if (this.publishing) this.enqueue(() => this.publish());
    else this.subscribe();
  }

  subscribe() {
    this.expectReply();
    if (!this.t.send({ type: 'subscribe', ref: REF.subscribe })) this.channel.retry('signaling is down');
  }

  /** A publish / subscribe is under way: its reply (or an error) is due. */
  expectReply() {
    this.awaiting = true;
    clearTimeout(this.replyTimer);
    this.replyTimer = setTimeout(() => {
      if (this.awaiting && this.channel.link === this) this.channel.retry('no reply from the SFU');
    }, REPLY_TIMEOUT_MS);
  }

  /**
   * Whether an offer from the SFU starts a new session (another ICE ufrag than the current one).
   * @param {string} sdp
   * @returns {boolean}
   */
  isNewSession(sdp) {
    const current = this.pc.remoteDescription;
    if (!current) return false;
    const ufrag = (/** @type {string} */ text) => (/^a=ice-ufrag:(.+)$/m.exec(text) || [])[1];
    return ufrag(current.sdp) !== ufrag(sdp);
  }

  async publish() {
    for (const slot of SLOTS) {
      const init = publishInit(slot);
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
    const offer = { type: 'offer', to: SFU_PEER, sdp: localSdp(this.pc), ref: REF.publish };
    if (!this.t.send(offer)) this.channel.retry('signaling is down');
  }

  /**
   * @param {RTCRtpSender} sender
   */
  async favourResolution(sender) {
    try {
      const p = sender.getParameters();
      p.degradationPreference = 'maintain-resolution';
      await sender.setParameters(p);
    } catch {
      /* not supported here: the track's contentHint "detail" says the same */
    }
  }

  /**
   * @param {'offer' | 'answer'} type
   * @param {string} sdp
   */
  async onDescription(type, sdp) {
    const pc = this.pc;
    if (pc.signalingState === 'closed') return;
    if (type === 'answer') {
      if (pc.signalingState !== 'have-local-offer') return; // a late answer to an abandoned offer
      this.awaiting = false;
      await pc.setRemoteDescription({ type, sdp });
      return;
    }
    // An offer from the SFU: our subscription (first one, or more media later).
    this.awaiting = false;
    this.slots = slotsOf(sdp);
    await pc.setRemoteDescription({ type, sdp });
    await pc.setLocalDescription();
    this.t.send({ type: 'answer', to: SFU_PEER, sdp: localSdp(pc), ref: REF.answer });
  }

  diagnose() {
    return gatheringProblem(this, this.t)
      || 'the media server is unreachable from this network (UDP blocked?)';
  }

  async stats() {
    const out = await this.sample();
    // The SFU's only candidate is a host one: a link that is not relayed by us goes to the SFU.
    if (out.link.path === 'direct') {
      out.link.path = 'sfu';
      delete out.link.reason;
    }
    if (out.link.path === 'connecting' && this.t.forceRelay && this.t.iceServers.length === 0) {
      out.link.path = 'failed';
      out.link.reason = this.diagnose();
    }
    this.lastStats = Promise.resolve(out);
    this.lastPath = out.link.path;
    return out;
  }

  /**
   * A publisher's ICE restart (fresh TURN credentials): a new offer with new ICE credentials,
   * which the SFU answers as a renegotiation. The media keeps flowing on the old path meanwhile.
   */
  restartIce() {
    this.enqueue(async () => {
      const pc = this.pc;
      if (pc.signalingState !== 'stable' || !pc.remoteDescription) return;
      pc.restartIce();
      await pc.setLocalDescription();
      this.expectReply();
      const offer = { type: 'offer', to: SFU_PEER, sdp: localSdp(pc), ref: REF.publish };
      if (!this.t.send(offer)) this.channel.retry('signaling is down');
    });
  }

  close() {
    clearTimeout(this.disconnectTimer);
    clearTimeout(this.replyTimer);
    this.awaiting = false;
    this.pc.close();
    for (const { peer, slot } of this.emitted.values()) this.t.emit('track', { peer, slot, track: null });
    this.emitted.clear();
  }
}
