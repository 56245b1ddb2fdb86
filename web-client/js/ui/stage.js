// @ts-check
// The stage and what plays: the main picture (stage-plan.js decides: a pinned picture, else
// whoever presents a screen, else a teacher's camera) with a label saying whose it is, the small
// preview of our own screen while we present, the gallery of cameras under the stage (ours
// mirrored and labelled "You") with a Pin button each, the text over an empty stage, and the
// remote microphones (each heard only while the server says that person may be heard).

import { $, h, log, setVideo } from './dom.js';
import { mayBe } from '../state.js';
import { supportsScreenShare } from '../media.js';
import { planStage, maySend } from '../stage-plan.js';
import { startSpeakingIndicator, draw as drawSpeaking } from './speaking.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../stage-plan.js').Picture} Picture */
/** @typedef {import('../stage-plan.js').StagePlan} StagePlan */

/** The picture this page pinned to its stage ("<peer>:<slot>"), only for itself. */
let pinned = /** @type {string | null} */ (null);
/** @type {StagePlan | null} the stage as last drawn */
let plan = null;

/**
 * Pins a picture to our stage (null: unpin); only this page's view changes.
 * @param {Room} room
 * @param {string | null} key
 */
export function pin(room, key) {
  pinned = key;
  renderStage(room);
}

/** What the stage shows now (for the test hooks): main picture, gallery and pin. */
export function stageView() {
  if (!plan) return null;
  const brief = (/** @type {Picture | null} */ x) => (x ? { key: x.key, peer: x.peer, slot: x.slot, label: x.label, self: x.self } : null);
  return { main: brief(plan.main), presenting: !!plan.presenting, pinned: plan.pinned ? pinned : null, spotlit: plan.spotlit, tiles: plan.tiles.map(brief) };
}

/**
 * Puts the right tracks on the stage and the gallery: a pinned picture, else whoever presents a
 * screen, else a teacher's camera fills the stage; our own screen is a small preview.
 * @param {Room} room
 */
export function renderStage(room) {
  const st = room.state;
  if (!st.me) return;
  const me = st.me;
  plan = planStage({
    me, peers: st.peers.values(), remote: st.remote,
    local: { screen: room.media.tracks.screen, camera: room.media.tracks.camera }, pin: pinned,
    spotlight: (st.cls && st.cls.spotlight) || null,
  });
  if (pinned && !plan.pinned) pinned = null; // the pinned picture is gone
  const { main, presenting } = plan;
  room.floorOnStage = main && main.slot === 'screen' && main.role === 'student' ? main.peer : null;
  const screen = $('stage-screen');
  setVideo(screen, main && main.track, main ? main.label : 'Shared screen');
  // Our own camera is shown mirrored, as in a mirror; anything else as it is.
  screen.classList.toggle('mirror', !!(main && main.self));
  const label = $('stage-label');
  const spot = st.cls && st.cls.spotlight;
  label.hidden = !main && !(me.role === 'teacher' && spot);
  $('stage-label-text').textContent = main ? main.label : '';
  label.dataset.peer = main ? main.peer : '';
  $('stage-unpin').hidden = !plan.pinned;
  $('stage-spotlight').hidden = !plan.spotlit;
  // A teacher ends the spotlight from here (the spotlit picture is on her stage, not a tile).
  $('stage-spotlight-end').hidden = !(me.role === 'teacher' && spot);
  const preview = $('self-screen');
  setVideo(preview, presenting && presenting.track, 'Preview of your shared screen');
  $('self-preview').hidden = !presenting;
  if (main && !main.self && me.role !== 'teacher' && !room.timings.firstFrame) watchFirstFrame(room, screen);
  renderStageMessage(room);
  renderTiles(room, plan);
}

/**
 * The text over the stage while there is no picture: why, in words; or that we are presenting.
 * @param {Room} room
 */
export function renderStageMessage(room) {
  const st = room.state;
  const me = /** @type {NonNullable<Room['state']['me']>} */ (st.me);
  const screen = $('stage-screen');
  const empty = $('stage-empty');
  const text = $('stage-empty-text');
  const main = plan && plan.main;
  const hasTrack = !screen.hidden;
  const hasPicture = hasTrack && screen.videoWidth > 0;
  empty.hidden = hasPicture;
  empty.classList.toggle('over', hasTrack);
  if (hasPicture) return;
  if (plan && plan.presenting) {
    text.textContent = 'You are presenting your screen to the class.';
    return;
  }
  if (main) {
    const l = st.linkOf(st.linkPeerOf(main.peer, room.transport));
    text.textContent = l && l.path === 'failed'
      ? `${main.label} cannot reach you: ${l.reason || 'no network path worked'}.`
      : `Connecting to ${main.label}…`;
    return;
  }
  if (me.role === 'teacher') {
    const cam = !!room.media.tracks.camera;
    // Without getDisplayMedia (plain http from another computer, or a phone) there is no Share
    // button to press: the note under the buttons says why.
    if (!supportsScreenShare()) {
      text.textContent = cam ? 'The class sees your camera. Screen sharing is not available here (see the note under the buttons).'
        : 'Nobody is presenting. Screen sharing is not available here (see the note under the buttons).';
    } else {
      text.textContent = cam ? 'The class sees your camera. Press “Share screen” to present your screen instead.'
        : 'Nobody is presenting. Press “Share screen” to show your screen to the class.';
    }
    return;
  }
  const t = st.stageTeacher();
  if (!t) {
    text.textContent = 'Waiting for the teacher to join…';
  } else if (!t.media.screen && !t.media.camera) {
    text.textContent = 'Nobody is presenting right now.';
  } else {
    const l = st.linkOf(st.linkPeerOf(t.id, room.transport));
    text.textContent = l && l.path === 'failed'
      ? `${t.name}'s ${t.media.screen ? 'screen' : 'camera'} cannot reach you: ${l.reason || 'no network path worked'}.`
      : `Connecting to ${t.name}'s ${t.media.screen ? 'screen' : 'camera'}…`;
  }
}

/**
 * Notes when the stage first shows a decoded frame (`window.aula.timings.firstFrame`).
 * @param {Room} room
 * @param {HTMLVideoElement} video
 */
function watchFirstFrame(room, video) {
  if (room.watchingFirstFrame) return;
  room.watchingFirstFrame = true;
  const done = () => {
    if (room.timings.firstFrame || video.videoWidth === 0) return;
    room.timings.firstFrame = performance.now();
    log(`first frame ${Math.round(room.timings.firstFrame - room.timings.joinClicked)} ms after join`);
  };
  video.addEventListener('loadeddata', done, { once: true });
  video.addEventListener('resize', done);
}

/**
 * The gallery under the stage: every camera that is on (ours mirrored, labelled "You") and any
 * screen that is not on the stage, each with a Pin button. It sits beside the stage, never over it.
 * @param {Room} room
 * @param {StagePlan} p
 */
function renderTiles(room, p) {
  const tiles = $('tiles');
  const teacher = !!room.state.me && room.state.me.role === 'teacher';
  const spot = (room.state.cls && room.state.cls.spotlight) || null;
  const keep = new Set(p.tiles.map((w) => w.key));
  tiles.querySelectorAll('figure').forEach((/** @type {HTMLElement} */ f) => {
    if (!keep.has(f.dataset.key || '')) f.remove();
  });
  p.tiles.forEach((w, i) => {
    /** @type {HTMLElement | null} */
    let fig = tiles.querySelector(`figure[data-key="${CSS.escape(w.key)}"]`);
    if (!fig) {
      const ownScreen = w.self && w.slot === 'screen';
      fig = /** @type {HTMLElement} */ (h('figure', { class: 'tile', 'data-key': w.key, 'data-peer': w.peer, 'data-slot': w.slot },
        h('video', { autoplay: true, playsInline: true, muted: true, class: w.self && w.slot === 'camera' ? 'mirror' : null }),
        h('figcaption', {}, h('span', { class: 'tile-name' }, w.caption),
          // Our own screen cannot fill our stage (it would show itself): no Pin.
          ownScreen ? null : h('button', {
            type: 'button', class: 'small pin', 'aria-pressed': 'false',
            onclick: () => pin(room, pinned === w.key ? null : w.key),
          }, 'Pin', h('span', { class: 'sr-only' }, ` ${w.label}`)),
          // A teacher may put anyone else in the spotlight for the whole class.
          teacher && !w.self ? h('button', {
            type: 'button', class: 'small pin spotlight', 'aria-pressed': 'false',
            onclick: () => room.signaling.send({ type: 'spotlight', peer: w.peer }),
          }, 'Spotlight', h('span', { class: 'sr-only' }, ` ${w.name}`)) : null)));
    }
    if (tiles.children[i] !== fig) tiles.insertBefore(fig, tiles.children[i] || null);
    setVideo(/** @type {HTMLVideoElement} */ (fig.querySelector('video')), w.track, w.label);
  });
  tiles.hidden = p.tiles.length === 0;
  tiles.querySelectorAll('button.pin').forEach((/** @type {Element} */ b) => {
    const fig = /** @type {HTMLElement} */ (b.closest('figure'));
    const on = b.classList.contains('spotlight') ? spot === fig.dataset.peer : pinned === fig.dataset.key;
    b.setAttribute('aria-pressed', String(on));
  });
  drawSpeaking(room);
}

/**
 * Wires the stage's own buttons (once, on entering the room).
 * @param {Room} room
 */
export function wireStage(room) {
  $('stage-unpin').addEventListener('click', () => pin(room, null));
  $('stage-spotlight-end').addEventListener('click', () => room.signaling.send({ type: 'spotlight' }));
  for (const ev of ['resize', 'loadeddata', 'emptied']) $('stage-screen').addEventListener(ev, () => renderStageMessage(room));
  startSpeakingIndicator(room);
}

/**
 * The <audio> that plays a peer's microphone (`data-peer`) or a peer's screen sound
 * (`data-screen-audio`: a shared tab's audio).
 * @param {string} peer
 * @param {'mic' | 'screenAudio'} slot
 * @returns {HTMLAudioElement | null}
 */
function audioOf(peer, slot) {
  const attr = slot === 'mic' ? 'data-peer' : 'data-screen-audio';
  return document.querySelector(`audio[${attr}="${CSS.escape(peer)}"]`);
}

/**
 * Plays a peer's microphone or screen sound in its own <audio> (removed when the track is gone).
 * @param {Room} room
 * @param {string} peer
 * @param {MediaStreamTrack | null} track
 * @param {'mic' | 'screenAudio'} [slot]
 */
export function attachAudio(room, peer, track, slot = 'mic') {
  let el = audioOf(peer, slot);
  if (!track) {
    if (el) el.remove();
    return;
  }
  if (!el) {
    const attr = slot === 'mic' ? 'data-peer' : 'data-screen-audio';
    el = /** @type {HTMLAudioElement} */ (h('audio', { class: 'remote-audio', [attr]: peer, autoplay: true }));
    $('room').append(el);
  }
  el.srcObject = new MediaStream([track]);
  gateAudio(room, peer);
}

/**
 * Plays a peer's microphone only while the server says it may be heard (a teacher, or a student
 * holding `speak`), and a peer's screen sound only while that peer may share a screen and does:
 * in a direct class the sender's browser is all that stops a student without the right, and a
 * modified one does not, so the receiving end holds the line too.
 * @param {Room} room
 * @param {string} peerId
 */
export function gateAudio(room, peerId) {
  const peer = room.state.peers.get(peerId);
  gate(audioOf(peerId, 'mic'), mayBe(peer, 'speak'));
  gate(audioOf(peerId, 'screenAudio'), !!peer && !!peer.media.screen && maySend(peer, 'screen'));
}

/**
 * @param {HTMLAudioElement | null} el
 * @param {boolean} audible
 */
function gate(el, audible) {
  if (!el || !el.srcObject) return;
  for (const t of /** @type {MediaStream} */ (el.srcObject).getAudioTracks()) t.enabled = audible;
  el.muted = !audible;
  if (!audible) {
    el.pause();
    return;
  }
  el.play().catch(() => {
    $('btn-sound').hidden = false;
  });
}

/**
 * Removes every remote <audio> (the transport that fed them is gone).
 */
export function dropRemoteAudio() {
  document.querySelectorAll('audio.remote-audio').forEach((a) => a.remove());
}
