// Keyboard shortcuts in the classroom: M microphone, V camera, H hand, C chat, ? the list — and
// none of them fires while typing in a text box.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('keyboard shortcuts', () => {
  let server;
  let browser;
  let teacher;
  let student;

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
    const cls = await H.createClass(server, 'Shortcuts');
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Keys', viewport: { width: 1366, height: 768 } });
    student = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ola', viewport: { width: 1366, height: 768 } });
    await teacher.page.locator('#roster', { hasText: 'Ola' }).waitFor();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  const pressed = (page, id) => page.locator(`#${id}`).getAttribute('aria-pressed');

  it('M and V turn the microphone and camera on and off; the buttons name their keys', async () => {
    const { page } = teacher;
    assert.equal(await page.locator('#btn-mic').getAttribute('aria-keyshortcuts'), 'M');
    assert.match(await page.locator('#btn-mic').getAttribute('title'), /\(M\)/);
    assert.match(await page.locator('#btn-camera').getAttribute('title'), /\(V\)/);
    await page.locator('body').press('m');
    await H.eventually(async () => (await pressed(page, 'btn-mic')) === 'true', { what: 'microphone on by M' });
    await H.eventually(() => student.page.evaluate(() => window.aula.peers.some((p) => p.name === 'Ms Keys' && p.media.mic)), { what: 'the class sees her microphone on' });
    await page.keyboard.press('v');
    await H.eventually(async () => (await pressed(page, 'btn-camera')) === 'true', { what: 'camera on by V' });
    await page.keyboard.press('Shift+M'); // a modified key is not a shortcut
    await page.keyboard.press('Control+m');
    await H.sleep(300);
    assert.equal(await pressed(page, 'btn-mic'), 'true');
    await page.keyboard.press('m');
    await page.keyboard.press('v');
    await H.eventually(async () => (await pressed(page, 'btn-mic')) === 'false' && (await pressed(page, 'btn-camera')) === 'false', { what: 'both off again' });
  });

  it('H raises and lowers a student\'s hand; the teacher sees it', async () => {
    const { page } = student;
    await page.keyboard.press('h');
    await H.eventually(async () => (await pressed(page, 'btn-hand')) === 'true', { what: 'hand up by H' });
    await H.eventually(() => teacher.page.evaluate(() => window.aula.peers.some((p) => p.name === 'Ola' && p.hand_raised)), { what: 'the teacher sees the hand' });
    await page.keyboard.press('H'); // Caps Lock gives the capital
    await H.eventually(async () => (await pressed(page, 'btn-hand')) === 'false', { what: 'hand down by H' });
    // A student without the right to speak is told why M does nothing.
    await page.keyboard.press('m');
    await page.locator('.toast', { hasText: 'the teacher can let you speak' }).waitFor();
    assert.equal(await teacher.page.evaluate(() => window.aula.peers.find((p) => p.name === 'Ola').media.mic), false);
  });

  it('C goes to the chat box, where letters are typed, not shortcuts', async () => {
    const { page } = student;
    await page.keyboard.press('c');
    assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'chat-input');
    await page.keyboard.type('hmm, my view');
    await page.keyboard.press('Enter');
    // The teacher is on the People tab: her Chat tab counts the line; C opens it, in the box.
    await teacher.page.locator('#chat-badge', { hasText: '1' }).waitFor();
    assert.equal(await pressed(page, 'btn-hand'), 'false', 'typing h in the chat did not raise the hand');
    await teacher.page.locator('#main').focus();
    await teacher.page.keyboard.press('c');
    assert.equal(await teacher.page.evaluate(() => document.activeElement && document.activeElement.id), 'chat-input');
    assert.equal(await teacher.page.getByRole('tab', { name: /^Chat/ }).getAttribute('aria-selected'), 'true');
    await teacher.page.locator('#chat-log', { hasText: 'hmm, my view' }).waitFor();
    assert.equal(await teacher.page.locator('#chat-badge').isHidden(), true, 'opening the chat clears its count');
  });

  it('? opens the list of shortcuts (accessible, light and dark), Escape closes it', async () => {
    for (const c of [teacher, student]) {
      const { page } = c;
      await page.locator('#main').focus();
      await page.keyboard.press('?');
      const dlg = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
      await dlg.waitFor();
      const text = await dlg.innerText();
      for (const want of [/M\s+Turn your microphone on or off/, /V\s+Turn your camera/, /H\s+Raise or lower your hand/, /C\s+Go to the chat/]) assert.match(text, want);
      await H.axeCheck(page, `shortcuts-dialog-light-${c.name.replace(/\W/g, '')}`);
      await H.screenshot(page, `shortcuts-dialog-${c.name.replace(/\W/g, '')}`);
      await page.keyboard.press('m'); // no shortcut while a dialog is open
      await page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'hidden' });
      assert.equal(await pressed(page, 'btn-mic'), 'false');
    }
    await teacher.page.emulateMedia({ colorScheme: 'dark' });
    await teacher.page.getByRole('button', { name: 'Shortcuts' }).click();
    await teacher.page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor();
    await H.axeCheck(teacher.page, 'shortcuts-dialog-dark');
    await teacher.page.getByRole('button', { name: 'Close' }).click();
  });

  it('no console errors', () => {
    for (const c of [teacher, student]) assert.deepEqual(H.unexpectedErrors(c.errors), [], c.name);
  });
});
