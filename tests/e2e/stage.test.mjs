// The stage, in real headless Chromium at 1366×768 and 390×844: whoever presents fills the stage
// for the teacher and every classmate, labelled with her name, while her own page shows a small
// labelled preview; a teacher on camera without sharing is the students' main picture; camera
// tiles sit in a gallery beside the stage and never cover the shared screen on a phone; the self
// view is mirrored and labelled "You"; a pin puts any picture on one's own stage; the speaking
// indicator outlines whoever is heard. In an `sfu` class, and in an `auto` class of 3 students
// that moves to the SFU when a student is allowed to share.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

/** The stage as drawn: its label, the main video's rendered and decoded size, frames shown. */
async function stageInfo(page) {
  return page.evaluate(() => {
    const v = /** @type {HTMLVideoElement} */ (document.getElementById('stage-screen'));
    const label = document.getElementById('stage-label');
    const q = v.getVideoPlaybackQuality();
    return {
      label: label.hidden ? '' : document.getElementById('stage-label-text').textContent,
      aria: v.getAttribute('aria-label'),
      hidden: v.hidden,
      clientWidth: v.clientWidth,
      videoWidth: v.videoWidth,
      frames: q.totalVideoFrames,
      main: window.aula.stage && window.aula.stage.main,
    };
  });
}

/**
 * Waits until `page`'s stage shows `label` as a decoding picture (videoWidth > 0, frames rising)
 * and returns what it measured.
 */
async function waitForStage(page, label, timeoutMs = 20_000) {
  let seen = null;
  const first = await H.eventually(async () => {
    const s = await stageInfo(page);
    seen = s;
    return s.label === label && !s.hidden && s.videoWidth > 0 ? s : null;
  }, { what: `"${label}" on the stage`, timeoutMs }).catch((e) => {
    throw new Error(`${e.message}; the stage shows ${JSON.stringify(seen)}`);
  });
  const later = await H.eventually(async () => {
    const s = await stageInfo(page);
    return s.label === label && s.frames > first.frames + 3 ? s : null;
  }, { what: `"${label}" decoding frames on the stage`, timeoutMs: 10_000 });
  return later;
}

/** Grants a right (`speak`, `camera`, `screen`) from the teacher's roster. */
async function grant(teacher, name, right) {
  await H.setRights(teacher.page, name, { [right]: true });
}

/** Turns a student's own button on once it appears. */
async function press(client, name) {
  const btn = client.page.getByRole('button', { name });
  await btn.waitFor({ state: 'visible', timeout: 10_000 });
  await btn.click();
}

/** Rectangles of the main video and of every tile, in page coordinates. */
async function rects(page) {
  return page.evaluate(() => {
    const r = (el) => {
      const b = el.getBoundingClientRect();
      return { left: b.left, top: b.top, right: b.right, bottom: b.bottom, key: el.dataset ? el.dataset.key : undefined };
    };
    return {
      stage: r(document.getElementById('stage-screen')),
      tiles: [...document.querySelectorAll('#tiles figure')].map(r),
    };
  });
}


/**
 * Audio bytes `page` has received on the track it plays as `peerId`'s screen sound (0 while it
 * plays none, or plays it muted or paused).
 */
async function screenSoundFrom(page, peerId) {
  return page.evaluate(async (id) => {
    const el = document.querySelector(`audio[data-screen-audio="${CSS.escape(id)}"]`);
    if (!el || !el.srcObject || el.muted || el.paused) return 0;
    const ids = new Set(el.srcObject.getAudioTracks().filter((t) => t.readyState === 'live' && t.enabled).map((t) => t.id));
    let bytes = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((st) => {
        if (st.type === 'inbound-rtp' && st.kind === 'audio' && ids.has(st.trackIdentifier)) bytes += st.bytesReceived || 0;
      });
    }
    return bytes;
  }, peerId);
}

/** The teacher shares her screen with its sound (Chromium's fake capture has a sound track). */
async function teacherSharesWithSound(teacher, students) {
  await press(teacher, 'Share screen');
  await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
  assert.equal(await teacher.page.evaluate(() => window.aula.publishing.screenAudio), true, 'the capture has a sound track');
  const id = await teacher.page.evaluate(() => window.aula.me.id);
  for (const c of students) {
    const first = await H.eventually(async () => {
      const b = await screenSoundFrom(c.page, id);
      return b > 0 ? b : null;
    }, { what: `${c.name} playing the teacher's screen sound`, timeoutMs: 20_000 });
    const more = await H.eventually(async () => {
      const b = await screenSoundFrom(c.page, id);
      return b > first + 2000 ? b : null;
    }, { what: `${c.name} receiving more of the teacher's screen sound`, timeoutMs: 10_000 });
    console.log(`${c.name} received ${more} bytes of the teacher's screen sound`);
  }
}

const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

/**
 * Ana presents in a class where the teacher and two classmates watch at 1366×768: her screen
 * fills every stage, labelled with her name; her own page shows her preview.
 */
async function anaPresents({ teacher, ana, others, shot }) {
  await grant(teacher, 'Ana', 'screen');
  await press(ana, 'Share screen');
  await ana.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
  for (const viewer of [teacher, ...others]) {
    const s = await waitForStage(viewer.page, "Ana's screen");
    assert.ok(s.clientWidth >= 640, `${viewer.name}: the stage video is ${s.clientWidth} px wide (≥ 640)`);
    assert.ok(s.videoWidth > 0, `${viewer.name} decodes it`);
    assert.match(s.aria, /Ana's screen/);
    assert.equal(await viewer.page.locator('#tiles figure[data-slot="screen"]').count(), 0, `${viewer.name}: not also a tile`);
    console.log(`${viewer.name}: Ana's screen on the stage, ${s.clientWidth} px wide, ${s.videoWidth} px decoded`);
  }
  // Her own page: "You are presenting" with a small, labelled preview of her share.
  await ana.page.locator('#stage-empty-text', { hasText: 'You are presenting your screen' }).waitFor();
  const preview = ana.page.locator('#self-preview');
  await preview.waitFor({ state: 'visible' });
  assert.match(await preview.innerText(), /Preview/);
  await H.eventually(() => ana.page.locator('#self-screen').evaluate((v) => v.videoWidth > 0), { what: "Ana's preview playing" });
  const small = await ana.page.locator('#self-screen').evaluate((v) => v.clientWidth);
  assert.ok(small > 0 && small <= 340, `the preview is small (${small} px)`);
  assert.doesNotMatch(await ana.page.locator('#stage').innerText(), /not sharing/i);
  await H.screenshot(teacher.page, `stage-${shot}-teacher`);
  await H.screenshot(others[0].page, `stage-${shot}-classmate`);
  await H.screenshot(ana.page, `stage-${shot}-presenter`);
  await H.axeCheck(teacher.page, `stage-${shot}-teacher`);
  await H.axeCheck(others[0].page, `stage-${shot}-classmate`);
  await H.axeCheck(ana.page, `stage-${shot}-presenter`);
}

describe('stage: an sfu class', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let ben;
  let cleo;
  let dan;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Stage', { topology: 'sfu' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', viewport: LAPTOP });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', viewport: LAPTOP, initScript: H.RECORD_PCS });
    cleo = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Cleo', viewport: LAPTOP });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('(a) a student allowed to share presents: her screen fills the stage for everyone, labelled', async () => {
    // Before: nobody presents, and the teacher's stage says what to do, not "not sharing".
    const empty = await teacher.page.locator('#stage-empty-text').innerText();
    assert.match(empty, /Nobody is presenting/);
    await anaPresents({ teacher, ana, others: [ben, cleo], shot: 'sfu' });
    // Her tab's sound goes with her screen right (she may not speak): Ben hears it through the SFU.
    const anaId = await ana.page.evaluate(() => window.aula.me.id);
    assert.equal(await ana.page.evaluate(() => window.aula.publishing.screenAudio), true);
    const bytes = await H.eventually(async () => {
      const b = await screenSoundFrom(ben.page, anaId);
      return b > 2000 ? b : null;
    }, { what: "Ben playing Ana's screen sound", timeoutMs: 20_000 });
    console.log(`Ben received ${bytes} bytes of Ana's screen sound`);
  });

  it('(c) at 390×844 the camera tiles never cover the shared screen', async () => {
    dan = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Dan', viewport: PHONE, initScript: H.RECORD_PCS, colorScheme: 'dark' });
    await press(teacher, /^Camera/);
    await grant(teacher, 'Ben', 'camera');
    await press(ben, /^Camera/);
    await waitForStage(dan.page, "Ana's screen");
    await H.eventually(async () => (await dan.page.locator('#tiles figure').count()) >= 2, { what: "two camera tiles on Dan's page" });
    await H.eventually(() => dan.page.locator('#tiles figure video').evaluateAll((vs) => vs.every((v) => v.videoWidth > 0)), { what: 'the tiles playing', timeoutMs: 20_000 })
      .catch(async (e) => {
        const tiles = await dan.page.evaluate(() => [...document.querySelectorAll('#tiles figure')].map((f) => [f.dataset.key, f.querySelector('video').videoWidth]));
        throw new Error(`${e.message}: ${JSON.stringify(tiles)}`);
      });
    const { stage, tiles } = await rects(dan.page);
    assert.ok(stage.right - stage.left > 300, `the shared screen spans the phone (${stage.right - stage.left} px)`);
    for (const t of tiles) assert.ok(!overlaps(stage, t), `tile ${t.key} ${JSON.stringify(t)} overlaps the shared screen ${JSON.stringify(stage)}`);
    const overflow = await dan.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow} px)`);
    await H.screenshot(dan.page, 'stage-phone-shared-screen');
    await H.axeCheck(dan.page, 'stage-phone-shared-screen');
  });

  it('(b) the teacher on camera without sharing is the main picture for students', async () => {
    await press(ana, 'Stop sharing');
    for (const viewer of [ana, ben, cleo]) {
      const s = await waitForStage(viewer.page, "Ms Rivera's camera");
      assert.ok(s.clientWidth >= 640, `${viewer.name}: the teacher's camera is ${s.clientWidth} px wide (≥ 640)`);
    }
    await waitForStage(dan.page, "Ms Rivera's camera");
    // The teacher's own stage says what the class sees.
    await teacher.page.locator('#stage-empty-text', { hasText: 'The class sees your camera' }).waitFor();
    await H.screenshot(cleo.page, 'stage-teacher-camera-student');
    await H.screenshot(dan.page, 'stage-teacher-camera-phone');
    await H.screenshot(teacher.page, 'stage-teacher-camera-teacher');
    await H.axeCheck(cleo.page, 'stage-teacher-camera-student');
    await H.axeCheck(teacher.page, 'stage-teacher-camera-teacher');
  });

  it('(d) the self view is mirrored and labelled "You"', async () => {
    const benId = await ben.page.evaluate(() => window.aula.me.id);
    const tile = ben.page.locator(`#tiles figure[data-key="${benId}:camera"]`);
    await tile.waitFor();
    assert.match(await tile.locator('.tile-name').innerText(), /^You$/);
    const transform = await tile.locator('video').evaluate((v) => getComputedStyle(v).transform);
    assert.equal(transform, 'matrix(-1, 0, 0, 1, 0, 0)', 'mirrored');
    // Nobody else's camera is mirrored.
    const others = await ben.page.locator(`#tiles figure:not([data-key="${benId}:camera"]) video, #stage-screen`)
      .evaluateAll((vs) => vs.map((v) => getComputedStyle(v).transform));
    assert.ok(others.every((t) => t === 'none'), `others not mirrored: ${others}`);
  });

  it('(e) a pin puts a picture on one\'s own stage only, and unpinning gives it back', async () => {
    const tile = cleo.page.locator('#tiles figure', { hasText: "Ben's camera" });
    await tile.getByRole('button', { name: "Pin Ben's camera" }).click();
    const s = await waitForStage(cleo.page, "Ben's camera");
    assert.ok(s.clientWidth >= 640);
    assert.equal((await cleo.page.evaluate(() => window.aula.stage)).pinned.endsWith(':camera'), true);
    // The teacher's camera, no longer on the stage, is a tile now; others' stages are unchanged.
    await cleo.page.locator('#tiles figure', { hasText: "Ms Rivera's camera" }).waitFor();
    assert.equal((await stageInfo(ana.page)).label, "Ms Rivera's camera");
    await H.screenshot(cleo.page, 'stage-pinned');
    await H.axeCheck(cleo.page, 'stage-pinned');
    await cleo.page.getByRole('button', { name: 'Unpin' }).click();
    await waitForStage(cleo.page, "Ms Rivera's camera");
  });

  it('the teacher puts Ben in the spotlight for everyone, and ends it', async () => {
    assert.equal(await cleo.page.getByRole('button', { name: /^Spotlight/ }).count(), 0, 'students have no Spotlight button');
    await teacher.page.getByRole('button', { name: 'Spotlight Ben' }).click();
    for (const viewer of [ana, cleo, dan, teacher]) {
      const st = await waitForStage(viewer.page, "Ben's camera");
      await viewer.page.locator('#stage-spotlight').waitFor();
      if (viewer.page.viewportSize().width === LAPTOP.width) assert.ok(st.clientWidth >= 640, `${viewer.name}: ${st.clientWidth} px`);
    }
    // Ben's own page is as before: the teacher's camera, his own mirrored view in the gallery.
    assert.equal((await stageInfo(ben.page)).label, "Ms Rivera's camera");
    await H.screenshot(ana.page, 'stage-spotlight-student');
    await H.screenshot(teacher.page, 'stage-spotlight-teacher');
    await H.axeCheck(teacher.page, 'stage-spotlight-teacher');
    await teacher.page.getByRole('button', { name: 'End spotlight' }).click();
    for (const viewer of [ana, cleo]) await waitForStage(viewer.page, "Ms Rivera's camera");
    assert.equal(await ana.page.locator('#stage-spotlight').isHidden(), true);
  });

  it('the speaking indicator outlines whoever is heard', async () => {
    const teacherId = await teacher.page.evaluate(() => window.aula.me.id);
    await press(teacher, /^Microphone/);
    // Chromium's fake microphone beeps: the teacher is drawn as speaking now and then.
    await H.eventually(() => cleo.page.evaluate((id) => window.aula.speaking.includes(id)
      && document.getElementById('stage-label').classList.contains('speaking'), teacherId), { what: 'the teacher outlined as speaking on Cleo\'s stage', timeoutMs: 15_000, everyMs: 50 });
    await H.eventually(() => teacher.page.evaluate((id) => window.aula.speaking.includes(id), teacherId), { what: 'the teacher sees herself speaking', timeoutMs: 15_000, everyMs: 50 });
    // Nothing about it is announced: no live region holds it.
    assert.equal(await cleo.page.locator('[aria-live] .speaking, .speaking[aria-live]').count(), 0);
  });

  it('the teacher shares a tab with its sound: students hear it through the SFU', async () => {
    await teacherSharesWithSound(teacher, [ben, dan]);
    await waitForStage(ben.page, "Ms Rivera's screen");
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, ben, cleo, dan]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});

describe('stage: a direct (p2p) class', () => {
  let server;
  let browser;
  let teacher;
  let ana;
  let ben;
  let cleo;

  before(async () => {
    server = await H.startServer();
    const cls = await H.createClass(server, 'Direct', { topology: 'p2p' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP, initScript: H.RECORD_PCS });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', viewport: LAPTOP, initScript: H.RECORD_PCS });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', viewport: LAPTOP });
    cleo = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Cleo', viewport: LAPTOP });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('(a) Ana presents on direct links: her screen fills the stage for the teacher and both classmates', async () => {
    await anaPresents({ teacher, ana, others: [ben, cleo], shot: 'p2p' });
    for (const c of [teacher, ana, ben, cleo]) assert.equal(await c.page.evaluate(() => window.aula.media), 'p2p', `${c.name} still on direct links`);
    await press(ana, 'Stop sharing');
    for (const c of [teacher, ben, cleo]) await H.eventually(() => c.page.locator('#stage-screen').isHidden(), { what: `Ana's screen gone from ${c.name}'s stage` });
  });

  it('the teacher shares a tab with its sound: the student sees it on the stage and hears it', async () => {
    assert.equal(await ana.page.evaluate(() => window.aula.media), 'p2p');
    await teacherSharesWithSound(teacher, [ana]);
    const s = await waitForStage(ana.page, "Ms Rivera's screen");
    assert.ok(s.clientWidth >= 640);
    // The teacher's own stage: "You are presenting" and a small preview, not her screen again.
    await teacher.page.locator('#stage-empty-text', { hasText: 'You are presenting your screen' }).waitFor();
    assert.equal(await teacher.page.locator('#stage-screen').isHidden(), true, 'no hall of mirrors');
    await H.screenshot(teacher.page, 'stage-p2p-teacher-presenting');
  });

  it('stopping the share stops its sound', async () => {
    const id = await teacher.page.evaluate(() => window.aula.me.id);
    await press(teacher, 'Stop sharing');
    await H.eventually(async () => (await screenSoundFrom(ana.page, id)) === 0, { what: "the teacher's screen sound silent on Ana's page" });
    assert.equal(await teacher.page.evaluate(() => window.aula.publishing.screenAudio), false);
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, ben, cleo]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});

describe('stage: an auto class of 3 students, moved to the SFU by a grant', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;
  let teacher;
  let ana;
  let ben;
  let cleo;

  before(async () => {
    server = await H.startServer();
    const cls = await H.createClass(server, 'Small group', { topology: 'auto' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', viewport: LAPTOP });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', viewport: LAPTOP });
    cleo = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Cleo', viewport: LAPTOP });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('(a) Ana presents: her screen fills the stage for the teacher and both classmates', async () => {
    for (const c of [teacher, ana, ben, cleo]) assert.equal(await c.page.evaluate(() => window.aula.media), 'p2p', `${c.name} starts on direct links`);
    await anaPresents({ teacher, ana, others: [ben, cleo], shot: 'auto' });
    for (const c of [teacher, ana, ben, cleo]) assert.equal(await c.page.evaluate(() => window.aula.media), 'sfu', `${c.name} on the SFU`);
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, ben, cleo]) assert.deepEqual(H.unexpectedErrors(c.errors), [], `console errors on ${c.name}'s page`);
  });
});
