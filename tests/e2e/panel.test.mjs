// The teacher's classroom controls with a class of 30, in real headless Chromium: two students in
// real browsers and 28 scripted WebSocket students (run by one extra page, so no WebSocket
// package is needed in node). Hands in the order they went up, lowered one by one or all at
// once; Mute all says what it turned off; a camera-only grant; a private question reaches only
// the teachers; reactions; a co-teacher's page becomes a teacher's without a reload. The side
// panel: one line per person with one actions menu each, People / Chat / Connectivity tabs with
// the count of hands and of new messages, and the whole teacher's view of 30 in one 1366×768
// screen with the message box in view (and still usable at 390×844).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const SCRIPTED = 28;

const botSend = H.botSend;

/** Where the page's layout puts things: scrolling, the viewport, an element's box. */
const layout = (page, selector) => page.evaluate((sel) => {
  const r = document.querySelector(sel).getBoundingClientRect();
  return {
    scrollHeight: document.scrollingElement.scrollHeight,
    scrollWidth: document.scrollingElement.scrollWidth,
    innerHeight: window.innerHeight,
    innerWidth: window.innerWidth,
    box: { top: r.top, bottom: r.bottom, left: r.left, right: r.right, width: r.width, height: r.height },
  };
}, selector);

/** Asserts that `selector`'s box is wholly inside the viewport. */
async function assertFitsBox(page, selector, what) {
  const l = await layout(page, selector);
  assert.ok(l.box.width > 0 && l.box.top >= 0 && l.box.left >= 0 && l.box.bottom <= l.innerHeight && l.box.right <= l.innerWidth,
    `${what}: ${selector} at ${JSON.stringify(l.box)} is outside the ${l.innerWidth}×${l.innerHeight} viewport`);
}

/** Asserts that `selector`'s box is wholly inside the viewport and the page does not scroll. */
async function assertFits(page, selector, what) {
  const l = await layout(page, selector);
  assert.ok(l.scrollHeight <= l.innerHeight, `${what}: the page scrolls (${l.scrollHeight} > ${l.innerHeight})`);
  assert.ok(l.scrollWidth <= l.innerWidth, `${what}: the page scrolls sideways (${l.scrollWidth} > ${l.innerWidth})`);
  assert.ok(l.box.width > 0 && l.box.height > 0, `${what}: ${selector} is not shown`);
  assert.ok(l.box.top >= 0 && l.box.left >= 0 && l.box.bottom <= l.innerHeight && l.box.right <= l.innerWidth,
    `${what}: ${selector} at ${JSON.stringify(l.box)} is outside the ${l.innerWidth}×${l.innerHeight} viewport`);
  return l;
}

/** The names in the teacher's roster whose hand is up, top to bottom. */
const handsInRoster = (page) => page.locator('#roster li.raised .name').allInnerTexts();

describe('panel: a class of 30 and the teacher\'s controls', () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let ben;
  let botPage;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Panel 30');
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana', viewport: LAPTOP });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', viewport: PHONE });
    const ctx = await browser.newContext();
    botPage = await ctx.newPage();
    await botPage.goto(`${server.url}/`);
    await H.startBots(botPage, server, cls.student.token, SCRIPTED);
    await H.eventually(async () => (await teacher.page.locator('#roster li').count()) === 31, { what: 'the teacher sees 31 people', timeoutMs: 20_000 });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('raised hands come first, in the order they went up, counted on the People tab; the teacher lowers one, then all', async () => {
    const hands = teacher.page.locator('#hands-badge');
    assert.equal(await hands.isHidden(), true, 'no count without a hand up');
    for (const i of [5, 2, 9]) {
      await botPage.evaluate(() => new Promise((r) => setTimeout(r, 30)));
      await botSend(botPage, i, { type: 'hand', raised: true });
    }
    await H.eventually(async () => (await handsInRoster(teacher.page)).length === 3, { what: 'three hands up' });
    assert.deepEqual(await handsInRoster(teacher.page), ['Bot 06', 'Bot 03', 'Bot 10']);
    const first = await teacher.page.locator('#roster li').first().locator('.name').innerText();
    assert.equal(first, 'Bot 06', 'the first hand tops the roster');
    assert.equal(await hands.locator('[aria-hidden="true"]').innerText(), '✋ 3');
    assert.match(await teacher.page.getByRole('tab', { name: /^People/ }).getAttribute('aria-selected'), /true/);
    await teacher.page.getByRole('tab', { name: /^People \(31\)\W+3 hands up$/ }).waitFor();
    await H.screenshot(teacher.page, 'panel-teacher-30-hands');
    await H.personAction(teacher.page, 'Bot 03', 'Lower hand');
    await H.eventually(async () => (await handsInRoster(teacher.page)).join() === 'Bot 06,Bot 10', { what: 'Bot 03 lowered' });
    await H.eventually(async () => (await hands.locator('[aria-hidden="true"]').innerText()) === '✋ 2', { what: 'the count says 2' });
    // The count is on the tab, so it is seen from the chat too.
    await H.showTab(teacher.page, 'Chat');
    assert.equal(await hands.isVisible(), true);
    await H.showTab(teacher.page, 'People');
    await teacher.page.getByRole('button', { name: 'Lower all hands' }).click();
    await H.eventually(async () => (await handsInRoster(teacher.page)).length === 0, { what: 'every hand lowered' });
    assert.equal(await teacher.page.getByRole('button', { name: 'Lower all hands' }).isDisabled(), true);
    await hands.waitFor({ state: 'hidden' });
  });

  it('the roster is one line per person with one actions button; the menu grants, and closes with Escape', async () => {
    const rows = teacher.page.locator('#roster li');
    assert.equal(await rows.count(), 31);
    const shapes = await rows.evaluateAll((lis) => lis.map((li) => ({ h: li.getBoundingClientRect().height, buttons: li.querySelectorAll('button, input, select').length, you: /\(you\)/.test(li.textContent) })));
    for (const r of shapes) {
      assert.ok(r.h <= 40, `a roster row is ${r.h} px high (one line is ≤ 40)`);
      assert.equal(r.buttons, r.you ? 0 : 1, 'one control per student row');
    }
    // Grant through the menu: the scripted student is told by the server.
    const button = teacher.page.getByRole('button', { name: 'Actions for Bot 04', exact: true });
    await button.click();
    const menu = teacher.page.getByRole('menu', { name: 'Actions for Bot 04' });
    await menu.waitFor();
    assert.equal(await button.getAttribute('aria-expanded'), 'true');
    const speak = menu.getByRole('menuitemcheckbox', { name: 'Allow to speak' });
    assert.equal(await teacher.page.evaluate(() => document.activeElement.textContent), 'Allow to speak', 'the first item has the focus');
    assert.equal(await speak.getAttribute('aria-checked'), 'false');
    await speak.click();
    await H.eventually(async () => (await speak.getAttribute('aria-checked')) === 'true', { what: 'the item checked by the server\'s answer' });
    await H.eventually(() => botPage.evaluate(() => window.bots[3].msgs.some((m) => m.type === 'peer_updated' && m.peer.id === window.bots[3].id && m.peer.permissions.speak)),
      { what: 'Bot 04 allowed to speak' });
    assert.equal(await menu.isVisible(), true, 'a checkable item keeps the menu open');
    // No "Lower hand" without a hand up; the arrows move through the items.
    assert.equal(await menu.getByRole('menuitem', { name: 'Lower hand' }).count(), 0);
    await teacher.page.keyboard.press('ArrowDown');
    assert.equal(await teacher.page.evaluate(() => document.activeElement.textContent), 'Allow to show a camera');
    await teacher.page.keyboard.press('End');
    assert.equal(await teacher.page.evaluate(() => document.activeElement.textContent), 'Remove from the class…');
    for (const scheme of ['light', 'dark']) {
      await teacher.page.emulateMedia({ colorScheme: scheme });
      await H.axeCheck(teacher.page, `panel-person-menu-${scheme}`);
      await H.screenshot(teacher.page, `panel-person-menu-${scheme}`);
    }
    await teacher.page.emulateMedia({ colorScheme: 'light' });
    await teacher.page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden' });
    assert.equal(await button.getAttribute('aria-expanded'), 'false');
    assert.equal(await teacher.page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Actions for Bot 04', 'Escape returns to the button');
    // A click elsewhere closes it too.
    await button.click();
    await menu.waitFor();
    await teacher.page.locator('#stage').click();
    await menu.waitFor({ state: 'hidden' });
    await H.setRights(teacher.page, 'Bot 04', { speak: false });
  });

  it('the Chat tab counts new messages while People is shown, and opening it clears the count', async () => {
    const badge = teacher.page.locator('#chat-badge');
    const chatTab = teacher.page.getByRole('tab', { name: /^Chat/ });
    assert.equal(await chatTab.getAttribute('aria-selected'), 'false');
    assert.equal(await badge.isHidden(), true);
    await botSend(botPage, 7, { type: 'chat', text: 'Is this on the test?' });
    await botSend(botPage, 8, { type: 'chat', text: 'Page 42?' });
    await H.eventually(async () => (await badge.isVisible()) && (await badge.locator('[aria-hidden="true"]').innerText()) === '2', { what: 'two new on the Chat tab' });
    await teacher.page.getByRole('tab', { name: /^Chat\W+2 new messages$/ }).waitFor();
    assert.match(await teacher.page.locator('#panel-announce').innerText(), /2 new in the chat, the last from Bot 09/);
    await H.screenshot(teacher.page, 'panel-teacher-chat-badge');
    // Arrow keys move between the tabs and show them (the WAI-ARIA tabs pattern).
    await teacher.page.getByRole('tab', { name: /^People/ }).focus();
    await teacher.page.keyboard.press('ArrowRight');
    assert.equal(await chatTab.getAttribute('aria-selected'), 'true');
    assert.equal(await teacher.page.evaluate(() => document.activeElement.id), 'tab-chat');
    await teacher.page.locator('#chat-log li', { hasText: 'Page 42?' }).waitFor();
    await badge.waitFor({ state: 'hidden' });
    // While the chat is shown, new lines are not counted; nor are one's own.
    await botSend(botPage, 7, { type: 'chat', text: 'Thanks!' });
    await teacher.page.locator('#chat-log li', { hasText: 'Thanks!' }).waitFor();
    assert.equal(await badge.isHidden(), true);
    await teacher.page.keyboard.press('ArrowLeft');
    assert.equal(await teacher.page.getByRole('tab', { name: /^People/ }).getAttribute('aria-selected'), 'true');
    await H.showTab(teacher.page, 'Chat');
    await teacher.page.getByRole('textbox', { name: 'Message' }).fill('Yes, page 42.');
    await teacher.page.getByRole('textbox', { name: 'Message' }).press('Enter');
    await teacher.page.locator('#chat-log li.mine', { hasText: 'Yes, page 42.' }).waitFor();
    await H.showTab(teacher.page, 'People');
    await H.sleep(300);
    assert.equal(await badge.isHidden(), true, 'her own line is not new to her');
  });

  it('a camera-only grant: the student turns the camera on, Share screen stays unavailable', async () => {
    await H.setRights(teacher.page, 'Ana', { speak: true, camera: true });
    const cam = ana.page.getByRole('button', { name: 'Camera' });
    await cam.waitFor({ state: 'visible', timeout: 10_000 });
    await cam.click();
    await H.eventually(() => cam.getAttribute('aria-pressed').then((v) => v === 'true'), { what: "Ana's camera on" });
    assert.equal(await ana.page.getByRole('button', { name: 'Share screen' }).isVisible(), false, 'no Share screen on the camera right');
    await ana.page.getByRole('button', { name: 'Microphone' }).click();
    await H.eventually(() => ana.page.getByRole('button', { name: 'Microphone' }).getAttribute('aria-pressed').then((v) => v === 'true'), { what: "Ana's microphone on" });
  });

  it('Mute all tells each student what it actually turned off', async () => {
    await teacher.page.getByRole('button', { name: 'Mute all' }).click();
    await ana.page.locator('.toast', { hasText: 'The teacher muted the class: your microphone is now off.' }).waitFor();
    const mic = ana.page.getByRole('button', { name: 'Microphone' });
    await H.eventually(() => mic.getAttribute('aria-pressed').then((v) => v === 'false'), { what: "Ana's microphone off" });
    assert.equal(await ana.page.getByRole('button', { name: 'Camera' }).getAttribute('aria-pressed'), 'true', 'the camera stays on');
    await H.eventually(async () => (await botPage.evaluate(() => window.bots.filter((b) => b.msgs.some((m) => m.type === 'mute' && m.everyone)).length)) === SCRIPTED,
      { what: 'every scripted student asked' });
    // Ben had nothing on: no message for him.
    assert.equal(await ben.page.locator('.toast', { hasText: 'muted the class' }).count(), 0);
  });

  it('a private question reaches the teachers only', async () => {
    await ben.page.getByRole('combobox', { name: 'To' }).selectOption('teachers');
    await ben.page.getByRole('textbox', { name: 'Message' }).fill('Can I leave early today?');
    await ben.page.getByRole('button', { name: 'Send' }).click();
    await H.showTab(teacher.page, 'Chat');
    const line = teacher.page.locator('#chat-log li.private', { hasText: 'Can I leave early today?' });
    await line.waitFor();
    assert.match(await line.innerText(), /to teachers only/);
    await ben.page.locator('#chat-log li.private', { hasText: 'Can I leave early today?' }).waitFor();
    // A public line after it: once Ana and the bots have it, they would have had the private one.
    await teacher.page.getByRole('textbox', { name: 'Message' }).fill('Public note');
    await teacher.page.getByRole('button', { name: 'Send' }).click();
    await ana.page.locator('#chat-log', { hasText: 'Public note' }).waitFor();
    assert.equal(await ana.page.locator('#chat-log', { hasText: 'leave early' }).count(), 0, 'Ana never sees it');
    await H.eventually(() => botPage.evaluate(() => window.bots.every((b) => b.msgs.some((m) => m.type === 'chat' && m.text === 'Public note'))), { what: 'the bots got the public line' });
    const leaked = await botPage.evaluate(() => window.bots.filter((b) => b.msgs.some((m) => m.type === 'chat' && /leave early/.test(m.text))).length);
    assert.equal(leaked, 0, 'no scripted student received the private question');
    // A scripted student's own private question reaches the teacher too.
    await botSend(botPage, 0, { type: 'chat', text: 'Bot question for teachers', to: 'teachers' });
    await teacher.page.locator('#chat-log li.private', { hasText: 'Bot question for teachers' }).waitFor();
  });

  it('reactions show on the person\'s row', async () => {
    await ana.page.getByRole('toolbar', { name: 'Reactions' }).getByRole('button', { name: '👍' }).click();
    const anaId = await ana.page.evaluate(() => window.aula.me.id);
    await H.showTab(teacher.page, 'People');
    await teacher.page.locator(`#roster li[data-peer="${anaId}"] .react-bubble`, { hasText: '👍' }).waitFor();
    await botSend(botPage, 3, { type: 'react', emoji: '🎉' });
    await H.showTab(ben.page, 'People');
    await ben.page.locator('#roster .react-bubble', { hasText: '🎉' }).waitFor();
    await H.screenshot(ben.page, 'panel-student-phone');
  });

  it('the chat sound can be turned off, and stays off', async () => {
    await H.showTab(teacher.page, 'Chat');
    const sound = teacher.page.getByRole('button', { name: 'Message sound' });
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
    await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'false');
    assert.equal(await teacher.page.evaluate(() => localStorage.getItem('aula.chatSound')), 'off');
    await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
  });

  it('a student made co-teacher gets a teacher\'s view without a reload; the teacher keeps End', async () => {
    await H.personAction(teacher.page, 'Ana', 'Make co-teacher…');
    await teacher.page.getByRole('button', { name: 'Make co-teacher', exact: true }).click();
    await ana.page.locator('.toast', { hasText: 'made you a co-teacher' }).waitFor();
    await ana.page.getByRole('button', { name: /Lock class/ }).waitFor();
    assert.equal(await ana.page.getByRole('button', { name: 'End class' }).isVisible(), false, 'a co-teacher does not end the class');
    assert.equal(await ana.page.getByRole('button', { name: 'Raise hand' }).isVisible(), false);
    // Her roster now has the actions for students (not to make co-teachers), and her panel Connectivity.
    const menu = await H.openPersonMenu(ana.page, 'Ben');
    await menu.getByRole('menuitem', { name: 'Mute microphone and camera' }).waitFor();
    assert.equal(await menu.getByRole('menuitem', { name: 'Make co-teacher…' }).count(), 0);
    await ana.page.keyboard.press('Escape');
    await ana.page.getByRole('tab', { name: 'Connectivity' }).waitFor();
    const anaRow = teacher.page.locator('#roster li', { hasText: 'Ana' });
    await anaRow.locator('.badge', { hasText: 'Co-teacher' }).waitFor();
    await H.screenshot(ana.page, 'panel-co-teacher');
    await H.screenshot(teacher.page, 'panel-teacher-30');
    await teacher.page.setViewportSize(PHONE);
    await H.screenshot(teacher.page, 'panel-teacher-phone');
  });

  it('the teacher\'s view of a class of 30 fits one 1366×768 screen, the message box in view', async () => {
    await teacher.page.setViewportSize(LAPTOP);
    await H.showTab(teacher.page, 'People');
    // A hand up and the teacher's camera on (a tile under the stage): the fullest view.
    await botSend(botPage, 11, { type: 'hand', raised: true });
    await teacher.page.locator('#hands-badge', { hasText: '1' }).waitFor();
    await teacher.page.getByRole('button', { name: 'Camera' }).click();
    await teacher.page.locator('#tiles figure').first().waitFor();
    assert.equal(await teacher.page.locator('#roster li').count(), 31);
    await assertFits(teacher.page, '#btn-leave', 'People tab at 1366×768');
    await assertFits(teacher.page, '#side-tabs', 'People tab at 1366×768');
    await H.showTab(teacher.page, 'Chat');
    await assertFits(teacher.page, '#chat-input', 'Chat tab at 1366×768');
    await assertFits(teacher.page, '#chat-form button[type="submit"]', 'Chat tab at 1366×768');
    await assertFits(teacher.page, '#controls', 'Chat tab at 1366×768');
    await H.screenshot(teacher.page, 'panel-teacher-30-chat-1366');
    await H.showTab(teacher.page, 'People');
    await H.screenshot(teacher.page, 'panel-teacher-30-people-1366');
    await H.showTab(teacher.page, 'Connectivity');
    await assertFits(teacher.page, '#side-tabs', 'Connectivity tab at 1366×768');
    await H.screenshot(teacher.page, 'panel-teacher-30-connectivity-1366');
    await teacher.page.getByRole('button', { name: 'Camera' }).click();
  });

  it('at phone width the tabs, the menu and the message box still work', async () => {
    await teacher.page.setViewportSize(PHONE);
    await H.showTab(teacher.page, 'People');
    const l = await layout(teacher.page, '#side-tabs');
    assert.ok(l.scrollWidth <= l.innerWidth, `no sideways scroll at 390 px (${l.scrollWidth})`);
    assert.ok(l.box.right <= l.innerWidth, 'the tabs fit the width');
    const menu = await H.openPersonMenu(teacher.page, 'Bot 12');
    await assertFitsBox(teacher.page, '#person-menu', 'the actions menu at 390 px');
    await H.screenshot(teacher.page, 'panel-teacher-menu-phone');
    await teacher.page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden' });
    await H.personAction(teacher.page, 'Bot 12', 'Lower hand');
    await teacher.page.locator('#hands-badge').waitFor({ state: 'hidden' });
    await H.showTab(teacher.page, 'Chat');
    const input = teacher.page.getByRole('textbox', { name: 'Message' });
    await input.fill('From my phone');
    await input.press('Enter');
    await teacher.page.locator('#chat-log li.mine', { hasText: 'From my phone' }).waitFor();
    await H.screenshot(teacher.page, 'panel-teacher-chat-phone');
    await teacher.page.setViewportSize(LAPTOP);
  });

  it('no console errors', () => {
    for (const c of [teacher, ana, ben]) assert.deepEqual(H.unexpectedErrors(c.errors), [], `console errors on ${c.name}'s page`);
  });
});
