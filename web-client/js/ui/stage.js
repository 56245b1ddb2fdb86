// @ts-check
// The stage and what plays: the big screen video, the teacher's camera, our own camera, the tiles
// of students' cameras and screens, the text over an empty stage, and the remote microphones (each
// heard only while the server says that person may be heard).

import { $, h, log, setVideo } from './dom.js';
import { mayBe } from '../state.js';
import { supportsScreenShare } from '../media.js';

/** @typedef {import('../room.js').Room} Room */

/**
 * Puts the right tracks on the stage and the tiles.
 * @param {Room} room
 */
export function renderStage(room) {
  const st = room.state;
  if (!st.me) return;
  const screen = $('stage-screen');
  const cam = $('stage-camera');
  const self = $('self-camera');
  /** @type {MediaStreamTrack | null | undefined} */
  let screenTrack = null;
  /** @type {MediaStreamTrack | null | undefined} */
  let camTrack = null;
  let label = 'Shared screen';
  const other = st.stageTeacher();
  /** @type {import('../protocol.js').PeerInfo | null} a student whose screen is on the stage */
  let floor = null;
  if (st.me.role === 'teacher' && (room.media.tracks.screen || !(other && other.media.screen))) {
    screenTrack = room.media.tracks.screen;
    label = 'Your shared screen';
  } else {
    // A student's stage, or a teacher's while another teacher shares.
    const t = other;
    const r = t && st.remote.get(t.id);
    if (t && r) {
      if (t.media.screen) screenTrack = r.screen || null;
      if (t.media.camera) camTrack = r.camera || null;
      label = `${t.name}'s screen`;
    }
    // No teacher's screen: a student with the floor who shares takes the stage (students'
    // screens reach everyone through the SFU).
    floor = st.me.role === 'student' && !screenTrack ? st.stageStudent() : null;
    if (floor) {
      screenTrack = (st.remote.get(floor.id) || {}).screen;
      label = `${floor.name}'s screen`;
    }
  }
  room.floorOnStage = floor ? floor.id : null;
  setVideo(screen, screenTrack, label);
  setVideo(cam, camTrack, 'Teacher camera');
  setVideo(self, room.media.tracks.camera, 'Your camera');
  if (screenTrack && !room.timings.firstFrame && st.me.role !== 'teacher') watchFirstFrame(room, screen);
  renderStageMessage(room);
  renderTiles(room);
}

/**
 * The text over the stage while there is no picture: why, in words.
 * @param {Room} room
 */
export function renderStageMessage(room) {
  const st = room.state;
  const me = /** @type {NonNullable<Room['state']['me']>} */ (st.me);
  const screen = $('stage-screen');
  const empty = $('stage-empty');
  const hasTrack = !screen.hidden;
  const hasPicture = hasTrack && screen.videoWidth > 0;
  empty.hidden = hasPicture;
  empty.classList.toggle('over', hasTrack);
  if (hasPicture) return;
  const t = me.role === 'teacher' ? null : st.stageTeacher();
  if (me.role === 'teacher') {
    // Without getDisplayMedia (plain http from another computer, or a phone) there is no Share
    // button to press: the note under the buttons says why.
    empty.textContent = hasTrack ? 'Starting your screen share…'
      : supportsScreenShare() ? 'You are not sharing your screen. Press “Share screen” to show it to the class.'
        : 'You are not sharing your screen: screen sharing is not available here (see the note under the buttons).';
  } else if (!t) {
    empty.textContent = 'Waiting for the teacher to join…';
  } else if (!t.media.screen) {
    empty.textContent = 'The teacher is not sharing a screen right now.';
  } else {
    const l = st.linkOf(st.linkPeerOf(t.id, room.transport));
    empty.textContent = l && l.path === 'failed'
      ? `The teacher's screen cannot reach you: ${l.reason || 'no network path worked'}.`
      : 'Connecting to the teacher\'s screen…';
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
 * Students' cameras and screens, when they share: on the teacher's view, and, through the SFU
 * (which forwards a student with the floor to everyone), on every student's view too.
 * @param {Room} room
 */
function renderTiles(room) {
  const st = room.state;
  const me = /** @type {NonNullable<Room['state']['me']>} */ (st.me);
  const tiles = $('tiles');
  const want = [];
  if (me.role === 'teacher' || (room.transport && room.transport.kind === 'sfu')) {
    for (const p of st.peers.values()) {
      // A student's picture only with the right to share, whatever its browser sends.
      if (p.role !== 'student' || !mayBe(p, 'share')) continue;
      const onStage = room.floorOnStage === p.id;
      const r = st.remote.get(p.id) || {};
      if (p.media.screen && r.screen && !onStage) want.push({ key: `${p.id}:screen`, track: r.screen, label: `${p.name}'s screen` });
      if (p.media.camera && r.camera) want.push({ key: `${p.id}:camera`, track: r.camera, label: `${p.name}'s camera` });
    }
  }
  const keep = new Set(want.map((w) => w.key));
  tiles.querySelectorAll('figure').forEach((/** @type {HTMLElement} */ f) => {
    if (!keep.has(f.dataset.key || '')) f.remove();
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

/**
 * Plays a peer's microphone track in its own <audio> (removed when the track is gone).
 * @param {Room} room
 * @param {string} peer
 * @param {MediaStreamTrack | null} track
 */
export function attachAudio(room, peer, track) {
  /** @type {HTMLAudioElement | null} */
  let el = document.querySelector(`audio[data-peer="${CSS.escape(peer)}"]`);
  if (!track) {
    if (el) el.remove();
    return;
  }
  if (!el) {
    el = /** @type {HTMLAudioElement} */ (h('audio', { class: 'remote-audio', 'data-peer': peer, autoplay: true }));
    $('room').append(el);
  }
  el.srcObject = new MediaStream([track]);
  gateAudio(room, peer);
}

/**
 * Plays a peer's microphone only while the server says it may be heard (a teacher, or a student
 * holding `speak`): in a direct class the sender's browser is all that stops a student without
 * the right, and a modified one does not, so the receiving end holds the line too.
 * @param {Room} room
 * @param {string} peerId
 */
export function gateAudio(room, peerId) {
  /** @type {HTMLAudioElement | null} */
  const el = document.querySelector(`audio[data-peer="${CSS.escape(peerId)}"]`);
  if (!el || !el.srcObject) return;
  const audible = mayBe(room.state.peers.get(peerId), 'speak');
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
