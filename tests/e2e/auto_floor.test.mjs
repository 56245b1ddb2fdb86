// A student given the floor in a small `auto` class, in real headless Chromium: the class starts
// on direct links, where a student's media reaches only the teacher; granting her speech moves
// the class to the SFU, so the teacher and her classmate both hear her microphone.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

/**
 * Audio bytes `page` has received on the track it plays as `peerId`'s microphone (0 while it
 * plays none, or plays it muted).
 */
async function heardFrom(page, peerId) {
  return page.evaluate(async (id) => {
    const el = document.querySelector(`audio[data-peer="${CSS.escape(id)}"]`);
    if (!el || !el.srcObject || el.muted) return 0;
    const ids = new Set(el.srcObject.getAudioTracks().filter((t) => t.readyState === 'live').map((t) => t.id));
    let bytes = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio' && ids.has(s.trackIdentifier)) bytes += s.bytesReceived || 0;
      });
    }
    return bytes;
  }, peerId);
}

describe('auto class: a student allowed to speak is heard by the whole class', { skip: !H.hasSfu() && 'this aula has no SFU' }, () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let ben;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Small group', { topology: 'auto' });
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', initScript: H.RECORD_PCS });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', initScript: H.RECORD_PCS });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', initScript: H.RECORD_PCS });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('granted speech, Ana turns on her microphone: the teacher and Ben both receive it', async () => {
    for (const c of [teacher, ana, ben]) assert.equal(await c.page.evaluate(() => window.aula.media), 'p2p', `${c.name} starts on direct links`);
    const anaId = await ana.page.evaluate(() => window.aula.me.id);
    await H.setRights(teacher.page, 'Ana', { speak: true });
    const mic = ana.page.getByRole('button', { name: 'Microphone' });
    await mic.waitFor({ state: 'visible', timeout: 10_000 });
    await mic.click();
    await H.eventually(async () => (await mic.getAttribute('aria-pressed')) === 'true', { what: "Ana's microphone on" });
    for (const c of [teacher, ben]) {
      const bytes = await H.eventually(async () => {
        const b = await heardFrom(c.page, anaId);
        return b > 2000 ? b : null;
      }, { what: `${c.name} receiving Ana's microphone`, timeoutMs: 20_000 });
      assert.ok(bytes > 2000);
    }
    for (const c of [teacher, ana, ben]) assert.equal(await c.page.evaluate(() => window.aula.media), 'sfu', `${c.name} moved to the SFU`);
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, ben]) assert.deepEqual(H.unexpectedErrors(c.errors), [], `console errors on ${c.name}'s page`);
  });
});
