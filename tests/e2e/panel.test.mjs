// The teacher's classroom controls with a class of 30, in real headless Chromium: two students in
// real browsers and 28 scripted WebSocket students (run by one extra page, so no WebSocket
// package is needed in node). Hands in the order they went up, lowered one by one or all at
// once; Mute all says what it turned off; a camera-only grant; a private question reaches only
// the teachers; reactions; a co-teacher's page becomes a teacher's without a reload.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const SCRIPTED = 28;

/** Starts `n` scripted students in `page`: each joins over /ws and records what it receives. */
async function startBots(page, wsUrl, token, n) {
  await page.evaluate(async ({ url, token, n }) => {
    window.bots = [];
    const joined = [];
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(url);
      const bot = { ws, msgs: [], id: null, name: `Bot ${String(i + 1).padStart(2, '0')}` };
      window.bots.push(bot);
      joined.push(new Promise((resolve) => {
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token, name: bot.name }));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          bot.msgs.push(m);
          if (m.type === 'welcome') {
            bot.id = m.id;
            resolve();
          }
        };
      }));
    }
    await Promise.all(joined);
  }, { url: wsUrl, token, n });
}

/** Bot `i` sends `msg`. */
const botSend = (page, i, msg) => page.evaluate(([i, m]) => window.bots[i].ws.send(JSON.stringify(m)), [i, msg]);

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
    await startBots(botPage, `${server.url.replace(/^http/, 'ws')}/ws`, cls.student.token, SCRIPTED);
    await H.eventually(async () => (await teacher.page.locator('#roster li').count()) === 31, { what: 'the teacher sees 31 people', timeoutMs: 20_000 });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('raised hands come first, in the order they went up; the teacher lowers one, then all', async () => {
    for (const i of [5, 2, 9]) {
      await botPage.evaluate(() => new Promise((r) => setTimeout(r, 30)));
      await botSend(botPage, i, { type: 'hand', raised: true });
    }
    await H.eventually(async () => (await handsInRoster(teacher.page)).length === 3, { what: 'three hands up' });
    assert.deepEqual(await handsInRoster(teacher.page), ['Bot 06', 'Bot 03', 'Bot 10']);
    const first = await teacher.page.locator('#roster li').first().locator('.name').innerText();
    assert.equal(first, 'Bot 06', 'the first hand tops the roster');
    await H.screenshot(teacher.page, 'panel-teacher-30-hands');
    await teacher.page.getByRole('button', { name: 'Lower hand: Bot 03' }).click();
    await H.eventually(async () => (await handsInRoster(teacher.page)).join() === 'Bot 06,Bot 10', { what: 'Bot 03 lowered' });
    await teacher.page.getByRole('button', { name: 'Lower all hands' }).click();
    await H.eventually(async () => (await handsInRoster(teacher.page)).length === 0, { what: 'every hand lowered' });
    assert.equal(await teacher.page.getByRole('button', { name: 'Lower all hands' }).isDisabled(), true);
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
    await teacher.page.locator(`#roster li[data-peer="${anaId}"] .react-bubble`, { hasText: '👍' }).waitFor();
    await botSend(botPage, 3, { type: 'react', emoji: '🎉' });
    await ben.page.locator('#roster .react-bubble', { hasText: '🎉' }).waitFor();
    await H.screenshot(ben.page, 'panel-student-phone');
  });

  it('the chat sound can be turned off, and stays off', async () => {
    const sound = teacher.page.getByRole('button', { name: 'Message sound' });
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
    await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'false');
    assert.equal(await teacher.page.evaluate(() => localStorage.getItem('aula.chatSound')), 'off');
    await sound.click();
    assert.equal(await sound.getAttribute('aria-pressed'), 'true');
  });

  it('a student made co-teacher gets a teacher\'s view without a reload; the teacher keeps End', async () => {
    await teacher.page.getByRole('button', { name: 'Make co-teacher: Ana' }).click();
    await teacher.page.getByRole('button', { name: 'Make co-teacher', exact: true }).click();
    await ana.page.locator('.toast', { hasText: 'made you a co-teacher' }).waitFor();
    await ana.page.getByRole('button', { name: /Lock class/ }).waitFor();
    assert.equal(await ana.page.getByRole('button', { name: 'End class' }).isVisible(), false, 'a co-teacher does not end the class');
    assert.equal(await ana.page.getByRole('button', { name: 'Raise hand' }).isVisible(), false);
    // Her roster now has the controls for students (not to make co-teachers).
    await ana.page.getByRole('button', { name: 'Mute Ben' }).waitFor();
    assert.equal(await ana.page.getByRole('button', { name: 'Make co-teacher: Ben' }).isVisible(), false);
    const anaRow = teacher.page.locator('#roster li', { hasText: 'Ana' });
    await anaRow.locator('.badge', { hasText: 'Co-teacher' }).waitFor();
    await H.screenshot(ana.page, 'panel-co-teacher');
    await H.screenshot(teacher.page, 'panel-teacher-30');
    await teacher.page.setViewportSize(PHONE);
    await H.screenshot(teacher.page, 'panel-teacher-phone');
  });

  it('no console errors', () => {
    for (const c of [teacher, ana, ben]) assert.deepEqual(H.unexpectedErrors(c.errors), [], `console errors on ${c.name}'s page`);
  });
});
