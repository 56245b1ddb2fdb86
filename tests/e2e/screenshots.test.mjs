// The README's pictures, made from a realistic lesson: a teacher sharing her screen to a class of
// 12 (three students in browsers, nine scripted WebSocket students), a raised hand, a few chat
// lines. It asserts what the pictures show (the students decode the shared screen, the hand and
// the chat are on the teacher's page) and saves the teacher's view, a student's view, a phone and
// the join form. With AULA_E2E_UPDATE_SCREENSHOTS=1 they go to docs/screenshots/ (to be committed);
// otherwise to tests/artifacts/, so a test run never changes the tree.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const UPDATE = process.env.AULA_E2E_UPDATE_SCREENSHOTS === '1';
const OUT = UPDATE ? pathJoin(H.ROOT, 'docs', 'screenshots') : H.ARTIFACTS;
/** A README picture stays small. */
const MAX_BYTES = 250 * 1024;

/** Saves what the viewport shows (not the full page) as `name`.png; returns its size in bytes. */
async function picture(page, name) {
  mkdirSync(OUT, { recursive: true });
  const path = pathJoin(OUT, UPDATE ? `${name}.png` : `screenshot-${name}.png`);
  await page.screenshot({ path, scale: 'css', animations: 'disabled', caret: 'hide' });
  const { size } = statSync(path);
  console.log(`${path}: ${Math.round(size / 1024)} KB`);
  return size;
}

describe('screenshots for the README', () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let ben;
  let carla;
  let botPage;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'Year 9 Physics');
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana Silva', viewport: LAPTOP });
    ben = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben Okafor', viewport: PHONE });
    carla = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Carla Jensen', viewport: LAPTOP });
    botPage = await (await browser.newContext()).newPage();
    await botPage.goto(`${server.url}/`);
    await H.startBots(botPage, server, cls.student.token, 9, 'Student');
    await teacher.page.locator('#people-count', { hasText: '13' }).waitFor({ timeout: 20_000 });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a lesson: the teacher shares her screen, a hand goes up, the class chats', async () => {
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
    await teacher.page.getByRole('button', { name: 'Camera' }).click();
    for (const c of [ana, ben, carla]) {
      const { last } = await H.waitForFrames(c.page, 20_000);
      assert.ok(last.width > 0 && last.framesDecoded > 0, `${c.name} decodes the teacher's screen`);
    }
    await H.botSend(botPage, 2, { type: 'chat', text: 'Is the homework due on Friday?' });
    await teacher.page.locator('#chat-badge', { hasText: '1' }).waitFor();
    await H.showTab(teacher.page, 'Chat');
    const box = teacher.page.getByRole('textbox', { name: 'Message' });
    await box.fill('Yes, Friday. Today: forces and motion, page 42.');
    await box.press('Enter');
    await ana.page.getByRole('textbox', { name: 'Message' }).fill('Can we go over question 3 again?');
    await ana.page.getByRole('button', { name: 'Send' }).click();
    await H.botSend(botPage, 5, { type: 'chat', text: 'Thanks, got it!' });
    await ben.page.locator('#chat-log li', { hasText: 'Thanks, got it!' }).waitFor();
    await ana.page.getByRole('button', { name: 'Raise hand' }).click();
    await H.botSend(botPage, 7, { type: 'hand', raised: true });
    await H.showTab(teacher.page, 'People');
    await teacher.page.locator('#hands-badge', { hasText: '2' }).waitFor();
    assert.deepEqual(await teacher.page.locator('#roster li.raised .name').allInnerTexts(), ['Ana Silva', 'Student 08']);
    await H.botSend(botPage, 7, { type: 'chat', text: 'What is the unit of force?' });
    await teacher.page.locator('#chat-badge', { hasText: '1' }).waitFor();
    await teacher.page.locator('.toast').first().waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('saves the teacher, student, phone and join pictures', async () => {
    // The stage decodes on every student page at the moment of the picture.
    for (const c of [ana, ben]) await H.waitForFrames(c.page);
    const sizes = {
      teacher: await picture(teacher.page, 'teacher'),
      student: await picture(ana.page, 'student'),
      phone: await picture(ben.page, 'phone'),
    };
    const visitor = await H.openClient(browser, H.joinUrl(server, cls.student.token), { viewport: LAPTOP });
    await visitor.page.getByText('Year 9 Physics').first().waitFor();
    await visitor.page.getByLabel('Your name').fill('Dev Patel');
    sizes.join = await picture(visitor.page, 'join');
    for (const [name, size] of Object.entries(sizes)) assert.ok(size <= MAX_BYTES, `${name}.png is ${Math.round(size / 1024)} KB (≤ ${MAX_BYTES / 1024})`);
  });

  it('no console errors', () => {
    for (const c of [teacher, ana, ben, carla]) assert.deepEqual(H.unexpectedErrors(c.errors), [], c.name);
  });
});
