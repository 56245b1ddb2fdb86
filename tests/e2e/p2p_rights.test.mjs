// Rights in a direct (p2p) class, in real headless Chromium: a student whose client is modified to
// send its microphone and camera without the teacher's grant reaches the teacher's browser, but
// the teacher's page neither plays nor shows it until the server says the student holds the
// right; after the grant it plays.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

/** Bytes received so far on the page's connections, per kind. */
async function received(page) {
  return page.evaluate(async () => {
    const out = { audio: 0, video: 0 };
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp') out[s.kind] += s.bytesReceived || 0;
      });
    }
    return out;
  });
}

/** How the teacher's page plays `peerId`'s microphone: null when it has no element for it. */
async function audioOf(page, peerId) {
  return page.evaluate((id) => {
    const el = document.querySelector(`audio[data-peer="${CSS.escape(id)}"]`);
    if (!el) return null;
    const tracks = el.srcObject ? el.srcObject.getAudioTracks() : [];
    return {
      muted: el.muted,
      paused: el.paused,
      enabledLive: tracks.filter((t) => t.enabled && t.readyState === 'live').length,
    };
  }, peerId);
}

describe('p2p rights: the teacher plays a student only while the server grants it', () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let anaId;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Direct', { topology: 'p2p' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', initScript: H.RECORD_PCS });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', initScript: H.RECORD_PCS });
    anaId = await ana.page.evaluate(() => window.aula.me.id);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a modified student sending without the grant is neither heard nor seen', async () => {
    assert.equal(await ana.page.evaluate(() => window.aula.media), 'p2p');
    await H.eventually(() => ana.page.evaluate(() => window.__pcs.some((pc) => pc.connectionState === 'connected')),
      { what: "Ana's direct link to the teacher", timeoutMs: 20_000 });
    // The modified client: its microphone and camera on its senders, no right asked or given.
    await ana.page.evaluate(async () => {
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      const pc = window.__pcs.find((p) => p.connectionState === 'connected');
      const trs = pc.getTransceivers();
      const mic = trs.find((t) => t.receiver.track.kind === 'audio');
      const cam = trs.filter((t) => t.receiver.track.kind === 'video')[1];
      for (const t of [mic, cam]) if (t.direction !== 'sendrecv') t.direction = 'sendrecv';
      await mic.sender.replaceTrack(media.getAudioTracks()[0]);
      await cam.sender.replaceTrack(media.getVideoTracks()[0]);
    });
    // Its media does reach the teacher's browser…
    const start = await received(teacher.page);
    await H.eventually(async () => {
      const now = await received(teacher.page);
      return now.audio > start.audio + 2000 && now.video > start.video + 20_000;
    }, { what: "Ana's audio and video arriving at the teacher's browser", timeoutMs: 20_000 });
    await H.sleep(1000);
    // …but the teacher's page neither plays it nor shows it.
    const audio = await audioOf(teacher.page, anaId);
    assert.ok(audio === null || (audio.muted && audio.paused && audio.enabledLive === 0),
      `Ana's microphone is not played: ${JSON.stringify(audio)}`);
    const tiles = await teacher.page.locator(`#tiles figure[data-key^="${anaId}:"]`).count();
    assert.equal(tiles, 0, "no tile shows Ana's camera");
  });

  it('after the teacher grants speech, her microphone plays', async () => {
    await H.setRights(teacher.page, 'Ana', { speak: true });
    const audio = await H.eventually(async () => {
      const a = await audioOf(teacher.page, anaId);
      return a && !a.muted && !a.paused && a.enabledLive === 1 ? a : null;
    }, { what: "the teacher's page playing Ana's microphone", timeoutMs: 10_000 });
    assert.ok(audio);
    // Revoked again: silent again.
    await H.setRights(teacher.page, 'Ana', { speak: false });
    await H.eventually(async () => {
      const a = await audioOf(teacher.page, anaId);
      return a === null || (a.muted && a.paused && a.enabledLive === 0);
    }, { what: "Ana's microphone silent again after the revocation" });
    assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
  });
});
