// @ts-check
// Camera, microphone and speaker: a preview with a microphone level meter and a picker for each
// device, on the join form and in the room's Devices dialog. The choice is kept in this browser
// (`aula.devices` in localStorage: device ids, nothing personal); local media (media.js) starts
// with it, and in the room a live camera or microphone switches at once (the transports replace
// the track they send without renegotiating). The speaker choice uses `setSinkId` where the
// browser has it (Chromium); elsewhere the picker is not shown.

import { $, h, toast } from './dom.js';
import { explain, supportsDevices } from '../media.js';
import { chosenDevices, choose, openDevice } from '../device-prefs.js';

/** @typedef {import('../device-prefs.js').DeviceKind} DeviceKind */

/** Whether this browser can send audio to a chosen output (`setSinkId`). */
export function supportsSpeakerChoice() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * Plays every <audio> of the page (and those added later) on the chosen speaker.
 */
export function followSpeakerChoice() {
  if (!supportsSpeakerChoice()) return;
  const apply = (/** @type {Element} */ el) => {
    const id = chosenDevices().speaker || '';
    const media = /** @type {HTMLMediaElement & {sinkId?: string, setSinkId?: (id: string) => Promise<void>}} */ (el);
    if (media.setSinkId && media.sinkId !== id) media.setSinkId(id).catch(() => {});
  };
  document.querySelectorAll('audio').forEach(apply);
  new MutationObserver((records) => {
    for (const r of records) {
      r.addedNodes.forEach((n) => {
        if (n instanceof HTMLAudioElement) apply(n);
        else if (n instanceof Element) n.querySelectorAll('audio').forEach(apply);
      });
    }
  }).observe(document.body, { childList: true, subtree: true });
  window.addEventListener('aula:speaker', () => document.querySelectorAll('audio').forEach(apply));
}

/**
 * A device check: preview video, microphone level meter and the pickers, built into `host`.
 * `start()` asks for the camera and microphone, `stop()` lets them go.
 */
export class DevicePanel {
  /**
   * @param {HTMLElement} host
   * @param {{prefix: string, onChange?: (kind: DeviceKind, id: string) => void}} opts
   */
  constructor(host, { prefix, onChange }) {
    this.onChange = onChange || (() => {});
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {AudioContext | null} */
    this.audio = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.meterTimer = undefined;
    this.starting = false;
    const id = (/** @type {string} */ s) => `${prefix}-${s}`;
    this.video = h('video', { id: id('preview'), class: 'device-preview', autoplay: true, playsinline: true, muted: true, 'aria-label': 'Your camera preview' });
    this.video.muted = true;
    this.meter = h('meter', { id: id('level'), class: 'level', min: '0', max: '1', low: '0.05', high: '0.8', optimum: '0.3', value: '0' });
    this.status = h('p', { class: 'hint', id: id('status'), role: 'status' });
    /** @type {Record<DeviceKind, HTMLSelectElement>} */
    this.selects = {
      camera: h('select', { id: id('camera') }),
      mic: h('select', { id: id('mic') }),
      speaker: h('select', { id: id('speaker') }),
    };
    for (const kind of /** @type {DeviceKind[]} */ (['camera', 'mic', 'speaker'])) {
      this.selects[kind].addEventListener('change', () => this.picked(kind));
    }
    this.speakerField = h('div', { class: 'stack' },
      h('label', { for: id('speaker') }, 'Speaker'), this.selects.speaker);
    this.speakerField.hidden = !supportsSpeakerChoice();
    host.replaceChildren(
      h('div', { class: 'device-check' },
        this.video,
        h('div', { class: 'stack' },
          h('label', { for: id('level') }, 'Microphone level'), this.meter,
          h('label', { for: id('camera') }, 'Camera'), this.selects.camera,
          h('label', { for: id('mic') }, 'Microphone'), this.selects.mic,
          this.speakerField)),
      this.status);
    this.fill([]);
  }

  /** Asks for the chosen camera and microphone and shows them. */
  async start() {
    if (this.stream || this.starting) return;
    if (!supportsDevices()) {
      this.status.textContent = window.isSecureContext
        ? 'This browser cannot use a camera or microphone.'
        : 'Camera and microphone need a secure (https) connection to this server.';
      return;
    }
    this.starting = true;
    this.status.textContent = 'Asking for your camera and microphone…';
    try {
      // Each device on its own: without a camera (or with it busy) the microphone is still
      // worth checking.
      const [cam, mic] = await Promise.allSettled([openDevice('camera'), openDevice('mic')]);
      if (cam.status === 'rejected' && mic.status === 'rejected') throw mic.reason;
      const stream = new MediaStream([cam, mic].flatMap((r) => (r.status === 'fulfilled' ? r.value.getTracks() : [])));
      this.stream = stream;
      this.video.srcObject = new MediaStream(stream.getVideoTracks());
      this.video.hidden = !stream.getVideoTracks().length;
      this.video.play().catch(() => {});
      this.listen(stream);
      this.status.textContent = stream.getVideoTracks().length
        ? 'Speak: the bar moves when your microphone hears you.'
        : 'No camera found. Speak: the bar moves when your microphone hears you.';
    } catch (err) {
      this.status.textContent = explain(err, 'camera and microphone');
    } finally {
      this.starting = false;
    }
    await this.refresh();
  }

  /** Lets the devices go (the room asks for them again when you turn them on). */
  stop() {
    clearInterval(this.meterTimer);
    this.meterTimer = undefined;
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
    this.meter.value = 0;
  }

  /**
   * The microphone's loudness, ten times a second, on the meter.
   * @param {MediaStream} stream
   */
  listen(stream) {
    const track = stream.getAudioTracks()[0];
    if (!track) return;
    const ctx = new AudioContext();
    this.audio = ctx;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const buf = new Float32Array(analyser.fftSize);
    ctx.resume().catch(() => {});
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      const rms = Math.sqrt(sum / buf.length);
      // Speech sits around 0.01–0.3 RMS: a square root spreads it over the bar.
      this.meter.value = Math.min(1, Math.sqrt(rms) * 1.5);
      this.meter.dataset.peak = String(Math.max(Number(this.meter.dataset.peak || 0), rms));
    }, 100);
  }

  /** Lists the devices (their names are known once the browser allowed them). */
  async refresh() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const list = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    this.fill(list);
  }

  /**
   * @param {MediaDeviceInfo[]} list
   */
  fill(list) {
    const chosen = chosenDevices();
    /** @type {Record<DeviceKind, MediaDeviceKind>} */
    const kinds = { camera: 'videoinput', mic: 'audioinput', speaker: 'audiooutput' };
    const live = this.stream ? this.stream.getTracks().map((t) => t.getSettings().deviceId) : [];
    for (const kind of /** @type {DeviceKind[]} */ (['camera', 'mic', 'speaker'])) {
      const sel = this.selects[kind];
      const devices = list.filter((d) => d.kind === kinds[kind] && d.deviceId && d.deviceId !== 'default' && d.deviceId !== 'communications');
      const options = [h('option', { value: '' }, 'System default')];
      devices.forEach((d, i) => options.push(h('option', { value: d.deviceId }, d.label || `${kind === 'camera' ? 'Camera' : kind === 'mic' ? 'Microphone' : 'Speaker'} ${i + 1}`)));
      sel.replaceChildren(...options);
      const want = chosen[kind] || (kind !== 'speaker' ? live.find((id) => devices.some((d) => d.deviceId === id && d.kind === kinds[kind])) : '') || '';
      sel.value = devices.some((d) => d.deviceId === want) ? want : '';
    }
  }

  /**
   * A picker changed: remember it, restart the preview with it, and tell the owner.
   * @param {DeviceKind} kind
   */
  async picked(kind) {
    const id = this.selects[kind].value;
    choose(kind, id);
    if (kind === 'speaker') {
      window.dispatchEvent(new Event('aula:speaker'));
    } else if (this.stream) {
      this.stop();
      await this.start();
    }
    this.onChange(kind, id);
  }
}

/**
 * The room's Devices dialog: the same check, and a live camera or microphone switches at once.
 * @param {import('../room.js').Room} room
 */
export function wireDevicesDialog(room) {
  const dlg = $('devices-dialog');
  const panel = new DevicePanel($('devices-panel'), {
    prefix: 'room-dev',
    onChange: async (kind) => {
      if (kind === 'speaker') return;
      try {
        await room.media.switchDevice(kind);
      } catch (err) {
        toast(err instanceof Error ? err.message : String(err), 'error');
      }
    },
  });
  $('btn-devices').addEventListener('click', () => {
    dlg.showModal();
    panel.start();
  });
  dlg.addEventListener('close', () => panel.stop());
}
