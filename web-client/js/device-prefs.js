// @ts-check
// The camera, microphone and speaker chosen in this browser (`aula.devices` in localStorage:
// device ids, nothing personal), and the getUserMedia constraints that ask for them.

/** @typedef {'camera' | 'mic' | 'speaker'} DeviceKind */

const STORE_KEY = 'aula.devices';

/**
 * The devices chosen in this browser, by kind (absent: the system default).
 * @param {Pick<Storage, 'getItem'>} [storage]
 * @returns {{camera?: string, mic?: string, speaker?: string}}
 */
export function chosenDevices(storage = globalThis.localStorage) {
  try {
    const v = JSON.parse(storage.getItem(STORE_KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}

/**
 * Remembers a device choice.
 * @param {DeviceKind} kind
 * @param {string} id '' for the system default
 * @param {Pick<Storage, 'getItem' | 'setItem'>} [storage]
 */
export function choose(kind, id, storage = globalThis.localStorage) {
  const v = chosenDevices(storage);
  if (id) v[kind] = id;
  else delete v[kind];
  try {
    storage.setItem(STORE_KEY, JSON.stringify(v));
  } catch {
    /* storage disabled: the choice lasts this page */
  }
}

/**
 * getUserMedia constraints for a slot: with the chosen device (`exact`), or the default one.
 * @param {'camera' | 'mic'} slot
 * @param {{chosen?: boolean, storage?: Pick<Storage, 'getItem'>}} [opts] chosen: false for the default device
 * @returns {MediaStreamConstraints}
 */
export function constraintsFor(slot, { chosen = true, storage = globalThis.localStorage } = {}) {
  const id = chosen ? chosenDevices(storage)[slot] : undefined;
  const device = id ? { deviceId: { exact: id } } : {};
  if (slot === 'camera') {
    return { video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 }, ...device } };
  }
  return { audio: { echoCancellation: true, noiseSuppression: true, ...device } };
}

/**
 * A stream of the chosen camera or microphone; when that device is gone (unplugged, another
 * computer's id), the default one.
 * @param {'camera' | 'mic'} slot
 * @returns {Promise<MediaStream>}
 */
export async function openDevice(slot) {
  try {
    return await navigator.mediaDevices.getUserMedia(constraintsFor(slot));
  } catch (err) {
    const name = err && /** @type {any} */ (err).name;
    if (!chosenDevices()[slot] || (name !== 'OverconstrainedError' && name !== 'NotFoundError')) throw err;
    return navigator.mediaDevices.getUserMedia(constraintsFor(slot, { chosen: false }));
  }
}
