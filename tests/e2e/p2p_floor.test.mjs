// A student given the floor in a class on direct links, in real headless Chromium: a `p2p` class
// (and an `auto` class on a server without an SFU, which never leaves direct links) of a teacher
// and three students. Granted the microphone, Ana opens a floor link to each classmate and both
// hear her; granted the screen, the teacher and both classmates decode it; revoked, classmates
// stop playing her and the floor links close.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const WIDE = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

/**
 * How `page` plays `peerId`'s microphone: null without an element for it, else whether it is
 * muted or paused, its live enabled tracks, and the audio bytes received on those tracks.
 */
async function heard(page, peerId) {
  return page.evaluate(async (id) => {
    const el = document.querySelector(`audio[data-peer="${CSS.escape(id)}"]`);
    if (!el || !el.srcObject) return null;
    const live = el.srcObject.getAudioTracks().filter((t) => t.readyState === 'live');
    const ids = new Set(live.map((t) => t.id));
    let bytes = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio' && ids.has(s.trackIdentifier)) bytes += s.bytesReceived || 0;
      });
    }
    return { muted: el.muted, paused: el.paused, enabled: live.filter((t) => t.enabled).length, bytes };
  }, peerId);
}

/** Whether `page` plays `peerId`'s microphone: an unmuted, playing element, its track enabled. */
const playing = (a) => !!a && !a.muted && !a.paused && a.enabled > 0;

/**
 * `peerId`'s screen on `page`: frames decoded on the track received for it (inbound-rtp), and
 * whether a visible video element shows it, its decoded width and the widest element's rendered
 * width; null while the page receives no screen from that peer.
 */
async function screenOf(page, peerId) {
  return page.evaluate(async (id) => {
    const trackId = window.aula.remoteTrackId(id, 'screen');
    if (!trackId) return null;
    let frames = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && s.trackIdentifier === trackId) frames += s.framesDecoded || 0;
      });
    }
    const shown = [...document.querySelectorAll('video')].filter((el) => !el.hidden && el.videoWidth > 0 && el.srcObject
      && el.srcObject.getVideoTracks().some((t) => t.id === trackId));
    const widths = shown.map((el) => Math.round(el.getBoundingClientRect().width));
    return { frames, shown: shown.length > 0, videoWidth: shown.length ? shown[0].videoWidth : 0, rendered: Math.max(0, ...widths) };
  }, peerId);
}

/** Whether any visible video element on `page` shows a track received from `peerId`. */
async function showsAnything(page, peerId) {
  return page.evaluate((id) => {
    const ids = ['screen', 'camera'].map((s) => window.aula.remoteTrackId(id, s)).filter(Boolean);
    return [...document.querySelectorAll('video')].some((el) => !el.hidden && el.srcObject
      && el.srcObject.getVideoTracks().some((t) => ids.includes(t.id)));
  }, peerId);
}

/** The peers `page` holds a direct link with. */
async function linkedTo(page) {
  return page.evaluate(() => Object.keys(window.aula.links()));
}

/**
 * The whole scenario on one server.
 * @param {string} label names the screenshots
 * @param {() => Promise<object>} start starts the server
 * @param {string} topology the class's topology
 */
function floorScenario(label, start, topology) {
  let server;
  let browser;
  let teacher;
  let ana;
  let ben;
  let cleo;
  let anaId;
  let cls;

  before(async () => {
    server = await start();
    cls = await H.createClass(server, 'Small group', { topology });
    browser = await H.launchBrowser();
    const open = (token, name, viewport) => H.openClient(browser, H.joinUrl(server, token), { name, viewport, initScript: H.RECORD_PCS });
    teacher = await open(cls.teacher.token, 'Ms Rivera', WIDE);
    ana = await open(cls.student.token, 'Ana', WIDE);
    ben = await open(cls.student.token, 'Ben', WIDE);
    cleo = await open(cls.student.token, 'Cleo', PHONE);
    anaId = await ana.page.evaluate(() => window.aula.me.id);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('without a right, students link only to the teacher', async () => {
    const teacherId = await teacher.page.evaluate(() => window.aula.me.id);
    for (const c of [ana, ben, cleo]) {
      assert.equal(await c.page.evaluate(() => window.aula.media), 'p2p', `${c.name} is on direct links`);
      await H.eventually(async () => JSON.stringify(await linkedTo(c.page)) === JSON.stringify([teacherId]),
        { what: `${c.name} linked to the teacher only` });
    }
  });

  it('connectivity in plain words: a verdict per student, the numbers one click away', async () => {
    for (const name of ['Ana', 'Ben', 'Cleo']) {
      await H.eventually(async () => {
        const r = await H.connectivityRow(teacher.page, name);
        return r.path === 'direct' && /^Good straight between the two computers/.test(r.verdict) ? r : null;
      }, { what: `${name} Good on the teacher's panel`, timeoutMs: 15_000 });
    }
    const numbers = teacher.page.locator('#conn-rows tr', { hasText: 'Ben' }).locator('dl');
    await H.showTab(teacher.page, 'Connectivity');
    assert.equal(await numbers.isVisible(), false, 'the numbers wait behind Details');
    await teacher.page.locator('#conn-rows summary', { hasText: 'Details for Ben' }).click();
    await H.eventually(async () => /Path\s*Direct[\s\S]*Round trip \(RTT\)\s*\d+ ms/.test(await numbers.innerText()),
      { what: "Ben's numbers shown after one click" });
    // A student's pill says the same in one sentence, its numbers behind "Connection details".
    const pill = ben.page.locator('#conn');
    await H.eventually(async () => (await pill.innerText()) === 'Good connection, straight between the two computers',
      { what: "Ben's status pill" });
    await ben.page.getByText('Connection details').click();
    await H.eventually(async () => /Path\s*Direct/.test(await ben.page.locator('#conn-details dl').innerText()),
      { what: "Ben's numbers under his pill" });
    await ben.page.getByText('Connection details').click();
  });

  it('granted the microphone, Ana is heard by both classmates (and the teacher)', async () => {
    await H.setRights(teacher.page, 'Ana', { speak: true });
    const mic = ana.page.getByRole('button', { name: 'Microphone' });
    await mic.waitFor({ state: 'visible', timeout: 10_000 });
    await mic.click();
    await H.eventually(async () => (await mic.getAttribute('aria-pressed')) === 'true', { what: "Ana's microphone on" });
    for (const c of [ben, cleo, teacher]) {
      const first = await H.eventually(async () => {
        const a = await heard(c.page, anaId);
        return playing(a) && a.bytes > 2000 ? a : null;
      }, { what: `${c.name} playing Ana's microphone`, timeoutMs: 20_000 });
      const later = await H.eventually(async () => {
        const a = await heard(c.page, anaId);
        return playing(a) && a.bytes > first.bytes + 2000 ? a : null;
      }, { what: `Ana's audio still arriving at ${c.name}` });
      assert.ok(later.bytes > first.bytes);
    }
    for (const c of [ben, cleo]) {
      assert.ok((await linkedTo(c.page)).includes(anaId), `${c.name} holds a floor link with Ana`);
      assert.equal(await c.page.evaluate(() => window.aula.media), 'p2p', `${c.name} stays on direct links`);
    }
  });

  it('a classmate who joins while Ana may speak hears her too', async () => {
    const dan = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Dan', viewport: WIDE, initScript: H.RECORD_PCS });
    try {
      const a = await H.eventually(async () => {
        const x = await heard(dan.page, anaId);
        return playing(x) && x.bytes > 2000 ? x : null;
      }, { what: "Dan, joining late, playing Ana's microphone", timeoutMs: 20_000 });
      assert.ok(a.bytes > 2000);
      assert.deepEqual(H.unexpectedErrors(dan.errors), [], "console errors on Dan's page");
    } finally {
      await dan.context.close();
    }
  });

  it('granted the screen, the teacher and both classmates decode it', async () => {
    await H.setRights(teacher.page, 'Ana', { screen: true });
    const share = ana.page.getByRole('button', { name: 'Share screen' });
    await share.waitFor({ state: 'visible', timeout: 10_000 });
    await share.click();
    for (const c of [teacher, ben, cleo]) {
      const first = await H.eventually(async () => {
        const s = await screenOf(c.page, anaId);
        return s && s.shown && s.frames > 0 ? s : null;
      }, { what: `${c.name} showing Ana's screen`, timeoutMs: 20_000 });
      const later = await H.eventually(async () => {
        const s = await screenOf(c.page, anaId);
        return s && s.shown && s.frames > first.frames + 5 ? s : null;
      }, { what: `${c.name} decoding more of Ana's screen` });
      console.log(`${label}: ${c.name} decodes Ana's screen, ${later.videoWidth} px wide, shown ${later.rendered} px`);
      // Whoever presents fills the stage: at 1366×768 at least 640 px wide.
      if (c !== cleo) assert.ok(later.rendered >= 640, `${c.name} shows Ana's screen ${later.rendered} px wide (≥ 640)`);
    }
    // The views with the presenting student, the pill's and the panel's details open, in light and dark.
    await ben.page.getByText('Connection details').click();
    await H.showTab(teacher.page, 'Connectivity');
    await teacher.page.locator('#conn-rows summary', { hasText: 'Details for Ana' }).click();
    for (const scheme of ['light', 'dark']) {
      for (const c of [teacher, ben, cleo]) {
        await c.page.emulateMedia({ colorScheme: scheme });
        await H.axeCheck(c.page, `p2p-floor-${label}-${c.name}-${scheme}`);
      }
    }
    for (const c of [teacher, ben, cleo]) await c.page.emulateMedia({ colorScheme: 'light' });
    await ben.page.getByText('Connection details').click();
    await H.screenshot(teacher.page, `p2p-floor-${label}-teacher-1366`);
    await H.screenshot(ben.page, `p2p-floor-${label}-student-1366`);
    await H.screenshot(cleo.page, `p2p-floor-${label}-student-390`);
  });

  it('revoked, classmates stop playing her and the floor links close', async () => {
    await H.setRights(teacher.page, 'Ana', { screen: false });
    await H.setRights(teacher.page, 'Ana', { speak: false });
    for (const c of [ben, cleo]) {
      await H.eventually(async () => !playing(await heard(c.page, anaId)) && !(await showsAnything(c.page, anaId)),
        { what: `${c.name} no longer playing or showing Ana` });
      await H.eventually(async () => !(await linkedTo(c.page)).includes(anaId), { what: `${c.name}'s floor link with Ana closed` });
    }
    await H.eventually(async () => (await linkedTo(ana.page)).length === 1, { what: "Ana's floor links closed" });
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, ben, cleo]) assert.deepEqual(H.unexpectedErrors(c.errors), [], `console errors on ${c.name}'s page`);
  });
}

describe('p2p class: a student given the floor reaches every classmate over floor links', () => {
  floorScenario('p2p', () => H.startServer(), 'p2p');
});

describe('a server without an SFU: an auto class stays direct and the floor still reaches everyone', () => {
  floorScenario('no-sfu', () => H.startServer(H.hasSfu() ? { extraArgs: ['--no-sfu'] } : {}), 'auto');
});

describe('a direct class of 31 students: no floor links, and the teacher is told why', () => {
  let server;
  let browser;
  let teacher;
  let crowd;

  before(async () => {
    server = await H.startServer();
    const cls = await H.createClass(server, 'Assembly', { topology: 'p2p' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: WIDE });
    // 31 scripted students: WebSockets from one page of the server's origin, joined by name.
    crowd = await browser.newPage();
    await crowd.goto(`${server.url}/`);
    await crowd.evaluate(async (token) => {
      window.sockets = await Promise.all(Array.from({ length: 31 }, (_, i) => new Promise((resolve, reject) => {
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token, name: `Pupil ${i + 1}` }));
        ws.onmessage = (e) => { if (JSON.parse(e.data).type === 'welcome') resolve(ws); };
        ws.onerror = reject;
      })));
    }, cls.student.token);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('granting a student a right says only teachers receive her', async () => {
    await teacher.page.locator('#people-count', { hasText: '32' }).waitFor({ timeout: 15_000 });
    await H.setRights(teacher.page, 'Pupil 7', { speak: true });
    await teacher.page.locator('.toast', { hasText: 'Only teachers receive Pupil 7' }).waitFor({ timeout: 10_000 });
    await H.screenshot(teacher.page, 'p2p-floor-31-teacher-1366');
    assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
  });
});
