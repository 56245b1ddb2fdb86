// Keyboard shortcuts in the classroom: M microphone, V camera, H hand, C chat, ? the list — and
// none of them fires while typing in a text box. In a class of 30 the roster is one Tab stop
// (arrow keys move between people) and the chat box is a few key presses from it.

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

describe('keyboard: a class of 30 is a few Tab stops, not four per student', () => {
  let server;
  let browser;
  let teacher;

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
    const cls = await H.createClass(server, 'Thirty');
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Keys', viewport: { width: 1366, height: 768 } });
    const botPage = await (await browser.newContext()).newPage();
    await botPage.goto(`${server.url}/`);
    await H.startBots(botPage, server, cls.student.token, 30, 'Pupil');
    await teacher.page.locator('#people-count', { hasText: '31' }).waitFor({ timeout: 20_000 });
    await H.botSend(botPage, 4, { type: 'hand', raised: true });
    await teacher.page.locator('#hands-badge', { hasText: '1' }).waitFor();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  /** What has the focus: an id, or a role and name. */
  const focused = (page) => page.evaluate(() => {
    const el = document.activeElement;
    return {
      id: el.id,
      label: el.getAttribute('aria-label') || el.textContent.trim().slice(0, 40),
      inRoster: !!el.closest('#roster'),
      inPeople: !!el.closest('#panel-people'),
      role: el.getAttribute('role'),
    };
  });

  it('the roster of 30 is one Tab stop; from it the chat box is at most 6 key presses away', async () => {
    const { page } = teacher;
    // Tab through the People panel from its tab: count the stops in the roster.
    await page.getByRole('tab', { name: /^People/ }).focus();
    const stops = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const f = await focused(page);
      if (!f.inPeople) break;
      stops.push(f);
    }
    const inRoster = stops.filter((f) => f.inRoster);
    console.log(`People panel Tab stops with 30 students: ${stops.map((f) => f.label).join(' | ')}`);
    assert.equal(inRoster.length, 1, `the roster is one Tab stop (was ${inRoster.length})`);
    assert.ok(stops.length <= 3, `the People panel has ${stops.length} Tab stops (Mute all, Lower all hands, the roster)`);
    // The arrow keys move between people, and the stop follows.
    const first = inRoster[0].label;
    await page.getByRole('button', { name: first }).focus();
    await page.keyboard.press('ArrowDown');
    const second = await focused(page);
    assert.ok(second.inRoster && second.label !== first && /^Actions for /.test(second.label), `ArrowDown moves to the next person (${second.label})`);
    assert.equal(await page.locator('#roster button[tabindex="0"]').count(), 1, 'one roster button in the Tab order');
    // From the roster to the chat box: back to the tabs, over to Chat, into its box.
    let presses = 0;
    const press = async (key) => {
      presses += 1;
      await page.keyboard.press(key);
      return focused(page);
    };
    let f = await press('Shift+Tab');
    while (f.role !== 'tab' && presses < 40) f = await press('Shift+Tab');
    while (f.id !== 'tab-chat' && presses < 40) f = await press('ArrowRight');
    while (f.id !== 'chat-input' && presses < 40) f = await press('Tab');
    assert.equal(f.id, 'chat-input');
    console.log(`roster → chat box: ${presses} key presses in a class of 30`);
    assert.ok(presses <= 6, `${presses} key presses from the roster to the chat box (≤ 6, whatever the class size)`);
    await H.screenshot(page, 'keyboard-thirty-chat');
  });

  it('no console errors', () => {
    assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
  });
});
