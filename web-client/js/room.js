// @ts-check
// The classroom: the `Room` ties the signaling connection, the class state (state.js), the media
// transport (media-mode.js) and local media together. It handles the server's messages, updates
// the state, and asks the render modules (ui/) to redraw what changed.

import { Signaling, wsUrl, CLOSE } from './signaling.js';
import { LocalMedia } from './media.js';
import { ClassState, mediaMode, clipReasons } from './state.js';
import { ERROR_TEXT, capitalize, errorText, grantedText, isJoinRefusal, muted, mutedText, refusalTitle } from './messages.js';
import { makeTransport, switchTransport, maybeFallBackToSfu, noteFloorReach } from './media-mode.js';
import { $, show, fatal, toast, log, detail } from './ui/dom.js';
import { renderRoster, renderRow, renderSelfIndicator, renderRemoved, showRefused, wireRoster } from './ui/roster.js';
import { wirePanel, applyPanelRole, showReaction } from './ui/panel.js';
import { renderStage, renderStageMessage, attachAudio, gateAudio, wireStage } from './ui/stage.js';
import { wireControls, renderControls } from './ui/controls.js';
import { wireChat, addChat, addNote } from './ui/chat.js';
import { renderStatus, renderConnectivity } from './ui/connectivity.js';
import { wireShortcuts } from './ui/shortcuts.js';
import { showWaiting, renderWaitingList, wireWaitingRoom, renderWaitingToggle, refreshWaitingTimes } from './ui/waiting.js';
import { showTeacherEnded, showLeft, rejoin, forgetLink, autoStart } from './ui/ended.js';
import { wireDevicesDialog, followSpeakerChoice } from './ui/devices.js';
import { wireInvite } from './ui/invite.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {import('./media-mode.js').Transport} Transport */

const STATS_EVERY_MS = 2000;

export class Room {
  /**
   * @param {{token: string, name: string, claims: {name?: string}}} opts
   */
  constructor({ token, name, claims }) {
    this.token = token;
    this.name = name;
    this.claims = claims;
    // ?relay=force: media only through the TURN relay; ?relay=tcp / ?relay=tls: only TURN over TCP / TLS.
    const relay = new URLSearchParams(window.location.search).get('relay');
    this.forceRelay = ['force', 'tcp', 'tls'].includes(relay || '');
    this.relayTransport = relay === 'tcp' || relay === 'tls' ? relay : null;
    this.state = new ClassState();
    /** @type {{[peer: string]: number}} frames decoded per link, from the last stats tick */
    this.frames = {};
    /** @type {Map<string, HTMLElement>} roster rows by peer id */
    this.rows = new Map();
    /** @type {Set<number>} chat messages shown */
    this.chatIds = new Set();
    /** @type {Transport | null} */
    this.transport = null;
    this.media = new LocalMedia();
    /** @type {{joinClicked: number, welcome: number | null, firstFrame: number | null}} */
    this.timings = { joinClicked: performance.now(), welcome: null, firstFrame: null };
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.statsTimer = undefined;
    this.entered = false;
    this.welcomes = 0;
    this.transportSwitches = 0;
    /** @type {number | null} when we sent `subscribe` because our direct link did not connect */
    this.askedForSfu = null;
    this.sfuFallbackUsed = false;
    /** @type {import('./protocol.js').IceServer[]} */
    this.iceServers = [];
    this.iceRenewals = 0; // `ice_servers` messages applied
    /** @type {string | null} a student whose screen is on the stage */
    this.floorOnStage = null;
    this.watchingFirstFrame = false;
    /** @type {import('./protocol.js').WaitingPeer[]} who waits to be let in (teachers) */
    this.waitingList = [];
    /** @type {import('./protocol.js').LessonSummary | null} from `class_ended` (teachers) */
    this.summary = null;
    /** @type {import('./protocol.js').Welcome | null} a teacher's welcome to an ended lesson */
    this.endedWelcome = null;
    this.left = false;
    this.signaling = new Signaling({ url: wsUrl(), token: this.token, name: this.claims.name ? undefined : this.name });
  }

  start() {
    this.signaling.addEventListener('message', (e) => this.onMessage(detail(e)));
    this.signaling.addEventListener('status', (e) => this.onStatus(detail(e)));
    this.signaling.addEventListener('fatal', (e) => this.onFatal(detail(e)));
    this.media.addEventListener('change', (e) => this.onLocalMedia(detail(e)));
    this.signaling.connect();
    window.addEventListener('beforeunload', () => this.signaling.leave());
  }

  /** The people we know, for the transports. */
  peerList() {
    return [...this.state.peers.values()];
  }

  // ----- signaling events

  /**
   * @param {{state: string, attempt?: number, retryInMs?: number}} status
   */
  onStatus(status) {
    this.state.status = status.state;
    renderStatus(this, status);
  }

  /**
   * The signaling connection closed for good: say why.
   * @param {{code: number, error?: {code?: string, message?: string} | null, notice?: {reason?: string, summary?: import('./protocol.js').LessonSummary} | null}} info
   */
  onFatal({ code, error, notice }) {
    this.stopEverything();
    if (this.left) return;
    // Opening the class link again in this tab must reload the page (see ui/ended.js).
    forgetLink();
    const teacher = !!this.state.me && this.state.me.role === 'teacher';
    const ended = code === CLOSE.CLASS_ENDED && !(notice && /deleted/.test(notice.reason || ''));
    if (ended && teacher) {
      showTeacherEnded(this, (notice && notice.summary) || this.summary, { connected: false });
    } else if (ended) {
      // The class stays: join again, and wait on "This lesson has ended" until it starts again.
      rejoin({ token: this.token, name: this.name });
    } else if (code === CLOSE.JOIN_REFUSED && error && error.code === 'waiting_timeout') {
      showLeft(this, { title: 'Nobody let you in', text: ERROR_TEXT.waiting_timeout, label: 'Knock again' });
    } else if (code === CLOSE.REMOVED) {
      fatal('You were removed from the class', (notice && notice.reason) || 'The teacher removed you from the class.');
    } else if (code === CLOSE.CLASS_ENDED) {
      fatal('The class has ended', (notice && notice.reason) ? `${capitalize(notice.reason)}.` : 'The teacher ended the class.');
    } else if (code === CLOSE.REPLACED) {
      fatal('You joined from somewhere else', 'This class was opened in another tab or window, so this one was disconnected.');
    } else if (code === CLOSE.JOIN_REFUSED) {
      const c = error && error.code;
      if ((c === 'invalid_name' || c === 'rate_limited') && !this.entered) {
        show('join');
        $('join-button').disabled = false;
        $('join-msg').textContent = c === 'rate_limited' ? ERROR_TEXT.join_rate_limited : ERROR_TEXT.invalid_name;
        return;
      }
      if (c === 'rate_limited') {
        fatal('You could not rejoin', ERROR_TEXT.join_rate_limited);
        return;
      }
      const known = c ? /** @type {Record<string, string>} */ (ERROR_TEXT)[c] : undefined;
      fatal(refusalTitle(c || undefined), known || (error && error.message) || 'The server refused to let you join.');
    } else {
      fatal('Disconnected', 'The connection to the class was closed.');
    }
  }

  /**
   * @param {ServerMessage} msg
   */
  onMessage(msg) {
    switch (msg.type) {
      case 'welcome': return this.onWelcome(msg);
      case 'peer_joined': return this.upsertPeer(msg.peer, true);
      case 'peer_updated': return this.upsertPeer(msg.peer, false);
      case 'peer_left': return this.removePeer(msg.id, msg.reason);
      case 'offer':
      case 'answer':
      case 'candidate':
        if (this.transport) this.transport.handleSignal(msg);
        return undefined;
      case 'chat': return addChat(this, msg);
      case 'hand': return this.onHand(msg);
      case 'reaction': return showReaction(this, msg);
      case 'mute': return this.onMuted(msg);
      case 'stats': return this.onStats(msg);
      case 'class_updated': return this.onClass(msg.class);
      case 'join_refused': return showRefused(msg);
      case 'removed_list': return renderRemoved(this, msg.removed);
      case 'ice_servers': return this.onIceServers(msg.ice_servers);
      case 'waiting': return showWaiting(this, msg);
      case 'waiting_list': return renderWaitingList(this, msg.waiting);
      case 'class_ended':
        this.summary = msg.summary || null;
        return undefined; // the close that follows shows the end screen
      case 'admitted': // signaling.js joins again on the same connection
      case 'removed':
      case 'pong':
        return undefined; // the close that follows explains removed / class_ended
      case 'error': return this.onError(msg);
      default: return undefined;
    }
  }

  /**
   * `ice_servers`: fresh TURN credentials before ours expire. New connections get them, and so do
   * the live ones (setConfiguration; relayed direct links restart ICE with them).
   * @param {import('./protocol.js').IceServer[]} iceServers
   */
  onIceServers(iceServers) {
    this.iceServers = iceServers;
    this.iceRenewals += 1;
    if (this.transport) this.transport.setIceServers(iceServers);
  }

  /**
   * @param {import('./protocol.js').Welcome} w
   */
  onWelcome(w) {
    if (w.class.ended && !this.entered) {
      // A teacher opened the link of an ended lesson: the end screen, until she starts it again.
      this.state.welcome(w);
      this.state.cls = w.class;
      this.welcomes += 1;
      this.endedWelcome = w;
      if (autoStart.pending) {
        autoStart.pending = false;
        this.signaling.send({ type: 'start' });
      } else {
        showTeacherEnded(this, w.summary, { connected: true });
      }
      return;
    }
    this.timings.welcome = this.timings.welcome || performance.now();
    const firstTime = !this.entered;
    // Not resumed: the server does not know us any more (e.g. it restarted and forgot live state),
    // so ids may have been reused for other people.
    const newIdentity = this.state.welcome(w);
    this.welcomes += 1;
    this.onClass(w.class, { fromWelcome: true });
    if (!newIdentity && w.server_restarted && this.transport && this.transport.kind === 'sfu') {
      // The server restarted and kept our place, but our sessions with its SFU died with it:
      // rebuild them now rather than wait for the old links to time out.
      this.transport.close();
      this.transport = null;
      this.state.forgetLinks();
    }
    if (newIdentity && this.transport) {
      // The server forgot us (its resume grace ran out): ids may be reused, so rebuild every link.
      this.transport.close();
      this.transport = null;
      this.state.forgetLinks();
      this.chatIds.clear();
      if (!firstTime) addNote('Reconnected to the class.');
    }
    // Every welcome (a resume's too) carries fresh TURN credentials.
    this.iceServers = w.ice_servers;
    if (this.transport && this.transport.kind !== mediaMode(w.class)) {
      // The class switched to the SFU while we were away: a resume finds it in the new mode.
      switchTransport(this);
    } else if (!this.transport) {
      this.transport = makeTransport(this, w);
    } else {
      this.transport.setIceServers(this.iceServers); // the links we keep use them too
    }
    const transport = /** @type {Transport} */ (this.transport);
    transport.syncPeers(this.peerList());
    if (!newIdentity) transport.kickAll();
    for (const entry of w.chat) addChat(this, entry, { history: true });
    if (firstTime) this.enterRoom();
    const st = this.media.state();
    if (st.mic || st.camera || st.screen) this.sendMedia(); // a new identity starts with nothing published
    this.renderAll();
  }

  enterRoom() {
    this.entered = true;
    show('room');
    wireWaitingRoom(this);
    if (this.state.cls) renderWaitingToggle(this.state.cls);
    wireControls(this);
    wireChat(this);
    wirePanel(this);
    wireRoster(this);
    this.applyRole();
    wireShortcuts(() => !$('room').hidden);
    wireDevicesDialog(this);
    wireInvite(this);
    followSpeakerChoice();
    renderControls(this);
    wireStage(this);
    this.statsTimer = setInterval(() => this.statsTick(), STATS_EVERY_MS);
    this.onStatus({ state: 'connected' });
    $('main').focus();
  }

  /**
   * What our role shows (on entering, and when a teacher makes us co-teacher or a student
   * again): a co-teacher has every teacher control but ending the class.
   */
  applyRole() {
    const me = /** @type {NonNullable<ClassState['me']>} */ (this.state.me);
    const teacher = me.role === 'teacher';
    document.body.dataset.role = me.role;
    $('btn-hand').hidden = teacher;
    $('btn-lock').hidden = !teacher;
    $('btn-end').hidden = !teacher || !!me.co_teacher;
    applyPanelRole(this);
  }

  /**
   * A teacher made us co-teacher, or a student again: the page becomes the other view without
   * a reload, and our media links start afresh in the new role.
   * @param {PeerInfo} peer
   */
  onRoleChanged(peer) {
    this.applyRole();
    if (this.transport) {
      switchTransport(this);
      /** @type {Transport} */ (this.transport).syncPeers(this.peerList());
    }
    toast(peer.co_teacher
      ? 'The teacher made you a co-teacher: you can now let students speak or share, mute and lower hands.'
      : 'The teacher made you a student again.');
    this.renderAll();
  }

  /**
   * `peer_joined` / `peer_updated`.
   * @param {PeerInfo} peer
   * @param {boolean} joined
   */
  upsertPeer(peer, joined) {
    const me = this.state.me;
    if (me && peer.id === me.id) {
      const wasRole = me.role;
      const before = this.state.updateMe(peer);
      this.enforcePermissions(before);
      if (me.role !== wasRole) this.onRoleChanged(peer);
      renderControls(this);
      renderRow(this, peer.id);
      return;
    }
    const old = this.state.upsertPeer(peer);
    if (this.transport && old && old.role !== peer.role && this.transport.kind === 'p2p') {
      // Who links with whom over direct links follows the roles: start them afresh.
      switchTransport(this);
    }
    noteFloorReach(this, old, peer);
    gateAudio(this, peer.id);
    if (this.transport) {
      this.transport.syncPeers(this.peerList());
      if (old && !old.connected && peer.connected) this.transport.kick(peer.id);
    }
    if (joined && me && me.role === 'teacher') log(`${peer.name} joined`);
    renderRoster(this);
    renderStage(this);
  }

  /**
   * `peer_left`.
   * @param {string} id
   * @param {string} reason
   */
  removePeer(id, reason) {
    const p = this.state.removePeer(id);
    if (this.transport) this.transport.syncPeers(this.peerList());
    const me = this.state.me;
    if (p && me && me.role === 'teacher' && reason !== 'removed') toast(`${p.name} left the class.`);
    this.renderAll();
  }

  /**
   * `class_updated` (and the class of a `welcome`).
   * @param {import('./protocol.js').ClassInfo} cls
   * @param {{fromWelcome?: boolean}} [opts]
   */
  onClass(cls, { fromWelcome = false } = {}) {
    if (this.endedWelcome && !cls.ended && !this.entered) {
      // The lesson started again: in we go, as if welcomed now.
      const w = { ...this.endedWelcome, class: cls };
      this.endedWelcome = null;
      this.onWelcome(w);
      return;
    }
    this.state.cls = cls;
    renderWaitingToggle(cls);
    $('title').textContent = cls.locked ? `${cls.name} (locked)` : cls.name;
    document.title = `${cls.name} · Aula`;
    const lock = $('btn-lock');
    lock.textContent = cls.locked ? 'Unlock class' : 'Lock class';
    lock.setAttribute('aria-pressed', String(!!cls.locked));
    if (this.entered) renderStage(this); // the spotlight may have changed
    // class_updated with a new media mode (an `auto` class grew past the size for direct links,
    // or a student was given the floor): switch transports in place; what we publish is
    // re-attached to the new one.
    if (!fromWelcome && this.entered && this.transport && this.transport.kind !== mediaMode(cls)) {
      switchTransport(this);
      /** @type {Transport} */ (this.transport).syncPeers(this.peerList());
      addNote(mediaMode(cls) === 'sfu'
        ? 'Video and sound now go through the media server, so the whole class receives them.'
        : 'Video now goes directly between browsers.');
      this.renderAll();
    }
  }

  /**
   * @param {import('./protocol.js').Hand} hand
   */
  onHand({ peer, raised, at, by }) {
    const who = this.state.setHand(peer, raised, at ?? null);
    if (who === 'me') {
      if (!raised && by) toast('The teacher lowered your hand.');
      renderControls(this);
      renderRoster(this);
      return;
    }
    if (!who) return;
    const me = this.state.me;
    if (raised && me && me.role === 'teacher') toast(`${who.name} raised a hand.`);
    renderRoster(this);
  }

  /**
   * `mute`: the teacher turned off our microphone and/or camera.
   * @param {import('./protocol.js').Mute} msg
   */
  onMuted({ kind, everyone }) {
    const text = mutedText(kind, this.media.state(), !!everyone);
    for (const s of muted(kind).slots) this.media.stop(s);
    if (text) toast(text, 'info');
  }

  /**
   * @param {import('./protocol.js').Stats} msg
   */
  onStats({ from, links }) {
    // A student reports its link to us (direct) or, in SFU mode, its link to the SFU.
    const viaSfu = !!this.transport && this.transport.kind === 'sfu';
    this.state.takeReport(from, links, viaSfu, Date.now());
    renderConnectivity(this);
    renderRow(this, from);
  }

  /**
   * @param {import('./protocol.js').ErrorMsg} e
   */
  onError(e) {
    if (isJoinRefusal(e.code, this.signaling.joined)) return; // the 4001 close that follows explains it
    if (e.code === 'unknown_peer') return; // a signal raced with a peer leaving
    if (this.transport && this.transport.handleError(e)) return; // about the SFU link: handled there
    if (e.code === 'media_unavailable' && this.askedForSfu !== null) {
      // Our fallback `subscribe` was refused (the server runs no SFU): the direct link stays.
      this.askedForSfu = null;
      log('no SFU to fall back to');
      return;
    }
    if (e.code === 'media_unavailable') {
      toast(ERROR_TEXT.media_unavailable, 'error');
      return;
    }
    toast(errorText(e), 'error');
  }

  // ----- local media

  /**
   * @param {{slot: import('./protocol.js').Slot, track: MediaStreamTrack | null}} change
   */
  onLocalMedia({ slot, track }) {
    if (this.transport) this.transport.setTrack(slot, track);
    if (slot !== 'screenAudio') this.sendMedia(); // the screen's sound is not in `media`
    renderControls(this);
    renderStage(this);
  }

  sendMedia() {
    this.signaling.send({ type: 'media', ...this.media.state() });
  }

  /**
   * Stops what a revoked right allowed.
   * @param {import('./protocol.js').Permissions} before
   */
  enforcePermissions(before) {
    const me = /** @type {NonNullable<ClassState['me']>} */ (this.state.me);
    const p = me.permissions;
    if (this.transport) this.transport.setPermissions(p);
    if (!p.speak) this.media.stop('mic');
    if (!p.camera) this.media.stop('camera');
    if (!p.screen) this.media.stop('screen');
    if (before && me.role === 'student') {
      const granted = grantedText(before, p);
      if (granted) toast(granted);
    }
  }

  // ----- remote media

  /**
   * A transport's `track` event.
   * @param {{peer: string, slot: import('./protocol.js').Slot, track: MediaStreamTrack | null}} ev
   */
  onRemoteTrack({ peer, slot, track }) {
    this.state.setRemoteTrack(peer, slot, track);
    if (track) track.addEventListener('unmute', () => renderStage(this));
    if (slot === 'mic' || slot === 'screenAudio') attachAudio(this, peer, track, slot);
    renderStage(this);
  }

  // ----- stats

  /** Every STATS_EVERY_MS: measure our links, report them, and redraw the indicators. */
  async statsTick() {
    if (this.waitingList.length) refreshWaitingTimes();
    if (!this.transport) return;
    maybeFallBackToSfu(this);
    const t = this.transport;
    const { links, frames } = await t.collectStats();
    if (t !== this.transport) return;
    this.frames = frames;
    this.state.myLinks = new Map(links.map((l) => [l.peer, l]));
    if (links.length) this.signaling.send({ type: 'stats', links: clipReasons(links) });
    renderConnectivity(this);
    for (const id of this.state.peers.keys()) renderRow(this, id);
    renderSelfIndicator(this);
    renderStageMessage(this);
  }

  // ----- rendering

  renderAll() {
    renderControls(this);
    renderRoster(this);
    renderStage(this);
    renderConnectivity(this);
    renderSelfIndicator(this);
  }

  /** Leaves the class (or the waiting room) for good: "You left the class", with Rejoin. */
  leave() {
    this.left = true;
    this.signaling.leave();
    this.stopEverything();
    showLeft(this);
  }

  stopEverything() {
    clearInterval(this.statsTimer);
    if (this.transport) this.transport.close();
    this.transport = null;
    this.media.stopAll();
    if (this.signaling) this.signaling.shutdown();
    document.querySelectorAll('video').forEach((v) => {
      v.srcObject = null;
    });
  }
}
