// @ts-check
// Local media: what this browser publishes (screen, camera, microphone), with failures turned
// into messages a person understands.

import { openDevice } from './device-prefs.js';

/** @typedef {import('./protocol.js').Slot} Slot */

/** A failure to start local media, with a message a person understands. */
export class MediaError extends Error {}

/**
 * Explains a getUserMedia / getDisplayMedia failure.
 * @param {any} err
 * @param {string} what "screen", "camera", "microphone"
 * @returns {string}
 */
export function explain(err, what) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return what === 'screen'
      ? 'Screen sharing was not allowed (you cancelled it, or the browser blocked it).'
      : `Permission to use your ${what} was denied. Allow it in the browser's site settings and try again.`;
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return `No ${what} was found on this device.`;
  if (name === 'NotReadableError' || name === 'AbortError') return `Your ${what} is in use by another application or could not be started.`;
  if (name === 'TypeError' || name === 'NotSupportedError') return `This browser cannot share your ${what}.`;
  return `Could not start your ${what}${err && err.message ? `: ${err.message}` : '.'}`;
}

export function supportsScreenShare() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
}

export function supportsDevices() {
  return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/** What this page publishes; emits "change" {slot, track|null} when a slot starts or stops. */
export class LocalMedia extends EventTarget {
  constructor() {
    super();
    /** @type {{screen: MediaStreamTrack | null, camera: MediaStreamTrack | null, mic: MediaStreamTrack | null, screenAudio: MediaStreamTrack | null}} */
    this.tracks = { screen: null, camera: null, mic: null, screenAudio: null };
  }

  /** What we publish, as the `media` message says it (the screen's sound goes with the screen). */
  state() {
    return { mic: !!this.tracks.mic, camera: !!this.tracks.camera, screen: !!this.tracks.screen };
  }

  /**
   * Starts a slot (asks for the screen, camera or microphone); throws a MediaError.
   * @param {Slot} slot
   * @returns {Promise<MediaStreamTrack>}
   */
  async start(slot) {
    if (this.tracks[slot]) return this.tracks[slot];
    if (slot === 'screenAudio') throw new MediaError('The screen\'s sound starts with the screen.');
    let track;
    /** @type {MediaStreamTrack | null} the sound of a shared tab (or of the whole screen, where the system offers it) */
    let sound = null;
    try {
      if (slot === 'screen') {
        if (!supportsScreenShare()) throw new MediaError('This browser cannot share the screen (phones and tablets usually cannot).');
        // audio: the browser offers to share a tab's sound (a video with sound) along with it.
        const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: true });
        track = stream.getVideoTracks()[0];
        sound = stream.getAudioTracks()[0] || null;
        if ('contentHint' in track) track.contentHint = 'detail';
      } else {
        if (!supportsDevices()) {
          throw new MediaError(window.isSecureContext
            ? 'This browser cannot use a camera or microphone.'
            : 'Camera and microphone need a secure (https) connection to this server.');
        }
        // The camera or microphone chosen on the join form or in the Devices dialog.
        const stream = await openDevice(slot);
        track = slot === 'camera' ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
      }
    } catch (err) {
      if (err instanceof MediaError) throw err;
      throw new MediaError(explain(err, slot === 'mic' ? 'microphone' : slot));
    }
    // The browser's own "Stop sharing" bar, or an unplugged device, ends the track.
    track.addEventListener('ended', () => {
      if (this.tracks[slot] === track) this.stop(slot);
    });
    this.tracks[slot] = track;
    this.emit(slot, track);
    if (sound) {
      const s = sound;
      s.addEventListener('ended', () => {
        if (this.tracks.screenAudio === s) this.stop('screenAudio');
      });
      this.tracks.screenAudio = s;
      this.emit('screenAudio', s);
    }
    return track;
  }

  /**
   * Switches a live camera or microphone to the device now chosen (device-prefs.js): the new
   * track takes the old one's place ("change": the transports replace the track they send,
   * without renegotiating). Nothing happens when the slot is off; throws a MediaError.
   * @param {'camera' | 'mic'} slot
   */
  async switchDevice(slot) {
    const old = this.tracks[slot];
    if (!old) return;
    let track;
    try {
      const stream = await openDevice(slot);
      track = slot === 'camera' ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
    } catch (err) {
      throw new MediaError(explain(err, slot === 'mic' ? 'microphone' : slot));
    }
    if (this.tracks[slot] !== old) {
      track.stop(); // turned off (or switched again) meanwhile
      return;
    }
    track.addEventListener('ended', () => {
      if (this.tracks[slot] === track) this.stop(slot);
    });
    this.tracks[slot] = track;
    this.emit(slot, track);
    old.stop();
  }

  /**
   * @param {Slot} slot
   */
  stop(slot) {
    const track = this.tracks[slot];
    if (slot === 'screen') this.stop('screenAudio'); // the screen's sound goes with it
    if (!track) return;
    this.tracks[slot] = null;
    track.stop();
    this.emit(slot, null);
  }

  stopAll() {
    for (const slot of /** @type {Slot[]} */ (Object.keys(this.tracks))) this.stop(slot);
  }

  /**
   * @param {Slot} slot
   * @param {MediaStreamTrack | null} track
   */
  emit(slot, track) {
    this.dispatchEvent(new CustomEvent('change', { detail: { slot, track } }));
  }
}
