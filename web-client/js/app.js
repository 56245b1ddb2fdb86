// Aula's browser client: start page, join form and the classroom.

import { Signaling, wsUrl, CLOSE } from './signaling.js';
import { P2PTransport } from './p2p.js';
import { SfuTransport, SFU_PEER } from './sfu.js';
import { LocalMedia, supportsScreenShare } from './media.js';
import { PATH_LABEL } from './stats.js';
import { tokenFromHash, tokenFromInput, peekClaims, isExpired } from './token.js';

const $ = (id) => document.getElementById(id);
const STATS_EVERY_MS = 2000;
/** A student in an `auto` class whose direct link has not connected in this time asks for the SFU. */
const P2P_FALLBACK_MS = 6000;

/** Small DOM builder: h('li', {class: 'x', 'aria-label': 'y'}, 'text', child). Text is never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const log = (...args) => console.info('[aula]', ...args);

/** What each join-refusal and error code means for a person. */
const ERROR_TEXT = {
  invalid_token: 'This link is not valid. Check that you copied all of it, or ask your teacher for a new link.',
  token_expired: 'This link has expired. Ask your teacher for a new one.',
  class_not_found: 'This class does not exist any more.',
  class_locked: 'The teacher has locked this class. Ask them to unlock it, then try again.',
  class_full: 'This class is full.',
  removed: 'The teacher removed you from this class. Only the teacher can let you back in.',
  join_rate_limited: 'Too many people are joining from your network right now. Try again in a few seconds.',
  invalid_name: 'Please choose a name of 1 to 64 characters, without invisible or control characters.',
  forbidden: 'You are not allowed to do that.',
  rate_limited: 'You are sending too fast; slow down a little.',
  too_long: 'That message is too long.',
  invalid_text: 'Chat messages cannot contain control or text-direction characters.',
  media_unavailable: 'The media server cannot carry this class\'s video right now (it is unavailable or full).',
};

// ---------------------------------------------------------------------------------------------
// Page-level helpers

/**
 * Whether the server says `peer` may be heard (`right` "speak") or seen ("share"): a teacher
 * always, a student only while holding the right. Unknown peers may not.
 */
function mayBe(peer, right) {
  return !!peer && (peer.role === 'teacher' || !!(peer.permissions && peer.permissions[right]));
}

function show(section) {
  for (const id of ['home', 'join', 'room', 'fatal']) $(id).hidden = id !== section;
  document.body.dataset.view = section;
}

function fatal(title, text) {
  $('fatal-title').textContent = title;
  $('fatal-text').textContent = text;
  $('conn').hidden = true;
  show('fatal');
  document.title = `${title} · Aula`;
  $('fatal-title').setAttribute('tabindex', '-1');
  $('fatal-title').focus();
}

function toast(text, kind = 'info') {
  const el = h('p', { class: `toast ${kind}` }, text);
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 5000);
}

/** A modal question; resolves to the input's value (or true) on OK, null on cancel. */
function ask({ title, text, ok, field }) {
  const dlg = $('dialog');
  $('dialog-title').textContent = title;
  $('dialog-text').textContent = text || '';
  $('dialog-ok').textContent = ok;
  $('dialog-field').hidden = !field;
  $('dialog-input').value = '';
  if (field) $('dialog-label').textContent = field;
  dlg.returnValue = '';
  dlg.showModal();
  if (field) $('dialog-input').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (dlg.returnValue !== 'ok') resolve(null);
      else resolve(field ? $('dialog-input').value.trim() : true);
    }, { once: true });
  });
}

function browserSupported() {
  return typeof WebSocket === 'function' && typeof RTCPeerConnection === 'function' && 'srcObject' in HTMLVideoElement.prototype;
}

function formatTime(ms) {
  try {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// Start page

/** A student token for a typed class code (the class id), or null when there is no such class. */
async function tokenForCode(text) {
  const code = String(text || '').trim();
  if (!/^[A-Za-z0-9]{4,32}$/.test(code)) return null;
  try {
    const res = await fetch('/api/v1/join', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    if (!res.ok) return null;
    const body = await res.json();
    return (body.found && body.token) || null;
  } catch {
    return null;
  }
}

function startPage() {
  show('home');
  $('title').textContent = 'Aula';
  $('home-join').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('home-link').value;
    const token = tokenFromInput(input) || (await tokenForCode(input));
    if (!token) {
      $('home-link').setAttribute('aria-invalid', 'true');
      toast('That does not look like a class link or code.', 'error');
      return;
    }
    window.location.assign(`/join${window.location.search}#token=${encodeURIComponent(token)}`);
  });
  // Creating a class needs the admin key unless the server allows open creation; ask for it up
  // front (a refused request would also show up as a console error).
  fetch('/api/v1/info')
    .then((res) => (res.ok ? res.json() : null))
    .then((info) => {
      const needsKey = !(info && info.open_class_creation);
      $('create-key-field').hidden = !needsKey;
      $('create-key').required = needsKey;
      $('create').dataset.keyNeeded = String(needsKey);
    })
    .catch(() => {
      $('create-key-field').hidden = false;
    });
  $('create').addEventListener('submit', async (e) => {
    e.preventDefault();
    const msg = $('create-msg');
    msg.textContent = '';
    const name = $('create-name').value.trim();
    if (!name) return;
    const key = $('create-key').value.trim();
    const headers = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    let res;
    try {
      res = await fetch('/api/v1/classes', {
        method: 'POST',
        headers,
        body: JSON.stringify({ name }),
      });
    } catch {
      msg.textContent = 'Could not reach the server. Check your connection and try again.';
      return;
    }
    if (res.status === 401) {
      $('create-key-field').hidden = false;
      $('create-key').setAttribute('aria-invalid', 'true');
      msg.textContent = key
        ? 'That admin key is not right. Check it, or ask your school\'s Aula administrator for a class link.'
        : 'Creating a class on this server needs your school\'s Aula admin key. Without it, ask your Aula administrator for a class link.';
      return;
    }
    if (res.status === 429) {
      msg.textContent = 'Too many attempts from this network. Wait a minute and try again.';
      return;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !body.teacher) {
      msg.textContent = (body && body.error && body.error.message) || `The server could not create the class (${res.status}).`;
      return;
    }
    $('created-name').textContent = body.name;
    // Links on the address this page was reached by: a person creating a class here reaches the
    // server the way their students will (the server's own `url` may name a default public URL).
    const link = (t) => `${window.location.origin}/join#token=${encodeURIComponent(t)}`;
    $('student-link').value = link(body.student.token);
    $('teacher-link').value = link(body.teacher.token);
    $('class-code').value = body.id;
    $('enter-teacher').href = `/join${window.location.search}#token=${encodeURIComponent(body.teacher.token)}`;
    $('created').hidden = false;
    $('create').hidden = true;
    $('student-link').focus();
    $('student-link').select();
  });
  document.querySelectorAll('[data-copy]').forEach((btn) => {
    btn.addEventListener('click', async () => {
      const input = $(btn.dataset.copy);
      try {
        await navigator.clipboard.writeText(input.value);
        toast('Link copied.');
      } catch {
        input.select();
        toast('Select the link and copy it with Ctrl+C.');
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Join form

function joinPage(token) {
  const claims = peekClaims(token);
  if (!claims) {
    fatal('This link does not work', ERROR_TEXT.invalid_token);
    return;
  }
  if (isExpired(claims)) {
    fatal('This link has expired', ERROR_TEXT.token_expired);
    return;
  }
  show('join');
  const role = claims.role === 'teacher' ? 'teacher' : 'student';
  $('join-role').textContent = role === 'teacher'
    ? 'You are joining as the teacher.'
    : 'You are joining as a student.';
  const nameInput = $('join-name');
  if (claims.name) {
    nameInput.value = claims.name;
    nameInput.readOnly = true;
  } else {
    nameInput.value = localStorage.getItem('aula.name') || '';
  }
  nameInput.focus();
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    try {
      localStorage.setItem('aula.name', name);
    } catch {
      /* private mode */
    }
    $('join-button').disabled = true;
    $('join-msg').textContent = '';
    const room = new Room({ token, name, claims });
    window.aula = room.debug();
    room.start();
  });
}

// ---------------------------------------------------------------------------------------------
// The classroom

class Room {
  constructor({ token, name, claims }) {
    this.token = token;
    this.name = name;
    this.claims = claims;
    // ?relay=force: media only through the TURN relay; ?relay=tcp / ?relay=tls: only TURN over TCP / TLS.
    const relay = new URLSearchParams(window.location.search).get('relay');
    this.forceRelay = ['force', 'tcp', 'tls'].includes(relay);
    this.relayTransport = relay === 'tcp' || relay === 'tls' ? relay : null;
    this.me = null; // {id, role, name, permissions, hand_raised}
    this.cls = null;
    this.peers = new Map(); // id -> PeerInfo
    this.remote = new Map(); // id -> {screen, camera, mic} MediaStreamTrack
    this.myLinks = new Map(); // peer -> LinkStats (measured here)
    this.theirLinks = new Map(); // peer -> LinkStats (reported by that peer about its link to me)
    this.frames = {};
    this.rows = new Map(); // roster rows
    this.chatIds = new Set();
    this.transport = null;
    this.media = new LocalMedia();
    this.timings = { joinClicked: performance.now(), welcome: null, firstFrame: null };
    this.statsTimer = null;
    this.entered = false;
    this.status = 'connecting';
    this.welcomes = 0;
    this.transportSwitches = 0;
    this.askedForSfu = null; // when we sent `subscribe` because our direct link did not connect
    this.sfuFallbackUsed = false;
    this.iceServers = [];
    this.iceRenewals = 0; // `ice_servers` messages applied
  }

  debug() {
    const room = this;
    return {
      timings: this.timings,
      get me() { return room.me; },
      get peers() { return [...room.peers.values()]; },
      get myLinks() { return Object.fromEntries(room.myLinks); },
      get theirLinks() { return Object.fromEntries(room.theirLinks); },
      get status() { return room.status; },
      get welcomes() { return room.welcomes; },
      /** How media flows now: "p2p" or "sfu" (the transport in use), and the class's mode. */
      get media() { return room.transport ? room.transport.kind : null; },
      get classMedia() { return room.cls ? room.cls.media || 'p2p' : null; },
      get transportSwitches() { return room.transportSwitches; },
      get iceRenewals() { return room.iceRenewals; },
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
        return room.transport.peerConnections().map((pc) => pc.getConfiguration().iceServers
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
          const sources = {};
          report.forEach((s) => { if (s.type === 'media-source') sources[s.id] = s.trackIdentifier; });
          const streams = [];
          report.forEach((s) => {
            if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
            streams.push({ rid: s.rid || null, track: sources[s.mediaSourceId] || null, bytesSent: s.bytesSent || 0, frameWidth: s.frameWidth || 0, active: s.active !== false });
          });
          const senders = pc.getSenders().filter((x) => x.track && x.track.kind === 'video').map((x) => x.track.id);
          out.push({ pc: i, senders, streams });
        }
        return out;
      },
      async frames() { return room.transport ? (await room.transport.collectStats()).frames : {}; },
      /**
       * Rebuilds an SFU link on a fresh connection, exactly as after a link failure ("sending" or
       * "receiving"); returns false outside SFU mode. For tests of the recovery path.
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

  start() {
    this.signaling = new Signaling({ url: wsUrl(), token: this.token, name: this.claims.name ? undefined : this.name });
    this.signaling.addEventListener('message', (e) => this.onMessage(e.detail));
    this.signaling.addEventListener('status', (e) => this.onStatus(e.detail));
    this.signaling.addEventListener('fatal', (e) => this.onFatal(e.detail));
    this.media.addEventListener('change', (e) => this.onLocalMedia(e.detail));
    this.signaling.connect();
    window.addEventListener('beforeunload', () => this.signaling.leave());
  }

  // ----- signaling events

  onStatus({ state, attempt, retryInMs }) {
    this.status = state;
    const el = $('conn');
    if (!this.entered) {
      if (state === 'waiting' && attempt > 3) $('join-msg').textContent = 'Cannot reach the server; still trying…';
      return;
    }
    el.hidden = false;
    el.dataset.state = state;
    if (state === 'connected') {
      el.textContent = 'Connected';
    } else if (state === 'waiting') {
      el.textContent = `Connection lost. Reconnecting in ${Math.ceil(retryInMs / 1000)} s…`;
    } else {
      el.textContent = 'Reconnecting…';
    }
    this.renderSelfIndicator();
  }

  onFatal({ code, error, notice }) {
    this.stopEverything();
    if (code === CLOSE.REMOVED) {
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
      const title = c === 'token_expired' ? 'This link has expired'
        : c === 'invalid_token' ? 'This link does not work'
        : c === 'class_locked' ? 'The class is locked'
        : c === 'class_full' ? 'The class is full'
        : c === 'removed' ? 'You were removed from this class'
        : c === 'class_not_found' ? 'This class does not exist'
        : 'You could not join';
      fatal(title, ERROR_TEXT[c] || (error && error.message) || 'The server refused to let you join.');
    } else {
      fatal('Disconnected', 'The connection to the class was closed.');
    }
  }

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
      case 'chat': return this.addChat(msg);
      case 'hand': return this.onHand(msg);
      case 'mute': return this.onMuted(msg);
      case 'stats': return this.onStats(msg);
      case 'class_updated': return this.onClass(msg.class);
      case 'join_refused': return this.onJoinRefused(msg);
      case 'removed_list': return this.renderRemoved(msg.removed);
      case 'ice_servers': return this.onIceServers(msg.ice_servers);
      case 'removed':
      case 'class_ended':
      case 'pong':
        return undefined; // the close that follows explains removed / class_ended
      case 'error': return this.onError(msg);
      default: return undefined;
    }
  }

  /**
   * `ice_servers`: fresh TURN credentials before ours expire. New connections get them, and so do
   * the live ones (setConfiguration; relayed direct links restart ICE with them).
   */
  onIceServers(iceServers) {
    this.iceServers = iceServers;
    this.iceRenewals += 1;
    if (this.transport) this.transport.setIceServers(iceServers);
  }

  onWelcome(w) {
    this.timings.welcome = this.timings.welcome || performance.now();
    const firstTime = !this.entered;
    // Not resumed: the server does not know us any more (e.g. it restarted and forgot live state),
    // so ids may have been reused for other people.
    const newIdentity = !this.me || !w.resumed;
    this.welcomes += 1;
    this.me = { id: w.id, role: w.role, name: w.name, permissions: w.permissions, hand_raised: w.hand_raised };
    this.onClass(w.class, { fromWelcome: true });
    this.peers = new Map(w.peers.map((p) => [p.id, p]));
    if (newIdentity && this.transport) {
      // The server forgot us (e.g. it restarted): everybody has new ids, so rebuild every link.
      this.transport.close();
      this.transport = null;
      this.remote.clear();
      this.myLinks.clear();
      this.theirLinks.clear();
      this.chatIds.clear();
      if (!firstTime) this.addNote('Reconnected to the class.');
    }
    // Every welcome (a resume's too) carries fresh TURN credentials.
    this.iceServers = w.ice_servers;
    if (this.transport && this.transport.kind !== mediaMode(w.class)) {
      // The class switched to the SFU while we were away: a resume finds it in the new mode.
      this.switchTransport();
    } else if (!this.transport) {
      this.transport = this.makeTransport(w);
    } else {
      this.transport.setIceServers(this.iceServers); // the links we keep use them too
    }
    this.transport.syncPeers([...this.peers.values()]);
    if (!newIdentity) this.transport.kickAll();
    for (const entry of w.chat) this.addChat(entry);
    if (firstTime) this.enterRoom();
    const st = this.media.state();
    if (st.mic || st.camera || st.screen) this.sendMedia(); // a new identity starts with nothing published
    this.renderAll();
  }

  /**
   * The media transport for the class's media mode: direct links (p2p.js) or one link to the
   * server's SFU (sfu.js). Keeps the welcome's ICE servers for a later switch.
   */
  makeTransport(w) {
    if (w) this.iceServers = w.ice_servers;
    const opts = {
      me: { id: this.me.id, role: this.me.role },
      iceServers: this.iceServers,
      forceRelay: this.forceRelay,
      relayTransport: this.relayTransport,
      send: (m) => this.signaling.send(m),
      tracks: { ...this.media.tracks },
      permissions: this.me ? this.me.permissions : null,
      log,
    };
    // Our own `subscribe` (direct link failed) may be what moved the class to the SFU: its offer comes.
    const subscribed = this.askedForSfu !== null && performance.now() - this.askedForSfu < 10_000;
    this.askedForSfu = null;
    const t = mediaMode(this.cls) === 'sfu'
      ? new SfuTransport({ ...opts, subscribed, notify: (text, kind) => toast(text, kind) })
      : new P2PTransport(opts);
    log(`media transport: ${t.kind}`);
    t.addEventListener('track', (e) => this.onRemoteTrack(e.detail));
    t.addEventListener('state', (e) => {
      if (e.detail.state === 'failed') log('media link failed', e.detail.peer);
      if (e.detail.state === 'connected') this.statsTick();
      this.renderRow(e.detail.peer);
      this.renderSelfIndicator();
    });
    return t;
  }

  enterRoom() {
    this.entered = true;
    show('room');
    const teacher = this.me.role === 'teacher';
    document.body.dataset.role = this.me.role;
    $('btn-hand').hidden = teacher;
    $('btn-lock').hidden = !teacher;
    $('btn-end').hidden = !teacher;
    $('connectivity').hidden = !teacher;
    $('stage-camera').setAttribute('aria-label', 'Teacher camera');
    this.wireControls();
    for (const ev of ['resize', 'loadeddata', 'emptied']) $('stage-screen').addEventListener(ev, () => this.renderStageMessage());
    this.statsTimer = setInterval(() => this.statsTick(), STATS_EVERY_MS);
    this.onStatus({ state: 'connected' });
    $('main').focus();
  }

  upsertPeer(peer, joined) {
    if (this.me && peer.id === this.me.id) {
      const before = this.me.permissions;
      this.me.permissions = peer.permissions;
      this.me.hand_raised = peer.hand_raised;
      this.enforcePermissions(before);
      this.renderControls();
      this.renderRow(peer.id);
      return;
    }
    const old = this.peers.get(peer.id);
    this.peers.set(peer.id, peer);
    this.gateAudio(peer.id);
    if (this.transport) {
      this.transport.syncPeers([...this.peers.values()]);
      if (old && !old.connected && peer.connected) this.transport.kick(peer.id);
    }
    if (joined && this.me.role === 'teacher') log(`${peer.name} joined`);
    this.renderRoster();
    this.renderStage();
  }

  removePeer(id, reason) {
    const p = this.peers.get(id);
    this.peers.delete(id);
    this.remote.delete(id);
    this.myLinks.delete(id);
    this.theirLinks.delete(id);
    if (this.transport) this.transport.syncPeers([...this.peers.values()]);
    if (p && this.me.role === 'teacher' && reason !== 'removed') toast(`${p.name} left the class.`);
    this.renderAll();
  }

  onClass(cls, { fromWelcome = false } = {}) {
    this.cls = cls;
    $('title').textContent = cls.locked ? `${cls.name} (locked)` : cls.name;
    document.title = `${cls.name} · Aula`;
    const lock = $('btn-lock');
    lock.textContent = cls.locked ? 'Unlock class' : 'Lock class';
    lock.setAttribute('aria-pressed', String(!!cls.locked));
    // class_updated with a new media mode (an `auto` class grew past the size for direct links):
    // switch transports in place; what we publish is re-attached to the new one.
    if (!fromWelcome && this.entered && this.transport && this.transport.kind !== mediaMode(cls)) {
      this.switchTransport();
      this.transport.syncPeers([...this.peers.values()]);
      this.addNote(mediaMode(cls) === 'sfu'
        ? 'The class has grown: video now goes through the media server.'
        : 'Video now goes directly between browsers.');
      this.renderAll();
    }
  }

  /** Tears down the current transport and starts the one for the class's media mode. */
  switchTransport() {
    log(`media mode ${this.transport.kind} → ${mediaMode(this.cls)}`);
    this.transport.close();
    this.transportSwitches += 1;
    this.remote.clear();
    this.myLinks.clear();
    this.theirLinks.clear();
    document.querySelectorAll('audio.remote-audio').forEach((a) => a.remove());
    this.transport = this.makeTransport(null);
  }

  /** The peer id of the link that carries a peer's media here: the peer, or the SFU. */
  linkPeerOf(peerId) {
    return this.transport && this.transport.kind === 'sfu' ? SFU_PEER : peerId;
  }

  /** Whether there is (or should be) a media link with this peer. */
  hasMediaLink(p) {
    if (!this.transport) return false;
    if (this.transport.kind === 'sfu') {
      // Students reach the class through the SFU; the teacher sees their reports about that link.
      return this.me.role === 'teacher' ? p.role === 'student' : p.role === 'teacher';
    }
    return this.transport.links.has(p.id);
  }

  onHand({ peer, raised }) {
    if (this.me && peer === this.me.id) {
      this.me.hand_raised = raised;
      this.renderControls();
      this.renderRow(peer);
      return;
    }
    const p = this.peers.get(peer);
    if (!p) return;
    p.hand_raised = raised;
    if (raised && this.me.role === 'teacher') toast(`${p.name} raised a hand.`);
    this.renderRoster();
  }

  onMuted({ kind }) {
    const slots = kind === 'audio' ? ['mic'] : kind === 'video' ? ['camera', 'screen'] : ['mic', 'camera', 'screen'];
    const stopped = slots.filter((s) => this.media.tracks[s]);
    for (const s of slots) this.media.stop(s);
    const what = kind === 'audio' ? 'microphone' : kind === 'video' ? 'camera' : 'microphone and camera';
    toast(`The teacher turned off your ${what}.`, stopped.length ? 'info' : 'info');
  }

  onStats({ from, links }) {
    // A student reports its link to us (direct) or, in SFU mode, its link to the SFU.
    const mine = links.find((l) => l.peer === this.me.id)
      || (this.transport && this.transport.kind === 'sfu' ? links.find((l) => l.peer === SFU_PEER) : null);
    if (mine) this.theirLinks.set(from, { ...mine, at: Date.now() });
    this.renderConnectivity();
    this.renderRow(from);
  }

  onError(e) {
    if (['invalid_token', 'token_expired', 'class_not_found', 'class_locked', 'class_full', 'invalid_name', 'removed'].includes(e.code)
      || (e.code === 'rate_limited' && !this.signaling.joined)) {
      return; // a join refusal: the 4001 close that follows explains it
    }
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
    toast(ERROR_TEXT[e.code] && e.code !== 'forbidden' ? ERROR_TEXT[e.code] : e.message || e.code, 'error');
  }

  // ----- local media

  wireControls() {
    $('btn-mic').addEventListener('click', () => this.toggle('mic'));
    $('btn-camera').addEventListener('click', () => this.toggle('camera'));
    $('btn-share').addEventListener('click', () => this.toggle('screen'));
    $('btn-hand').addEventListener('click', () => {
      this.signaling.send({ type: 'hand', raised: !this.me.hand_raised });
    });
    $('btn-fullscreen').addEventListener('click', () => {
      const stage = $('stage');
      if (document.fullscreenElement) document.exitFullscreen();
      else if (stage.requestFullscreen) stage.requestFullscreen().catch(() => toast('Fullscreen is not available here.'));
      else if ($('stage-screen').webkitEnterFullscreen) $('stage-screen').webkitEnterFullscreen();
    });
    document.addEventListener('fullscreenchange', () => {
      $('btn-fullscreen').textContent = document.fullscreenElement ? 'Exit fullscreen' : 'Fullscreen';
    });
    $('btn-sound').addEventListener('click', () => {
      document.querySelectorAll('audio.remote-audio').forEach((a) => a.play().catch(() => {}));
      $('btn-sound').hidden = true;
    });
    $('btn-lock').addEventListener('click', () => {
      this.signaling.send({ type: 'lock', locked: !this.cls.locked });
    });
    $('btn-end').addEventListener('click', async () => {
      const ok = await ask({ title: 'End the class for everyone?', text: 'Everybody is disconnected and the links stop working for this session.', ok: 'End class' });
      if (ok) this.signaling.send({ type: 'end' });
    });
    $('btn-leave').addEventListener('click', () => {
      this.signaling.leave();
      this.stopEverything();
      fatal('You left the class', 'Open the class link again to rejoin.');
    });
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = $('chat-input');
      const text = input.value.trim();
      if (!text) return;
      if (this.signaling.send({ type: 'chat', text })) input.value = '';
      else toast('Not connected; your message was not sent.', 'error');
    });
    this.renderControls();
  }

  async toggle(slot) {
    if (this.media.tracks[slot]) {
      this.media.stop(slot);
      return;
    }
    const btn = { mic: 'btn-mic', camera: 'btn-camera', screen: 'btn-share' }[slot];
    $(btn).disabled = true;
    try {
      await this.media.start(slot);
    } catch (err) {
      toast(err.message, 'error');
      $('perm-note').textContent = err.message;
    } finally {
      $(btn).disabled = false;
    }
  }

  onLocalMedia({ slot, track }) {
    if (this.transport) this.transport.setTrack(slot, track);
    this.sendMedia();
    this.renderControls();
    this.renderStage();
  }

  sendMedia() {
    this.signaling.send({ type: 'media', ...this.media.state() });
  }

  /** Stops what a revoked right allowed. */
  enforcePermissions(before) {
    const p = this.me.permissions;
    if (this.transport) this.transport.setPermissions(p);
    if (!p.speak) this.media.stop('mic');
    if (!p.share) {
      this.media.stop('camera');
      this.media.stop('screen');
    }
    if (before && this.me.role === 'student') {
      if (p.speak && !before.speak) toast('The teacher lets you speak now.');
      if (p.share && !before.share) toast('The teacher lets you share your camera and screen now.');
    }
  }

  // ----- remote media

  onRemoteTrack({ peer, slot, track }) {
    const r = this.remote.get(peer) || {};
    r[slot] = track;
    this.remote.set(peer, r);
    if (track) track.addEventListener('unmute', () => this.renderStage());
    if (slot === 'mic') this.attachAudio(peer, track);
    this.renderStage();
  }

  attachAudio(peer, track) {
    let el = document.querySelector(`audio[data-peer="${CSS.escape(peer)}"]`);
    if (!track) {
      if (el) el.remove();
      return;
    }
    if (!el) {
      el = h('audio', { class: 'remote-audio', 'data-peer': peer, autoplay: true });
      $('room').append(el);
    }
    el.srcObject = new MediaStream([track]);
    this.gateAudio(peer);
  }

  /**
   * Plays a peer's microphone only while the server says it may be heard (a teacher, or a student
   * holding `speak`): in a direct class the sender's browser is all that stops a student without
   * the right, and a modified one does not, so the receiving end holds the line too.
   */
  gateAudio(peerId) {
    const el = document.querySelector(`audio[data-peer="${CSS.escape(peerId)}"]`);
    if (!el || !el.srcObject) return;
    const audible = mayBe(this.peers.get(peerId), 'speak');
    for (const t of el.srcObject.getAudioTracks()) t.enabled = audible;
    el.muted = !audible;
    if (!audible) {
      el.pause();
      return;
    }
    el.play().catch(() => {
      $('btn-sound').hidden = false;
    });
  }

  /** The teacher whose media the stage shows: the one sharing a screen, else the first. */
  stageTeacher() {
    const teachers = [...this.peers.values()].filter((p) => p.role === 'teacher');
    return teachers.find((p) => p.media.screen) || teachers.find((p) => p.media.camera) || teachers[0] || null;
  }

  /** A student sharing a screen whose picture we receive (through the SFU), or null. */
  stageStudent() {
    return [...this.peers.values()].find((p) => p.role === 'student' && p.media.screen
      && mayBe(p, 'share') && (this.remote.get(p.id) || {}).screen) || null;
  }

  renderStage() {
    if (!this.me) return;
    const screen = $('stage-screen');
    const cam = $('stage-camera');
    const self = $('self-camera');
    let screenTrack = null;
    let camTrack = null;
    let label = 'Shared screen';
    const other = this.stageTeacher();
    let floor = null; // a student whose screen is on the stage
    if (this.me.role === 'teacher' && (this.media.tracks.screen || !(other && other.media.screen))) {
      screenTrack = this.media.tracks.screen;
      label = 'Your shared screen';
    } else {
      // A student's stage, or a teacher's while another teacher shares.
      const t = other;
      const r = t && this.remote.get(t.id);
      if (t && r) {
        if (t.media.screen) screenTrack = r.screen || null;
        if (t.media.camera) camTrack = r.camera || null;
        label = `${t.name}'s screen`;
      }
      // No teacher's screen: a student with the floor who shares takes the stage (students'
      // screens reach everyone through the SFU).
      floor = this.me.role === 'student' && !screenTrack ? this.stageStudent() : null;
      if (floor) {
        screenTrack = this.remote.get(floor.id).screen;
        label = `${floor.name}'s screen`;
      }
    }
    this.floorOnStage = floor ? floor.id : null;
    setVideo(screen, screenTrack, label);
    setVideo(cam, camTrack, 'Teacher camera');
    setVideo(self, this.media.tracks.camera, 'Your camera');
    if (screenTrack && !this.timings.firstFrame && this.me.role !== 'teacher') this.watchFirstFrame(screen);
    this.renderStageMessage();
    this.renderTiles();
  }

  /** The text over the stage while there is no picture: why, in words. */
  renderStageMessage() {
    const screen = $('stage-screen');
    const empty = $('stage-empty');
    const hasTrack = !screen.hidden;
    const hasPicture = hasTrack && screen.videoWidth > 0;
    empty.hidden = hasPicture;
    empty.classList.toggle('over', hasTrack);
    if (hasPicture) return;
    const t = this.me.role === 'teacher' ? null : this.stageTeacher();
    if (this.me.role === 'teacher') {
      empty.textContent = hasTrack ? 'Starting your screen share…' : 'You are not sharing your screen. Press “Share screen” to show it to the class.';
    } else if (!t) {
      empty.textContent = 'Waiting for the teacher to join…';
    } else if (!t.media.screen) {
      empty.textContent = 'The teacher is not sharing a screen right now.';
    } else {
      const l = this.linkOf(this.linkPeerOf(t.id));
      empty.textContent = l && l.path === 'failed'
        ? `The teacher's screen cannot reach you: ${l.reason || 'no network path worked'}.`
        : 'Connecting to the teacher\'s screen…';
    }
  }

  watchFirstFrame(video) {
    if (this.watchingFirstFrame) return;
    this.watchingFirstFrame = true;
    const done = () => {
      if (this.timings.firstFrame || video.videoWidth === 0) return;
      this.timings.firstFrame = performance.now();
      log(`first frame ${Math.round(this.timings.firstFrame - this.timings.joinClicked)} ms after join`);
    };
    video.addEventListener('loadeddata', done, { once: true });
    video.addEventListener('resize', done);
  }

  /**
   * Students' cameras and screens, when they share: on the teacher's view, and, through the SFU
   * (which forwards a student with the floor to everyone), on every student's view too.
   */
  renderTiles() {
    const tiles = $('tiles');
    const want = [];
    if (this.me.role === 'teacher' || (this.transport && this.transport.kind === 'sfu')) {
      for (const p of this.peers.values()) {
        // A student's picture only with the right to share, whatever its browser sends.
        if (p.role !== 'student' || !mayBe(p, 'share')) continue;
        const onStage = this.floorOnStage === p.id;
        const r = this.remote.get(p.id) || {};
        if (p.media.screen && r.screen && !onStage) want.push({ key: `${p.id}:screen`, track: r.screen, label: `${p.name}'s screen` });
        if (p.media.camera && r.camera) want.push({ key: `${p.id}:camera`, track: r.camera, label: `${p.name}'s camera` });
      }
    }
    const keep = new Set(want.map((w) => w.key));
    tiles.querySelectorAll('figure').forEach((f) => {
      if (!keep.has(f.dataset.key)) f.remove();
    });
    for (const w of want) {
      let fig = tiles.querySelector(`figure[data-key="${CSS.escape(w.key)}"]`);
      if (!fig) {
        fig = h('figure', { 'data-key': w.key },
          h('video', { autoplay: true, playsInline: true, muted: true }),
          h('figcaption', {}, w.label));
        tiles.append(fig);
      }
      setVideo(fig.querySelector('video'), w.track, w.label);
    }
    tiles.hidden = want.length === 0;
  }

  // ----- stats

  /**
   * In an `auto` class still on direct links, a student whose link to the teacher has not
   * connected within P2P_FALLBACK_MS (or failed) asks for the SFU: the server moves the class to it
   * (everyone gets class_updated) and answers us with the SFU's offer. Once per page.
   */
  maybeFallBackToSfu() {
    const t = this.transport;
    if (!t || t.kind !== 'p2p' || this.sfuFallbackUsed || this.me.role !== 'student') return;
    if (!this.cls || this.cls.topology !== 'auto' || this.status !== 'connected') return;
    const teacher = this.stageTeacher();
    const link = teacher && teacher.connected && t.links.get(teacher.id);
    if (!link || link.everConnected) return;
    const state = link.pc.connectionState;
    if (state !== 'failed' && performance.now() - link.createdAt < P2P_FALLBACK_MS) return;
    this.sfuFallbackUsed = true;
    this.askedForSfu = performance.now();
    log(`direct link to the teacher ${state} after ${Math.round(performance.now() - link.createdAt)} ms: asking for the SFU`);
    this.signaling.send({ type: 'subscribe' });
  }

  async statsTick() {
    if (!this.transport) return;
    this.maybeFallBackToSfu();
    const t = this.transport;
    const { links, frames } = await t.collectStats();
    if (t !== this.transport) return;
    this.frames = frames;
    this.myLinks = new Map(links.map((l) => [l.peer, l]));
    // The server refuses a `reason` over 200 characters (docs/protocol.md).
    const report = links.map((l) => (l.reason && l.reason.length > 200 ? { ...l, reason: l.reason.slice(0, 200) } : l));
    if (links.length) this.signaling.send({ type: 'stats', links: report });
    this.renderConnectivity();
    for (const id of this.peers.keys()) this.renderRow(id);
    this.renderSelfIndicator();
    this.renderStageMessage();
  }

  /** The link to a peer as best known: relay or failure from either end wins. */
  linkOf(peerId) {
    const mine = this.myLinks.get(peerId);
    const theirs = this.theirLinks.get(peerId);
    if (!mine && !theirs) return null;
    const fresh = theirs && Date.now() - theirs.at < 10_000 ? theirs : null;
    const a = mine || {};
    const b = fresh || {};
    // A failure or a relay seen by either end wins; the end that holds the relay allocation knows
    // its protocol (the other end only sees a relay candidate), so a relay without a reason wins.
    let src = null;
    for (const cand of ['failed', 'relay_tls', 'relay_tcp', 'relay_udp']) {
      const ends = [b, a].filter((e) => e.path === cand);
      if (ends.length) {
        src = ends.find((e) => !e.reason) || ends[0];
        break;
      }
    }
    const path = src ? src.path : a.path || b.path || 'connecting';
    const reason = src ? src.reason || null : a.reason || b.reason || null;
    return {
      path,
      reason: path === 'direct' ? null : reason,
      bitrate_kbps: a.bitrate_kbps ?? b.bitrate_kbps,
      loss: b.loss ?? a.loss,
      rtt_ms: a.rtt_ms ?? b.rtt_ms,
    };
  }

  // ----- rendering

  renderAll() {
    this.renderControls();
    this.renderRoster();
    this.renderStage();
    this.renderConnectivity();
    this.renderSelfIndicator();
  }

  renderControls() {
    if (!this.me || !this.entered) return;
    const p = this.me.permissions;
    const st = this.media.state();
    const mic = $('btn-mic');
    mic.hidden = !p.speak;
    mic.setAttribute('aria-pressed', String(st.mic));
    mic.textContent = st.mic ? 'Microphone on' : 'Microphone off';
    mic.setAttribute('aria-label', 'Microphone');
    const cam = $('btn-camera');
    cam.hidden = !p.share;
    cam.setAttribute('aria-pressed', String(st.camera));
    cam.textContent = st.camera ? 'Camera on' : 'Camera off';
    cam.setAttribute('aria-label', 'Camera');
    const share = $('btn-share');
    share.hidden = !p.share || !supportsScreenShare();
    share.textContent = st.screen ? 'Stop sharing' : 'Share screen';
    share.classList.toggle('active', st.screen);
    const hand = $('btn-hand');
    hand.textContent = this.me.hand_raised ? 'Lower hand' : 'Raise hand';
    hand.classList.toggle('active', this.me.hand_raised);
    const notes = [];
    if (this.me.role === 'student' && !p.speak && !p.share) notes.push('The teacher can let you speak or share.');
    else if (this.me.role === 'student' && !p.speak) notes.push('The teacher can let you speak.');
    if (p.share && !supportsScreenShare()) notes.push('This browser cannot share a screen.');
    if (this.forceRelay) notes.push(`Relay forced (?relay=${this.relayTransport || 'force'}): media goes through the server.`);
    $('perm-note').textContent = notes.join(' ');
  }

  /** A teacher's notice of joins the server refused (knocking at a locked class, full, removed…). */
  onJoinRefused({ name, code, count }) {
    const why = {
      class_locked: 'the class is locked',
      class_full: 'the class is full',
      removed: 'you removed them',
      rate_limited: 'too many joins from one network',
    }[code] || code;
    const who = name ? `${name}` : 'Someone';
    const more = count > 1 ? ` (${count} attempts)` : '';
    const note = $('knock-note');
    note.textContent = `${who} could not join: ${why}${more}.`;
    note.hidden = false;
    note.dataset.code = code;
  }

  /** The teacher's list of people removed this session, each with a Readmit button. */
  renderRemoved(removed) {
    const section = $('removed-section');
    const list = $('removed-list');
    list.replaceChildren(...removed.map((r) => {
      const readmit = h('button', { type: 'button', class: 'small', 'aria-label': `Readmit ${r.name}` }, 'Readmit');
      readmit.addEventListener('click', () => this.signaling.send({ type: 'readmit', peer: r.id }));
      return h('li', { class: 'person', 'data-peer': r.id },
        h('span', { class: 'name' }, r.name),
        r.role === 'teacher' ? roleBadge() : null,
        h('span', { class: 'actions' }, readmit));
    }));
    section.hidden = removed.length === 0;
  }

  renderRoster() {
    if (!this.me) return;
    const list = $('roster');
    const everyone = [{ ...this.me, connected: true, media: this.media.state(), self: true }, ...this.peers.values()];
    everyone.sort((a, b) => (a.role === b.role ? (a.self ? -1 : b.self ? 1 : a.name.localeCompare(b.name)) : a.role === 'teacher' ? -1 : 1));
    const ids = new Set(everyone.map((p) => p.id));
    for (const [id, row] of this.rows) {
      if (!ids.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
    everyone.forEach((p, i) => {
      let row = this.rows.get(p.id);
      if (!row) {
        row = this.buildRow(p);
        this.rows.set(p.id, row);
      }
      if (list.children[i] !== row) list.insertBefore(row, list.children[i] || null);
      this.renderRow(p.id);
    });
    $('people-count').textContent = `(${everyone.length})`;
  }

  buildRow(p) {
    const teacherView = this.me.role === 'teacher' && p.role === 'student';
    const row = h('li', { class: 'person', 'data-peer': p.id });
    const dot = h('span', { class: 'dot', role: 'img' });
    const name = h('span', { class: 'name' });
    const badges = h('span', { class: 'badges' });
    // The role comes from the server's `role`, drawn as a badge: a name is plain text and
    // cannot draw one, so "Ms Rivera · Teacher" typed as a name still reads as a student.
    row.append(dot, name, ...(p.role === 'teacher' ? [roleBadge()] : []), badges);
    if (teacherView) {
      const speak = h('input', { type: 'checkbox', class: 'grant-speak', 'aria-label': `Allow ${p.name} to speak` });
      speak.addEventListener('change', () => this.signaling.send({ type: 'grant', peer: p.id, speak: speak.checked }));
      const share = h('input', { type: 'checkbox', class: 'grant-share', 'aria-label': `Allow ${p.name} to share` });
      share.addEventListener('change', () => this.signaling.send({ type: 'grant', peer: p.id, share: share.checked }));
      const mute = h('button', { type: 'button', class: 'small', 'aria-label': `Mute ${p.name}` }, 'Mute');
      mute.addEventListener('click', () => {
        this.signaling.send({ type: 'mute', peer: p.id, kind: 'all' });
        toast(`Asked ${p.name}'s browser to turn off microphone and camera.`);
      });
      const remove = h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove ${p.name}` }, 'Remove');
      remove.addEventListener('click', async () => {
        const reason = await ask({ title: `Remove ${p.name}?`, text: 'They are disconnected and cannot come back this session unless you readmit them (under "Removed").', ok: 'Remove', field: 'Reason (shown to them)' });
        if (reason === null) return;
        const msg = { type: 'remove', peer: p.id };
        if (reason) msg.reason = reason;
        this.signaling.send(msg);
      });
      row.append(h('span', { class: 'actions' },
        h('label', { class: 'grant' }, speak, 'Speak'),
        h('label', { class: 'grant' }, share, 'Share'),
        mute, remove));
    }
    return row;
  }

  renderRow(id) {
    const row = this.rows.get(id);
    if (!row || !this.me) return;
    const self = id === this.me.id;
    const p = self ? { ...this.me, connected: this.status === 'connected', media: this.media.state() } : this.peers.get(id);
    if (!p) return;
    const ind = self ? this.selfIndicator() : this.indicator(p);
    const dot = row.querySelector('.dot');
    dot.dataset.state = ind.state;
    dot.setAttribute('aria-label', ind.text);
    dot.title = ind.text;
    row.querySelector('.name').textContent = `${p.name}${self ? ' (you)' : ''}`;
    const badges = [];
    if (p.hand_raised) badges.push(h('span', { class: 'badge hand', role: 'img', 'aria-label': 'Hand raised', title: 'Hand raised' }, 'Hand up'));
    if (p.media.screen) badges.push(h('span', { class: 'badge' }, 'Screen'));
    if (p.media.camera) badges.push(h('span', { class: 'badge' }, 'Camera'));
    if (p.media.mic) badges.push(h('span', { class: 'badge' }, 'Mic'));
    badges.push(h('span', { class: 'sr-only' }, `, ${ind.text}`));
    row.querySelector('.badges').replaceChildren(...badges);
    row.classList.toggle('raised', !!p.hand_raised);
    const speak = row.querySelector('.grant-speak');
    if (speak) speak.checked = !!p.permissions.speak;
    const share = row.querySelector('.grant-share');
    if (share) share.checked = !!p.permissions.share;
  }

  /** A person's connection indicator: signaling presence plus the media link, when there is one. */
  indicator(p) {
    if (!p.connected) return { state: 'offline', text: 'Reconnecting' };
    if (!this.hasMediaLink(p)) return { state: 'online', text: 'Online' };
    // Through the SFU a student's own link to it is its link to the teacher; a teacher sees what
    // each student reports about its link.
    const l = this.linkOf(this.me.role === 'teacher' ? p.id : this.linkPeerOf(p.id));
    if (!l) return { state: 'wait', text: 'Connecting media' };
    return describeLink(l);
  }

  selfIndicator() {
    if (this.status !== 'connected') return { state: 'offline', text: 'Reconnecting' };
    if (this.me.role === 'student') {
      const t = this.stageTeacher();
      if (t && this.hasMediaLink(t)) {
        const l = this.linkOf(this.linkPeerOf(t.id));
        if (l) return describeLink(l);
      }
    }
    return { state: 'online', text: 'Connected' };
  }

  renderSelfIndicator() {
    if (!this.entered || !this.me) return;
    this.renderRow(this.me.id);
    const el = $('conn');
    if (this.status !== 'connected') return;
    const ind = this.selfIndicator();
    el.dataset.state = ind.state;
    el.textContent = ind.text === 'Connected' ? 'Connected' : `Connected · ${ind.text}`;
  }

  renderConnectivity() {
    if (!this.me || this.me.role !== 'teacher') return;
    const body = $('conn-rows');
    const students = [...this.peers.values()].filter((p) => p.role === 'student');
    if (students.length === 0) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: '5' }, 'No students yet.')));
      return;
    }
    body.replaceChildren(...students.map((p) => {
      const l = p.connected ? this.linkOf(p.id) : null;
      const path = !p.connected ? 'Offline' : l ? PATH_LABEL[l.path] || l.path : 'Connecting';
      const pathCell = h('td', { 'data-path': l ? l.path : 'none' }, path);
      if (l && l.reason) pathCell.append(h('div', { class: 'why' }, l.reason));
      return h('tr', { 'data-peer': p.id },
        h('th', { scope: 'row' }, p.name),
        pathCell,
        h('td', {}, l && l.bitrate_kbps != null ? `${Math.round(l.bitrate_kbps)} kbps` : '–'),
        h('td', {}, l && l.loss != null ? `${(l.loss * 100).toFixed(1)} %` : '–'),
        h('td', {}, l && l.rtt_ms != null ? `${Math.round(l.rtt_ms)} ms` : '–'));
    }));
  }

  addChat(entry) {
    if (this.chatIds.has(entry.id)) return;
    this.chatIds.add(entry.id);
    const mine = this.me && entry.from === this.me.id;
    const sender = mine ? this.me : this.peers.get(entry.from);
    const li = h('li', { class: mine ? 'mine' : '' },
      h('span', { class: 'who' }, entry.name),
      sender && sender.role === 'teacher' ? roleBadge() : null,
      h('time', { datetime: new Date(entry.time).toISOString() }, formatTime(entry.time)),
      h('p', {}, entry.text));
    const log = $('chat-log');
    log.append(li);
    while (log.children.length > 300) log.firstChild.remove();
    log.scrollTop = log.scrollHeight;
  }

  addNote(text) {
    const log = $('chat-log');
    log.append(h('li', { class: 'note' }, text));
    log.scrollTop = log.scrollHeight;
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

/** The teacher badge, drawn from the server's `role` (never from a name). */
function roleBadge() {
  return h('span', { class: 'role-badge', 'data-role': 'teacher', role: 'img', 'aria-label': 'Teacher', title: 'Teacher' },
    h('span', { 'aria-hidden': 'true' }, 'Teacher'));
}

function describeLink(l) {
  const label = PATH_LABEL[l.path] || l.path;
  const state = l.path === 'direct' ? 'good' : l.path.startsWith('relay') ? 'relay' : l.path === 'failed' ? 'bad' : l.path === 'sfu' ? 'good' : 'wait';
  let text = `Media: ${label}`;
  if (l.rtt_ms != null && state !== 'bad') text += `, ${Math.round(l.rtt_ms)} ms`;
  if (l.reason && state === 'bad') text += ` (${l.reason})`;
  return { state, text };
}

function setVideo(video, track, label) {
  const current = video.srcObject && video.srcObject.getTracks()[0];
  if (track && current !== track) {
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => {});
  } else if (!track && video.srcObject) {
    video.srcObject = null;
  }
  video.hidden = !track;
  video.setAttribute('aria-label', label);
}

/** The class's media mode now ("p2p" when the server does not say: an older server). */
function mediaMode(cls) {
  return cls && cls.media === 'sfu' ? 'sfu' : 'p2p';
}

function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

// ---------------------------------------------------------------------------------------------
// Boot

function boot() {
  if (!browserSupported()) {
    fatal('This browser is not supported', 'Aula needs a current browser with WebRTC (Firefox, Chrome, Edge or Safari).');
    return;
  }
  const token = tokenFromHash(window.location.hash);
  if (token) joinPage(token);
  else startPage();
  window.addEventListener('hashchange', () => window.location.reload());
}

boot();
