// @ts-check
// The classroom's buttons: microphone, camera, screen share, hand, fullscreen, sound, lock, end,
// leave — wired once on entering, and redrawn from our rights and what we publish.

import { $, ask, toast } from './dom.js';
import { supportsScreenShare } from '../media.js';
import { rightsNote, shareBlockedText } from '../messages.js';

/** @typedef {import('../room.js').Room} Room */
/** @typedef {import('../protocol.js').Slot} Slot */

/**
 * Wires every control button of the room (once).
 * @param {Room} room
 */
export function wireControls(room) {
  $('btn-mic').addEventListener('click', () => toggle(room, 'mic'));
  $('btn-camera').addEventListener('click', () => toggle(room, 'camera'));
  $('btn-share').addEventListener('click', () => toggle(room, 'screen'));
  $('btn-hand').addEventListener('click', () => {
    room.signaling.send({ type: 'hand', raised: !(room.state.me && room.state.me.hand_raised) });
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
    document.querySelectorAll('audio.remote-audio').forEach((a) => /** @type {HTMLAudioElement} */ (a).play().catch(() => {}));
    $('btn-sound').hidden = true;
  });
  $('btn-lock').addEventListener('click', () => {
    room.signaling.send({ type: 'lock', locked: !(room.state.cls && room.state.cls.locked) });
  });
  $('btn-end').addEventListener('click', async () => {
    const ok = await ask({
      title: 'End the lesson for everyone?',
      text: 'Everyone leaves the class now. Students who open the link see "This lesson has ended" until you start the class again; the class and its links stay.',
      ok: 'End class',
    });
    if (ok) room.signaling.send({ type: 'end' });
  });
  $('btn-leave').addEventListener('click', async () => {
    const teacher = room.state.me && room.state.me.role === 'teacher';
    const ok = await ask({
      title: 'Leave the class?',
      text: teacher ? 'The lesson goes on without you; you can rejoin with your link.' : 'You can rejoin with the same link.',
      ok: 'Leave',
    });
    if (ok) room.leave();
  });
}

/**
 * Starts or stops publishing a slot; a failure is explained in words.
 * @param {Room} room
 * @param {'mic' | 'camera' | 'screen'} slot
 */
async function toggle(room, slot) {
  if (room.media.tracks[slot]) {
    room.media.stop(slot);
    return;
  }
  const btn = { mic: 'btn-mic', camera: 'btn-camera', screen: 'btn-share' }[slot];
  $(btn).disabled = true;
  try {
    await room.media.start(slot);
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    toast(text, 'error');
    $('perm-note').textContent = text;
  } finally {
    $(btn).disabled = false;
  }
}

/**
 * Shows the buttons our rights allow, in the state of what we publish, and the note under them.
 * @param {Room} room
 */
export function renderControls(room) {
  const me = room.state.me;
  if (!me || !room.entered) return;
  const p = me.permissions;
  const st = room.media.state();
  const mic = $('btn-mic');
  mic.hidden = !p.speak;
  // Toggles keep one name (what the visible text says) and tell their state with aria-pressed,
  // drawn as a filled button with a check mark (style.css).
  mic.setAttribute('aria-pressed', String(st.mic));
  mic.title = st.mic ? 'Your microphone is on: press to turn it off (M)' : 'Turn your microphone on (M)';
  const cam = $('btn-camera');
  cam.hidden = !p.camera;
  cam.setAttribute('aria-pressed', String(st.camera));
  cam.title = st.camera ? 'Your camera is on: press to turn it off (V)' : 'Turn your camera on (V)';
  const share = $('btn-share');
  share.hidden = !p.screen || !supportsScreenShare();
  share.textContent = st.screen ? 'Stop sharing' : 'Share screen';
  share.classList.toggle('active', st.screen);
  const hand = $('btn-hand');
  hand.setAttribute('aria-pressed', String(!!me.hand_raised));
  hand.title = me.hand_raised ? 'Your hand is up: press to lower it (H)' : 'Raise your hand (H)';
  const notes = [];
  if (me.role === 'student') {
    const note = rightsNote(p);
    if (note) notes.push(note);
  }
  // Over plain http from another computer the browser gives no screen, camera or microphone at
  // all: say so to everyone (a student may be allowed to share later), not only to sharers.
  const blocked = shareBlockedText(window.isSecureContext, supportsScreenShare());
  if (blocked && (p.screen || p.camera || !window.isSecureContext)) notes.push(blocked);
  if (room.forceRelay) notes.push(`Relay forced (?relay=${room.relayTransport || 'force'}): media goes through the server.`);
  $('perm-note').textContent = notes.join(' ');
}
