// Unit tests of what the stage shows (web-client/js/stage-plan.js): pure, no browser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { planStage, maySend, pictureLabel } from '../../web-client/js/stage-plan.js';

const media = (m = {}) => ({ mic: false, camera: false, screen: false, ...m });
function peer(id, role, extra = {}) {
  return { id, name: id, role, hand_raised: false, permissions: { speak: false, camera: false, screen: false }, media: media(), connected: true, ...extra };
}
const track = (id) => ({ id });
const teacherMe = { id: 'T', name: 'T', role: 'teacher' };
const studentMe = { id: 'Me', name: 'Me', role: 'student' };
const none = { screen: null, camera: null };

describe('planStage', () => {
  it('a student presenting fills the stage for the teacher, labelled with her name', () => {
    const sam = peer('Sam', 'student', { permissions: { speak: false, camera: true, screen: true }, media: media({ screen: true }) });
    const p = planStage({ me: teacherMe, peers: [sam], remote: new Map([['Sam', { screen: track('s') }]]), local: none });
    assert.equal(p.main.key, 'Sam:screen');
    assert.equal(p.main.label, "Sam's screen");
    assert.deepEqual(p.tiles, []);
  });

  it('a student without the right is not shown, whatever her browser sends', () => {
    const sam = peer('Sam', 'student', { media: media({ screen: true, camera: true }) });
    const p = planStage({ me: teacherMe, peers: [sam], remote: new Map([['Sam', { screen: track('s'), camera: track('c') }]]), local: none });
    assert.equal(p.main, null);
    assert.deepEqual(p.tiles, []);
  });

  it('the split rights: camera without screen shows the camera only', () => {
    const sam = peer('Sam', 'student', { permissions: { speak: false, camera: true, screen: false }, media: media({ screen: true, camera: true }) });
    assert.equal(maySend(sam, 'camera'), true);
    assert.equal(maySend(sam, 'screen'), false);
    const p = planStage({ me: teacherMe, peers: [sam], remote: new Map([['Sam', { screen: track('s'), camera: track('c') }]]), local: none });
    assert.equal(p.main, null);
    assert.deepEqual(p.tiles.map((x) => x.key), ['Sam:camera']);
  });

  it('our own screen is a preview, never the main picture; the presenter sees "presenting"', () => {
    const p = planStage({ me: teacherMe, peers: [], remote: new Map(), local: { screen: track('mine'), camera: track('cam') }, pin: 'T:screen' });
    assert.equal(p.main, null);
    assert.equal(p.presenting.key, 'T:screen');
    assert.equal(p.pinned, false);
    assert.deepEqual(p.tiles.map((x) => x.label), ['You']);
  });

  it("someone else's screen takes the stage from ours; ours becomes a tile", () => {
    const t = peer('Teach', 'teacher', { media: media({ screen: true }) });
    const p = planStage({ me: studentMe, peers: [t], remote: new Map([['Teach', { screen: track('ts') }]]), local: { screen: track('mine'), camera: null } });
    assert.equal(p.main.key, 'Teach:screen');
    assert.equal(p.presenting, null);
    assert.deepEqual(p.tiles.map((x) => x.label), ['Your screen']);
  });

  it("a teacher on camera without sharing is the students' main picture", () => {
    const t = peer('Teach', 'teacher', { media: media({ camera: true }) });
    const p = planStage({ me: studentMe, peers: [t], remote: new Map([['Teach', { camera: track('tc') }]]), local: { screen: null, camera: track('me') } });
    assert.equal(p.main.key, 'Teach:camera');
    assert.equal(p.main.label, "Teach's camera");
    assert.deepEqual(p.tiles.map((x) => [x.key, x.self, x.caption]), [['Me:camera', true, 'You']]);
  });

  it('a teacher screen beats a student screen; cameras go to the gallery in order', () => {
    const t = peer('Teach', 'teacher', { media: media({ screen: true, camera: true }) });
    const a = peer('Ana', 'student', { permissions: { speak: true, camera: true, screen: true }, media: media({ screen: true, camera: true }) });
    const b = peer('Ben', 'student', { permissions: { speak: true, camera: true, screen: true }, media: media({ camera: true }) });
    const remote = new Map([['Teach', { screen: track(1), camera: track(2) }], ['Ana', { screen: track(3), camera: track(4) }], ['Ben', { camera: track(5) }]]);
    const p = planStage({ me: studentMe, peers: [b, a, t], remote, local: { screen: null, camera: track(6) } });
    assert.equal(p.main.key, 'Teach:screen');
    assert.deepEqual(p.tiles.map((x) => x.key), ['Teach:camera', 'Me:camera', 'Ana:screen', 'Ana:camera', 'Ben:camera']);
    assert.deepEqual(p.tiles.map((x) => x.caption), ['Teach', 'You', "Ana's screen", 'Ana', 'Ben']);
  });

  it('a pin wins over the presenter, for this page only; a pin that is gone falls back', () => {
    const t = peer('Teach', 'teacher', { media: media({ screen: true }) });
    const b = peer('Ben', 'student', { permissions: { speak: true, camera: true, screen: true }, media: media({ camera: true }) });
    const remote = new Map([['Teach', { screen: track(1) }], ['Ben', { camera: track(5) }]]);
    const p = planStage({ me: studentMe, peers: [t, b], remote, local: none, pin: 'Ben:camera' });
    assert.equal(p.main.key, 'Ben:camera');
    assert.equal(p.pinned, true);
    assert.deepEqual(p.tiles.map((x) => x.key), ['Teach:screen']);
    const gone = planStage({ me: studentMe, peers: [t], remote, local: none, pin: 'Ben:camera' });
    assert.equal(gone.main.key, 'Teach:screen');
    assert.equal(gone.pinned, false);
  });

  it("the spotlight puts that person's screen, else camera, on every other stage; a pin still wins", () => {
    const t = peer('Teach', 'teacher', { media: media({ screen: true }) });
    const b = peer('Ben', 'student', { permissions: { speak: true, camera: true, screen: true }, media: media({ camera: true }) });
    const a = peer('Ana', 'student', { permissions: { speak: true, camera: true, screen: true }, media: media({ camera: true }) });
    const remote = new Map([['Teach', { screen: track(1) }], ['Ben', { camera: track(5) }], ['Ana', { camera: track(6) }]]);
    const p = planStage({ me: studentMe, peers: [t, b, a], remote, local: none, spotlight: 'Ben' });
    assert.equal(p.main.key, 'Ben:camera');
    assert.equal(p.spotlit, true);
    const pinnedAna = planStage({ me: studentMe, peers: [t, b, a], remote, local: none, spotlight: 'Ben', pin: 'Ana:camera' });
    assert.equal(pinnedAna.main.key, 'Ana:camera');
    assert.equal(pinnedAna.spotlit, false);
    // Ben himself sees the class as usual; a spotlight on someone without a picture changes nothing.
    const ben = planStage({ me: { id: 'Ben', name: 'Ben', role: 'student' }, peers: [t, a], remote, local: { screen: null, camera: track(5) }, spotlight: 'Ben' });
    assert.equal(ben.main.key, 'Teach:screen');
    const nobody = planStage({ me: studentMe, peers: [t], remote, local: none, spotlight: 'Gone' });
    assert.equal(nobody.main.key, 'Teach:screen');
    assert.equal(nobody.spotlit, false);
  });

  it('labels', () => {
    assert.equal(pictureLabel('Sam', 'screen', false), "Sam's screen");
    assert.equal(pictureLabel('Sam', 'camera', true), 'You');
    assert.equal(pictureLabel('Sam', 'screen', true), 'Your screen');
  });
});
