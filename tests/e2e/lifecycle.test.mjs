// A class's life as people see it in real Chromium: the waiting room (a student waits, the teacher
// admits, declines or admits all), ending a lesson (students see "This lesson has ended" until the
// teacher starts it again; the teacher's end screen lists who attended), Leave and Rejoin
// (confirmation on a phone, reopening the link in the same tab), and a server restart — SIGTERM
// and SIGKILL — after which every page is back with its own id, hand and chat.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
// While the server is down the browser logs each failed WebSocket attempt; that is expected here.
const OUTAGE_NOISE = [/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/];

/** Opens the link, types the name and presses Join, without waiting for the room. */
async function knock(browser, url, name, viewport = PHONE) {
  const c = await H.openClient(browser, url, { viewport });
  c.name = name;
  await c.page.getByLabel('Your name').fill(name);
  await c.page.getByRole('button', { name: 'Join', exact: true }).click();
  return c;
}

/** Both sizes the issue asks for, one screenshot each. */
async function screenshots(page, name) {
  const size = page.viewportSize();
  for (const [label, vp] of [['laptop', LAPTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await H.screenshot(page, `${name}-${label}`);
  }
  await page.setViewportSize(size);
}

describe('waiting room, end and start, leave and rejoin, restart', () => {
  let server;
  let browser;
  const clients = [];
  const open = async (...args) => {
    const c = await H.openClient(browser, ...args);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('the waiting room: a student waits; the teacher admits, declines and admits all', async () => {
    const cls = await H.createClass(server, 'Waiting room', { topology: 'p2p' });
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera', viewport: LAPTOP });
    const toggle = teacher.page.getByRole('button', { name: 'Waiting room' });
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
    await toggle.click();
    await H.eventually(async () => (await toggle.getAttribute('aria-pressed')) === 'true', { what: 'the waiting room on' });

    const zoe = await knock(browser, H.joinUrl(server, cls.student.token), 'Zoe');
    clients.push(zoe);
    const waiting = zoe.page.locator('#waiting');
    await waiting.waitFor({ state: 'visible' });
    assert.match(await waiting.innerText(), /Waiting for the teacher to let you in…/);
    assert.ok(await zoe.page.getByRole('button', { name: 'Leave' }).isVisible(), 'a Leave button');
    await screenshots(zoe.page, 'lifecycle-student-waiting');
    await H.axeCheck(zoe.page, 'lifecycle-student-waiting');

    const panel = teacher.page.locator('#waiting-room');
    await panel.waitFor({ state: 'visible' });
    assert.match(await panel.innerText(), /Zoe/);
    assert.match(await panel.innerText(), /waiting just now/);
    await screenshots(teacher.page, 'lifecycle-teacher-waiting-list');
    await H.axeCheck(teacher.page, 'lifecycle-teacher-waiting-list');
    await teacher.page.getByRole('button', { name: 'Admit Zoe' }).click();
    await zoe.page.locator('#room').waitFor({ state: 'visible' });
    await teacher.page.locator('#roster li', { hasText: 'Zoe' }).waitFor();
    await panel.waitFor({ state: 'hidden' });

    const bo = await knock(browser, H.joinUrl(server, cls.student.token), 'Bo');
    clients.push(bo);
    await teacher.page.getByRole('button', { name: 'Decline Bo' }).click();
    const fatal = bo.page.locator('#fatal');
    await fatal.waitFor({ state: 'visible' });
    assert.match(await fatal.innerText(), /The teacher did not let you in/);
    await H.screenshot(bo.page, 'lifecycle-student-declined-phone');
    await H.axeCheck(bo.page, 'lifecycle-student-declined');

    const cy = await knock(browser, H.joinUrl(server, cls.student.token), 'Cy');
    const di = await knock(browser, H.joinUrl(server, cls.student.token), 'Di');
    clients.push(cy, di);
    const admitAll = teacher.page.getByRole('button', { name: 'Admit all' });
    await admitAll.waitFor({ state: 'visible' });
    assert.equal(await teacher.page.locator('#waiting-list li').count(), 2);
    await admitAll.click();
    for (const c of [cy, di]) await c.page.locator('#room').waitFor({ state: 'visible' });
    await panel.waitFor({ state: 'hidden' });
    assert.equal(await teacher.page.locator('#roster li').count(), 4, 'the teacher, Zoe, Cy and Di');
  });

  it('End: students see the lesson has ended until the teacher starts it again; her summary lists who attended', async () => {
    const cls = await H.createClass(server, 'Ending', { topology: 'p2p' });
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Mr Lee', viewport: LAPTOP });
    const ana = await open(H.joinUrl(server, cls.student.token), { name: 'Ana', viewport: PHONE });
    const bo = await open(H.joinUrl(server, cls.student.token), { name: 'Bo', viewport: LAPTOP });
    await teacher.page.locator('#roster li', { hasText: 'Bo' }).waitFor();

    await teacher.page.getByRole('button', { name: 'End class' }).click();
    const dialog = teacher.page.getByRole('dialog');
    assert.match(await dialog.innerText(), /This lesson has ended/);
    assert.match(await dialog.innerText(), /until you start the class again/);
    await dialog.getByRole('button', { name: 'End class' }).click();

    const ended = teacher.page.locator('#ended');
    await ended.waitFor({ state: 'visible' });
    const text = await ended.innerText();
    assert.match(text, /The lesson has ended/);
    assert.match(text, /The lesson lasted/);
    assert.match(text, /2 students attended/);
    for (const name of ['Mr Lee', 'Ana', 'Bo']) {
      assert.equal(await teacher.page.locator('#summary-rows th', { hasText: name }).count(), 1, `${name} in the summary`);
    }
    await screenshots(teacher.page, 'lifecycle-teacher-end-summary');
    await H.axeCheck(teacher.page, 'lifecycle-teacher-end-summary');

    // Students: "This lesson has ended", and no way in until the teacher starts it again.
    for (const s of [ana, bo]) {
      const w = s.page.locator('#waiting');
      await H.eventually(async () => /This lesson has ended/.test(await w.innerText()), { what: `${s.name} sees the lesson ended` });
    }
    await screenshots(ana.page, 'lifecycle-student-lesson-ended');
    await H.axeCheck(ana.page, 'lifecycle-student-lesson-ended');
    const late = await knock(browser, H.joinUrl(server, cls.student.token), 'Cleo');
    clients.push(late);
    const lateWait = late.page.locator('#waiting');
    await H.eventually(async () => /This lesson has ended/.test(await lateWait.innerText()), { what: 'a new student waits too' });
    await H.sleep(1000);
    assert.ok(await lateWait.isVisible(), 'still waiting: not let in');

    await teacher.page.getByRole('button', { name: 'Start the class again' }).click();
    await teacher.page.locator('#room').waitFor({ state: 'visible' });
    for (const s of [ana, bo, late]) await s.page.locator('#room').waitFor({ state: 'visible', timeout: 15_000 });
    await teacher.page.locator('#roster li', { hasText: 'Cleo' }).waitFor();

    // A teacher opening her link while the lesson has ended gets "Start the class again" too.
    await teacher.page.getByRole('button', { name: 'End class' }).click();
    await teacher.page.getByRole('dialog').getByRole('button', { name: 'End class' }).click();
    await ended.waitFor({ state: 'visible' });
    const again = await open(H.joinUrl(server, cls.teacher.token), { viewport: LAPTOP });
    await again.page.getByLabel('Your name').fill('Mr Lee');
    await again.page.getByRole('button', { name: 'Join', exact: true }).click();
    await again.page.getByRole('button', { name: 'Start the class again' }).waitFor();
    assert.match(await again.page.locator('#ended').innerText(), /Ana/);
    await again.page.getByRole('button', { name: 'Start the class again' }).click();
    await again.page.locator('#room').waitFor({ state: 'visible' });
  });

  it('Leave asks on a phone, then "You left the class" with Rejoin; the link reopens in the same tab', async () => {
    const cls = await H.createClass(server, 'Leaving', { topology: 'p2p' });
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Ito', viewport: LAPTOP });
    const eva = await open(H.joinUrl(server, cls.student.token), { name: 'Eva', viewport: PHONE });
    const leave = eva.page.getByRole('button', { name: 'Leave' });
    const box = await leave.boundingBox();
    assert.ok(box && box.width < PHONE.width / 2, `Leave is not a full-width bar (${box && box.width} px)`);
    await H.screenshot(eva.page, 'lifecycle-student-room-phone');

    await leave.click();
    const dialog = eva.page.getByRole('dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.match(await dialog.innerText(), /Leave the class\?/);
    await H.screenshot(eva.page, 'lifecycle-leave-confirm-phone');
    await H.axeCheck(eva.page, 'lifecycle-leave-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.ok(await eva.page.locator('#room').isVisible(), 'Cancel keeps her in the class');

    await leave.click();
    await dialog.getByRole('button', { name: 'Leave' }).click();
    const left = eva.page.locator('#ended');
    await left.waitFor({ state: 'visible' });
    assert.match(await left.innerText(), /You left the class/);
    await teacher.page.locator('#roster li', { hasText: 'Eva' }).waitFor({ state: 'detached' });
    await screenshots(eva.page, 'lifecycle-student-left');
    await H.axeCheck(eva.page, 'lifecycle-student-left');

    await eva.page.getByRole('button', { name: 'Rejoin' }).click();
    await eva.page.locator('#room').waitFor({ state: 'visible' });
    await teacher.page.locator('#roster li', { hasText: 'Eva' }).waitFor();

    // Leave again, then open the same link in the same tab: the join form, and in again.
    await leave.click();
    await dialog.getByRole('button', { name: 'Leave' }).click();
    await left.waitFor({ state: 'visible' });
    await eva.page.goto(H.joinUrl(server, cls.student.token));
    await eva.page.locator('#join').waitFor({ state: 'visible' });
    await H.joinAs(eva, 'Eva');
    await teacher.page.locator('#roster li', { hasText: 'Eva' }).waitFor();
  });

  for (const signal of ['SIGTERM', 'SIGKILL']) {
    it(`after ${signal} and a restart, every page is back with its id, hand, lock and chat`, async () => {
      const cls = await H.createClass(server, `Restart ${signal}`, { topology: 'p2p' });
      const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Mr Okafor', viewport: LAPTOP });
      const dana = await open(H.joinUrl(server, cls.student.token), { name: 'Dana', viewport: PHONE });
      await dana.page.evaluate(() => window.aula && true);
      await dana.page.locator('#btn-hand').click();
      await H.eventually(() => dana.page.evaluate(() => window.aula.me.hand_raised), { what: 'the hand up' });
      await H.showTab(teacher.page, 'Chat');
      await teacher.page.locator('#chat-input').fill(`Before the ${signal}`);
      await teacher.page.locator('#chat-input').press('Enter');
      await dana.page.locator('#chat-log li', { hasText: `Before the ${signal}` }).waitFor();
      await teacher.page.getByRole('button', { name: 'Lock class' }).click();
      await teacher.page.getByRole('button', { name: 'Unlock class' }).waitFor();
      // Someone is knocking when the server goes down.
      const wendy = await knock(browser, H.joinUrl(server, cls.student.token), 'Wendy');
      clients.push(wendy);
      await wendy.page.locator('#waiting').waitFor({ state: 'visible' });
      await teacher.page.locator('#waiting-list li', { hasText: 'Wendy' }).waitFor();
      const ids = {
        teacher: await teacher.page.evaluate(() => window.aula.me.id),
        dana: await dana.page.evaluate(() => window.aula.me.id),
      };
      const welcomes = await dana.page.evaluate(() => window.aula.welcomes);
      // A crash loses at most the last second of changes.
      if (signal === 'SIGKILL') await H.sleep(1500);

      const { port, dataDir, adminKey } = server;
      await server.stop(signal);
      server = await H.startServer({ port, dataDir, adminKey });
      for (const [who, c] of [['teacher', teacher], ['dana', dana]]) {
        await H.eventually(async () => {
          const s = await c.page.evaluate(() => ({ status: window.aula.status, welcomes: window.aula.welcomes }));
          return s.status === 'connected' && s.welcomes > (who === 'dana' ? welcomes : 0);
        }, { what: `${who} back`, timeoutMs: 15_000, everyMs: 100 });
        assert.equal(await c.page.evaluate(() => window.aula.me.id), ids[who], `${who} keeps the id`);
      }
      assert.equal(await dana.page.evaluate(() => window.aula.me.hand_raised), true, 'the hand is still up');
      await teacher.page.getByRole('button', { name: 'Unlock class' }).waitFor();
      await H.showTab(teacher.page, 'People');
      const row = teacher.page.locator('#roster li', { hasText: 'Dana' });
      await row.waitFor();
      // The server kept the chat: a second teacher page gets it in its welcome.
      const other = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Second', viewport: LAPTOP });
      await H.showTab(other.page, 'Chat');
      await other.page.locator('#chat-log li', { hasText: `Before the ${signal}` }).waitFor();
      assert.equal(await dana.page.locator('#chat-log li', { hasText: `Before the ${signal}` }).count(), 1, 'the chat line once');
      // She is still waiting (her page knocked again), and the teacher sees her again.
      assert.ok(await wendy.page.locator('#waiting').isVisible(), 'Wendy still waits');
      await teacher.page.locator('#waiting-list li', { hasText: 'Wendy' }).waitFor();
      // The lock too: a newcomer waits.
      const late = await knock(browser, H.joinUrl(server, cls.student.token), 'Late Larry');
      clients.push(late);
      await late.page.locator('#waiting').waitFor({ state: 'visible' });
      await screenshots(dana.page, `lifecycle-student-after-${signal.toLowerCase()}`);
      await screenshots(teacher.page, `lifecycle-teacher-after-${signal.toLowerCase()}`);
    });
  }

  it('an sfu class: after SIGKILL the student decodes the teacher\'s screen again within 10 s of the restart', async () => {
    const cls = await H.createClass(server, 'Restart SFU', { topology: 'sfu' });
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Sfu', viewport: LAPTOP });
    const student = await open(H.joinUrl(server, cls.student.token), { name: 'Sol', viewport: LAPTOP });
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await H.waitForFrames(student.page);
    const id = await student.page.evaluate(() => window.aula.me.id);
    await H.sleep(1500);
    const { port, dataDir, adminKey } = server;
    await server.stop('SIGKILL');
    server = await H.startServer({ port, dataDir, adminKey });
    const upAt = Date.now();
    await H.eventually(async () => (await student.page.evaluate(() => window.aula.status)) === 'connected', { what: 'the student back', timeoutMs: 10_000, everyMs: 100 });
    assert.equal(await student.page.evaluate(() => window.aula.me.id), id, 'the same id');
    // Frames on a new link to the SFU (the old one died with the server).
    const before = (await H.stageVideo(student.page)).framesDecoded;
    await H.eventually(async () => (await H.stageVideo(student.page)).framesDecoded > before + 10, { what: 'frames from the new SFU', timeoutMs: 10_000, everyMs: 100 });
    console.log(`sfu class: frames again ${Date.now() - upAt} ms after the server was back`);
    assert.ok(Date.now() - upAt < 10_000);
  });

  it('no unexpected console errors', () => {
    for (const c of clients) {
      assert.deepEqual(H.unexpectedErrors(c.errors, OUTAGE_NOISE), [], `console errors on ${c.name}'s page`);
    }
  });
});
