// device-prefs.js: the devices chosen in this browser and the constraints that ask for them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chosenDevices, choose, constraintsFor } from '../../web-client/js/device-prefs.js';

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
}

test('a choice is kept per kind, and the default forgets it', () => {
  const s = memoryStorage();
  assert.deepEqual(chosenDevices(s), {});
  choose('mic', 'mic-2', s);
  choose('camera', 'cam-1', s);
  assert.deepEqual(chosenDevices(s), { mic: 'mic-2', camera: 'cam-1' });
  choose('mic', '', s);
  assert.deepEqual(chosenDevices(s), { camera: 'cam-1' });
});

test('garbage in storage reads as no choice', () => {
  const s = memoryStorage();
  s.setItem('aula.devices', '{not json');
  assert.deepEqual(chosenDevices(s), {});
});

test('constraints ask for the chosen device exactly, or the default', () => {
  const s = memoryStorage();
  assert.equal(constraintsFor('mic', { storage: s }).audio.deviceId, undefined);
  choose('mic', 'mic-2', s);
  choose('camera', 'cam-1', s);
  assert.deepEqual(constraintsFor('mic', { storage: s }).audio.deviceId, { exact: 'mic-2' });
  assert.equal(constraintsFor('mic', { storage: s }).audio.echoCancellation, true);
  assert.deepEqual(constraintsFor('camera', { storage: s }).video.deviceId, { exact: 'cam-1' });
  assert.equal(constraintsFor('camera', { storage: s, chosen: false }).video.deviceId, undefined);
});
