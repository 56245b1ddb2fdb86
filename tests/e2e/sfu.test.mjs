// The SFU in real headless Chromium: in an `sfu` class the teacher sends the screen once to the
// server's SFU and five students all decode it; an `auto` class switches from direct links to the
// SFU, without a page reload, when it grows past the server's size (--sfu-auto-above).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

/** Page init script: the camera is captured at 640x480 (4:3) instead of the client's 16:9. */
function fourByThreeCamera() {
  const md = navigator.mediaDevices;
  const getUserMedia = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => getUserMedia(c && c.video ? { ...c, video: { width: { exact: 640 }, height: { exact: 480 } } } : c);
}

/** The page's media mode once it matches `want` ("p2p" | "sfu"). */
async function waitMedia(page, want, timeoutMs = 10_000) {
  return H.eventually(async () => (await page.evaluate(() => window.aula.media)) === want, {
    what: `media mode ${want}`, timeoutMs,
  });
}

/** The path the page reports for its media link to `peer` (or its first link), once known. */
async function linkPath(page, peer) {
  return H.eventually(async () => {
    const links = await page.evaluate(() => window.aula.myLinks);
    const l = peer ? links[peer] : Object.values(links)[0];
    return l && l.path !== 'connecting' ? l.path : null;
  }, { what: 'a known media path', timeoutMs: 15_000 });
}

/**
 * The teacher's outgoing copies of the screen: the connections whose senders carry the screen
 * track, and the outbound-rtp video streams (simulcast layers) that carry it.
 */
async function screenCopies(page) {
  return page.evaluate(async () => {
    // The teacher's own screen plays in the small preview of her stage (never on her stage itself).
    const v = document.getElementById('self-screen');
    const screen = v.srcObject && v.srcObject.getVideoTracks()[0];
    const per = await window.aula.outboundVideo();
    const id = screen && screen.id;
    return {
      screenTrack: id,
      // Connections that send any video (an SFU page also has a receive-only connection).
      connections: per.filter((p) => p.senders.length > 0).length,
      senders: per.reduce((n, p) => n + p.senders.filter((t) => t === id).length, 0),
      connectionsSending: per.filter((p) => p.streams.some((s) => s.track === id && s.bytesSent > 0)).length,
      streams: per.flatMap((p) => p.streams.filter((s) => s.track === id).map((s) => ({ pc: p.pc, ...s }))),
    };
  });
}

/** Waits until the screen's outbound bytes have grown, then reports the copies. */
async function sendingScreen(page) {
  const a = await screenCopies(page);
  await H.sleep(1500);
  const b = await screenCopies(page);
  const bytes = (c) => c.streams.reduce((n, s) => n + s.bytesSent, 0);
  assert.ok(bytes(b) > bytes(a), `the screen's outbound bytes grow (${bytes(a)} → ${bytes(b)})`);
  return b;
}

describe('sfu: a teacher and five students in an sfu class', { skip: !H.hasSfu() && 'this aula has no SFU (--sfu-listen)' }, () => {
  let server;
  let browser;
  let cls;
  let teacher;
  const students = [];
  const timings = [];

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Assembly', { topology: 'sfu' });
    assert.equal(cls.topology, 'sfu', 'the API keeps the topology');
    browser = await H.launchBrowser();
    // The teacher's camera is 4:3 (the screen is 16:9), so a student's page shows which is which
    // whatever simulcast layer it receives.
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', initScript: fourByThreeCamera });
    for (const name of ['Ana', 'Ben', 'Carla', 'Dev']) {
      students.push(await H.openClient(browser, H.joinUrl(server, cls.student.token), { name }));
    }
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (timings.length) {
      console.log(`\nSFU (${server && server.sfuAddr()}) — first decoded frame of the shared screen:`);
      for (const t of timings) console.log(`  ${t.who.padEnd(6)} ${t.what.padEnd(22)} ${t.ms} ms`);
    }
  });

  it('everyone uses the SFU transport (class.media is sfu)', async () => {
    for (const c of [teacher, ...students]) {
      await waitMedia(c.page, 'sfu');
      assert.equal(await c.page.evaluate(() => window.aula.classMedia), 'sfu');
    }
  });

  it('the teacher shares the screen; four students in class and a fifth joining during the share decode it', async () => {
    const clicked = Date.now();
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
    for (const s of students) {
      const { last } = await H.waitForFrames(s.page, 30_000);
      assert.ok(last.width > 0 && last.framesDecoded > 0, `${s.name} decodes frames`);
      // Polled one student after the other: an upper bound for all but the first.
      timings.push({ who: s.name, what: 'share click → frame ≤', ms: Date.now() - clicked });
    }
    students.push(await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Eve' }));
    const eve = students[4];
    const { last } = await H.waitForFrames(eve.page, 30_000);
    assert.ok(last.width > 0, 'Eve: videoWidth > 0');
    timings.push({ who: 'Eve', what: 'join → frame (SFU)', ms: Math.round(last.timings.firstFrame - last.timings.joinClicked) });
    for (const s of students) assert.equal(await linkPath(s.page, 'sfu'), 'sfu', `${s.name}'s link goes to the SFU`);
    const widths = await Promise.all(students.map((s) => H.stageVideo(s.page).then((v) => `${s.name} ${v.width}px`)));
    console.log(`stage video size (the SFU forwards the layer it chose): ${widths.join(', ')}`);
  });

  it('the teacher sends ONE copy of the screen (one connection, one sender), not five', async () => {
    const copies = await sendingScreen(teacher.page);
    console.log(`teacher's screen: ${copies.connections} connection(s), ${copies.senders} sender(s), `
      + `layers ${JSON.stringify(copies.streams.map((s) => `${s.rid || '-'}:${s.frameWidth}px:${s.bytesSent}B`))}`);
    assert.equal(copies.connections, 1, 'one RTCPeerConnection sends video (to the SFU)');
    assert.equal(copies.senders, 1, 'one sender carries the screen track');
    assert.equal(copies.connectionsSending, 1, 'one connection sends screen bytes');
    const layers = new Set(copies.streams.map((s) => s.rid || ''));
    assert.ok(copies.streams.length >= 1 && copies.streams.length <= 3, 'one stream, or up to three simulcast layers of it');
    assert.equal(layers.size, copies.streams.length, 'each outbound stream is a distinct layer of the one sender');
  });

  it('the teacher\'s connectivity panel shows every student on the media server', async () => {
    for (const s of students) {
      await H.eventually(async () => {
        const r = await H.connectivityRow(teacher.page, s.name);
        return r.path === 'sfu' && /through the school's media server/.test(r.verdict) && /Media server/.test(r.numbers);
      }, { what: `${s.name} on the media server in the panel`, timeoutMs: 10_000 });
    }
    await H.screenshot(teacher.page, 'teacher-view-sfu');
    await H.screenshot(students[0].page, 'student-view-sfu');
  });

  it('the teacher turns the camera on: it reaches students as the second video slot (simulcast)', async () => {
    await teacher.page.getByRole('button', { name: 'Camera' }).click();
    // Next to her shared screen, the teacher's camera is a tile of the gallery under the stage.
    const cam = students[0].page.locator('#tiles figure', { hasText: "Ms Rivera's camera" }).locator('video');
    await H.eventually(() => cam.evaluate((v) => !v.hidden && v.videoWidth > 0), { what: "the teacher's camera on Ana's stage", timeoutMs: 20_000 });
    const size = await cam.evaluate((v) => `${v.videoWidth}x${v.videoHeight}`);
    const layers = await teacher.page.evaluate(async () => (await window.aula.outboundVideo())[0].streams.map((s) => s.rid));
    console.log(`teacher camera on Ana's stage: ${size}; the teacher's outbound video rids: ${JSON.stringify(layers)}`);
    // The screen is still the screen (slot 0, 16:9), the camera the camera (slot 1, 4:3): each
    // may arrive on any of its simulcast layers, but their shapes tell them apart.
    const [cw, ch] = size.split('x').map(Number);
    assert.equal(cw * 3, ch * 4, `the camera element shows the 4:3 camera (${size})`);
    const screen = await H.stageVideo(students[0].page);
    assert.equal(screen.width * 9, screen.height * 16, `the screen element shows the 16:9 screen (${screen.width}x${screen.height})`);
    assert.ok([1280, 640].includes(screen.width), `a layer of the 1280x720 screen (${screen.width}px)`);
  });

  it('a student with ?relay=force reaches the SFU through the TURN relay', async (t) => {
    if (!(await H.serverHasTurn(server))) {
      t.skip('this server offers no TURN relay');
      return;
    }
    const fay = await H.openClient(browser, H.joinUrl(server, cls.student.token, '?relay=force'), { name: 'Fay' });
    students.push(fay);
    const { last } = await H.waitForFrames(fay.page, 20_000);
    assert.ok(last.width > 0);
    const path = await linkPath(fay.page, 'sfu');
    assert.match(path, /^relay_(udp|tcp|tls)$/);
    timings.push({ who: 'Fay', what: `join → frame (SFU, ${path})`, ms: Math.round(last.timings.firstFrame - last.timings.joinClicked) });
    await H.eventually(async () => {
      const r = await H.connectivityRow(teacher.page, 'Fay');
      return /^relay_/.test(r.path) && /relay server/.test(r.verdict) && /Relay/.test(r.numbers);
    }, { what: 'Fay relayed on the panel' });
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ...students]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});

describe('sfu: a full SFU refuses a subscriber, and the page says so', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('the second student sees a media_unavailable message, and no console error', async () => {
    const dir = H.tempDir();
    const config = `${dir}/aula.toml`;
    // Two subscriptions: the teacher's own (every page receives through the SFU) and Ana's.
    // `max_subscribers` is per SFU worker and a full worker spills a class onto another, so the
    // SFU is one worker here: it is full after two.
    (await import('node:fs')).writeFileSync(config, '[sfu]\nworkers = 1\nmax_subscribers = 2\n');
    server = await H.startServer({ dataDir: dir, extraArgs: ['--config', config] });
    const cls = await H.createClass(server, 'Tiny SFU', { topology: 'sfu' });
    browser = await H.launchBrowser();
    const teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'T' });
    const ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana' });
    const ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben' });
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await H.waitForFrames(ana.page, 20_000);
    await ben.page.locator('.toast.error', { hasText: 'media server cannot send you' }).waitFor({ timeout: 10_000 });
    assert.equal((await H.stageVideo(ben.page)).framesDecoded, 0, 'Ben gets no video');
    for (const c of [teacher, ana, ben]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});

describe('sfu: an auto class switches to the SFU when it grows', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;
  let cls;
  let teacher;
  const students = [];

  before(async () => {
    server = await H.startServer({ extraArgs: ['--sfu-auto-above', '2'] });
    cls = await H.createClass(server, 'Auto 7A', { topology: 'auto' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Mr Okafor' });
    for (const name of ['Ana', 'Ben']) students.push(await H.openClient(browser, H.joinUrl(server, cls.student.token), { name }));
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('two students: direct connections', async () => {
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
    for (const s of students) {
      assert.equal(await s.page.evaluate(() => window.aula.media), 'p2p');
      await H.waitForFrames(s.page, 20_000);
      assert.equal(await linkPath(s.page), 'direct');
      await s.page.evaluate(() => { window.notReloaded = true; });
    }
    await teacher.page.evaluate(() => { window.notReloaded = true; });
    const copies = await sendingScreen(teacher.page);
    assert.equal(copies.connectionsSending, 2, 'P2P: one copy per student');
  });

  it('a third student: everyone switches to the SFU without a reload, and every student decodes', async () => {
    const joined = Date.now();
    students.push(await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Carla' }));
    for (const c of [teacher, ...students]) await waitMedia(c.page, 'sfu', 15_000);
    const switched = Date.now() - joined;
    for (const c of [teacher, ...students.slice(0, 2)]) {
      assert.equal(await c.page.evaluate(() => window.notReloaded), true, `${c.name}'s page was not reloaded`);
      assert.equal(await c.page.evaluate(() => window.aula.transportSwitches), 1, `${c.name} switched once`);
    }
    const times = [];
    for (const s of students) {
      const { last } = await H.waitForFrames(s.page, 30_000);
      assert.ok(last.width > 0, `${s.name}: videoWidth > 0`);
      assert.equal(await linkPath(s.page, 'sfu'), 'sfu', `${s.name} receives through the SFU`);
      times.push(`${s.name} ≤${Date.now() - joined} ms (${last.width}px)`);
    }
    const copies = await sendingScreen(teacher.page);
    assert.equal(copies.connections, 1, 'only the SFU connection sends video');
    assert.equal(copies.connectionsSending, 1, 'one copy of the screen');
    console.log(`auto switch: all pages in sfu mode ${switched} ms after the third join; decoding again: ${times.join(', ')}`);
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ...students]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});

/** Breaks direct links only: ICE candidates are neither sent nor applied (the SFU needs none). */
function noDirectLinks() {
  RTCPeerConnection.prototype.addIceCandidate = function addIceCandidate() { return Promise.resolve(); };
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function sendWithoutCandidates(data) {
    try {
      if (JSON.parse(data).type === 'candidate') return undefined;
    } catch { /* not JSON */ }
    return send.call(this, data);
  };
}

describe('sfu: an auto class moves to the SFU when a student\'s direct link cannot connect', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('Ben (no direct path) asks for the SFU; everyone switches and both students decode', async () => {
    server = await H.startServer();
    const cls = await H.createClass(server, 'Fallback 8C', { topology: 'auto' });
    browser = await H.launchBrowser();
    const teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Dube' });
    const ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana' });
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await H.waitForFrames(ana.page, 20_000);
    assert.equal(await ana.page.evaluate(() => window.aula.media), 'p2p');
    const ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', initScript: noDirectLinks });
    const joined = Date.now();
    for (const c of [ben, ana, teacher]) await waitMedia(c.page, 'sfu', 20_000);
    const switched = Date.now() - joined;
    const { last } = await H.waitForFrames(ben.page, 20_000);
    assert.ok(last.width > 0, 'Ben decodes through the SFU');
    await H.waitForFrames(ana.page, 20_000);
    assert.equal(await linkPath(ben.page, 'sfu'), 'sfu');
    console.log(`fallback: class on the SFU ${switched} ms after Ben joined; Ben's join → first frame ${Math.round(last.timings.firstFrame - last.timings.joinClicked)} ms`);
    for (const c of [teacher, ana, ben]) assert.deepEqual(c.errors, [], `console errors on ${c.name}'s page`);
  });
});
