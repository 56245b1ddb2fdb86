// The join form: the class name from the server, a camera and microphone check (preview, level
// meter, device pickers), the remembered name on a shared computer; and the room's Devices
// dialog switching a live microphone without renegotiating.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

describe('join form and devices', () => {
  let server;
  let browser;
  let cls;
  const opened = [];

  async function open(url, opts = {}) {
    const c = await H.openClient(browser, url, { viewport: LAPTOP, ...opts });
    opened.push(c);
    return c;
  }

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
    cls = await H.createClass(server, 'Year 9 Physics');
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('shows the class name for a student and a teacher link, before anyone joins', async () => {
    for (const [role, text] of [['student', 'You are joining as a student.'], ['teacher', 'You are joining as the teacher.']]) {
      const c = await open(H.joinUrl(server, cls[role].token));
      await c.page.getByRole('heading', { name: 'Join Year 9 Physics' }).waitFor();
      await c.page.getByText(text).waitFor();
      assert.equal(await c.page.title(), 'Year 9 Physics · Aula');
    }
    const res = await fetch(`${server.url}/api/v1/classes/${cls.id}`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    assert.equal((await res.json()).peers, 0, 'looking did not join');
  });

  it('a forged link is refused before the name is typed', async () => {
    const [hd, pl] = cls.student.token.split('.');
    const c = await open(H.joinUrl(server, `${hd}.${pl}.${'A'.repeat(43)}`));
    await c.page.locator('#fatal', { hasText: 'This link does not work' }).waitFor();
    assert.equal(await c.page.locator('#join').isHidden(), true);
  });

  for (const viewport of [LAPTOP, PHONE]) {
    it(`the camera and microphone check: preview, moving level meter, pickers (${viewport.width} px)`, async () => {
      const c = await open(H.joinUrl(server, cls.student.token), { viewport });
      const { page } = c;
      await page.getByText('Check your camera and microphone').click();
      await H.eventually(() => page.evaluate(() => document.getElementById('join-dev-preview').videoWidth > 0), { what: 'camera preview' });
      // The fake microphone beeps: the meter moves.
      const levels = [];
      for (let i = 0; i < 30; i++) {
        levels.push(await page.locator('#join-dev-level').evaluate((m) => m.value));
        await H.sleep(100);
      }
      const peak = Math.max(...levels);
      assert.ok(peak > 0.1, `the level meter moved (peak ${peak.toFixed(3)})`);
      assert.ok(Math.min(...levels) < peak, 'and falls again');
      for (const label of ['Camera', 'Microphone', 'Speaker']) {
        const sel = page.getByLabel(label, { exact: true });
        await sel.waitFor();
        const options = await sel.locator('option').allInnerTexts();
        assert.ok(options.length >= 2, `${label}: ${options.join(', ')}`);
        assert.equal(options[0], 'System default');
      }
      const mics = await page.getByLabel('Microphone', { exact: true }).locator('option').evaluateAll((os) => os.map((o) => o.value));
      await page.getByLabel('Microphone', { exact: true }).selectOption(mics[mics.length - 1]);
      assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('aula.devices')).mic), mics[mics.length - 1]);
      await H.eventually(() => page.evaluate(() => document.getElementById('join-dev-preview').videoWidth > 0), { what: 'preview back after switching' });
      const tag = `join-devices-${viewport.width}`;
      await H.screenshot(page, tag);
      await H.axeCheck(page, `${tag}-light`);
      await page.emulateMedia({ colorScheme: 'dark' });
      await H.axeCheck(page, `${tag}-dark`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scroll (${overflow}px)`);
      // Joining lets the devices go.
      await page.getByLabel('Your name').fill(`Dev ${viewport.width}`);
      await page.getByRole('button', { name: 'Join', exact: true }).click();
      await page.locator('#room').waitFor({ state: 'visible' });
      assert.equal(await page.evaluate(() => document.getElementById('join-dev-preview').srcObject), null);
    });
  }

  it('a name is remembered only when asked, and "Not you? Clear" forgets it', async () => {
    const context = await browser.newContext({ viewport: LAPTOP });
    opened.push({ context });
    const page = await context.newPage();
    await page.goto(H.joinUrl(server, cls.student.token));
    await page.getByLabel('Your name').fill('Ana');
    assert.equal(await page.getByLabel('Remember my name on this computer').isChecked(), false, 'not remembered by default');
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.locator('#room').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Leave' }).click();
    await page.goto(`${server.url}/`);
    await page.goto(H.joinUrl(server, cls.student.token));
    await page.getByLabel('Your name').waitFor();
    assert.equal(await page.getByLabel('Your name').inputValue(), '', 'the next person does not see Ana');
    assert.equal(await page.getByRole('button', { name: 'Not you? Clear' }).isVisible(), false);

    await page.getByLabel('Your name').fill('Ben');
    await page.getByLabel('Remember my name on this computer').check();
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.locator('#room').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Leave' }).click();
    await page.goto(`${server.url}/`);
    await page.goto(H.joinUrl(server, cls.student.token));
    await page.getByLabel('Your name').waitFor();
    assert.equal(await page.getByLabel('Your name').inputValue(), 'Ben');
    await H.axeCheck(page, 'join-remembered-name');
    await H.screenshot(page, 'join-remembered-name');
    await page.getByRole('button', { name: 'Not you? Clear' }).click();
    assert.equal(await page.getByLabel('Your name').inputValue(), '');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'join-name');
    assert.equal(await page.evaluate(() => localStorage.getItem('aula.name')), null);
  });

  it('in the room, the Devices dialog switches a live microphone; the class keeps hearing it', async () => {
    const cls2 = await H.createClass(server, 'Switch');
    const teacher = await open(H.joinUrl(server, cls2.teacher.token), { name: 'Ms Mic', initScript: H.RECORD_PCS });
    const student = await open(H.joinUrl(server, cls2.student.token), { name: 'Pat', initScript: H.RECORD_PCS });
    await teacher.page.getByRole('button', { name: 'Microphone' }).click();
    await H.eventually(async () => (await teacher.page.locator('#btn-mic').getAttribute('aria-pressed')) === 'true', { what: 'mic on' });
    const micSender = () => teacher.page.evaluate(() => {
      const tracks = window.__pcs.flatMap((pc) => pc.getSenders()).map((s) => s.track).filter((t) => t && t.kind === 'audio' && t.readyState === 'live');
      return tracks.map((t) => ({ id: t.id, device: t.getSettings().deviceId }));
    });
    const heard = () => student.page.evaluate(async () => {
      let bytes = 0;
      for (const pc of window.__pcs) {
        (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') bytes += s.bytesReceived || 0; });
      }
      return bytes;
    });
    await H.eventually(async () => (await micSender()).length > 0 && (await heard()) > 1000, { what: 'the student hears the teacher', timeoutMs: 20_000 });
    const before = await micSender();
    const offersBefore = await teacher.page.evaluate(() => window.__pcs.length);

    await teacher.page.getByRole('button', { name: 'Devices' }).click();
    const dlg = teacher.page.getByRole('dialog', { name: 'Camera, microphone and speaker' });
    await dlg.waitFor();
    await H.eventually(() => teacher.page.evaluate(() => document.getElementById('room-dev-preview').videoWidth > 0), { what: 'preview in the dialog' });
    await H.axeCheck(teacher.page, 'room-devices-dialog');
    await H.screenshot(teacher.page, 'room-devices-dialog');
    const mics = await dlg.getByLabel('Microphone', { exact: true }).locator('option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
    const other = mics.find((m) => !before.some((b) => b.device === m));
    assert.ok(other, `another microphone to switch to (have ${mics.length})`);
    await dlg.getByLabel('Microphone', { exact: true }).selectOption(other);
    const after = await H.eventually(async () => {
      const now = await micSender();
      return now.length && now.every((t) => t.id !== before[0].id) ? now : null;
    }, { what: 'a new microphone track on the senders' });
    assert.ok(after.every((t) => t.device === other), `sending the chosen microphone: ${JSON.stringify(after)}`);
    assert.equal(await teacher.page.evaluate(() => window.__pcs.length), offersBefore, 'no new connection');
    await dlg.getByRole('button', { name: 'Done' }).click();
    await dlg.waitFor({ state: 'hidden' });
    const b0 = await heard();
    await H.eventually(async () => (await heard()) > b0 + 1000, { what: 'the student still hears her' });
    assert.equal(await teacher.page.locator('#btn-mic').getAttribute('aria-pressed'), 'true');
    for (const c of [teacher, student]) assert.deepEqual(H.unexpectedErrors(c.errors), [], c.name);
  });
});
