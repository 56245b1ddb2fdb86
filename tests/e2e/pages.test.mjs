// The start page, every "this did not work" message, phone width and keyboard use.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as H from './harness.mjs';

describe('pages and messages', () => {
  let server;
  let browser;
  const opened = [];

  async function open(url, opts = {}) {
    const c = await H.openClient(browser, url, opts);
    opened.push(c);
    return c;
  }

  async function fatalText(page) {
    const f = page.locator('#fatal');
    await f.waitFor({ state: 'visible' });
    return f.innerText();
  }

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('the start page creates a class and shows the teacher and student links', async () => {
    const c = await open(`${server.url}/`);
    await c.page.getByLabel('Class name').fill('Art 7A');
    // Class creation needs the admin key by default: the page asks for it.
    await c.page.getByLabel('Admin key').waitFor({ state: 'visible' });
    await c.page.getByLabel('Admin key').fill(server.adminKey);
    await c.page.getByRole('button', { name: 'Create a class' }).click();
    // The link fields exist (hidden) before the class is created: wait for the answer.
    await c.page.locator('#created').waitFor({ state: 'visible' });
    const student = await c.page.locator('#created').getByLabel('Student link', { exact: true }).inputValue();
    const teacher = await c.page.locator('#created').getByLabel('Teacher link', { exact: true }).inputValue();
    assert.ok(student.startsWith(`${server.url}/join#token=`), student);
    assert.ok(teacher.startsWith(`${server.url}/join#token=`), teacher);
    assert.match(await c.page.locator('#created').getByLabel(/Class code/).inputValue(), /^[a-z0-9]{10}$/);
    await H.screenshot(c.page, 'start-page-created');
    await c.page.getByRole('link', { name: 'Enter as teacher' }).click();
    await c.page.getByText('You are joining as the teacher.').waitFor();
    await H.joinAs(c, 'Ms Ito');
    assert.equal(await c.page.locator('#title').innerText(), 'Art 7A');
  });

  it('a pasted student link leads to the join form as a student', async () => {
    const cls = await H.createClass(server, 'Paste');
    const c = await open(`${server.url}/`);
    await c.page.getByLabel('Class link or code').fill(cls.student.url);
    await c.page.getByRole('button', { name: 'Continue' }).click();
    await c.page.getByText('You are joining as a student.').waitFor();
  });

  it('a typed class code leads to the join form as a student, and a wrong code says so', async () => {
    const cls = await H.createClass(server, 'Code');
    const c = await open(`${server.url}/`);
    await c.page.getByLabel('Class link or code').fill('nosuchcode');
    await c.page.getByRole('button', { name: 'Continue' }).click();
    await c.page.getByText('That does not look like a class link or code.').waitFor();
    await c.page.getByLabel('Class link or code').fill(cls.id.toUpperCase());
    await c.page.getByRole('button', { name: 'Continue' }).click();
    await c.page.getByText('You are joining as a student.').waitFor();
    await H.joinAs(c, 'Dev');
    assert.equal(await c.page.locator('#title').innerText(), 'Code');
  });

  it('a broken link, a forged token and an expired token each say what is wrong', async () => {
    const broken = await open(`${server.url}/join#token=not-a-token`);
    assert.match(await fatalText(broken.page), /This link does not work/);

    const cls = await H.createClass(server, 'Tokens');
    const [h, p] = cls.student.token.split('.');
    const forged = await open(H.joinUrl(server, `${h}.${p}.${'A'.repeat(43)}`), { name: 'Eve' }).catch((e) => e);
    const forgedPage = forged.page || opened[opened.length - 1].page;
    assert.match(await fatalText(forgedPage), /This link does not work/);

    const expired = execFileSync(H.BIN, ['token', '--data-dir', server.dataDir, '--class', cls.id, '--ttl', '1'], { encoding: 'utf8', cwd: server.dataDir })
      .trim().split(/\s+/).find((w) => w.split('.').length === 3 && w.length > 40) || '';
    assert.ok(expired, 'aula token printed a token');
    await H.sleep(2100);
    const e = await open(H.joinUrl(server, expired.replace(/^.*#token=/, '')));
    assert.match(await fatalText(e.page), /This link has expired/);
  });

  it('a locked class makes new students wait, and ending the lesson tells everyone', async () => {
    const cls = await H.createClass(server, 'Lockable');
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Mr Lee' });
    const student = await open(H.joinUrl(server, cls.student.token), { name: 'Ola' });
    await teacher.page.getByRole('button', { name: 'Lock class' }).click();
    await teacher.page.getByRole('button', { name: 'Unlock class' }).waitFor();
    const late = await open(H.joinUrl(server, cls.student.token));
    await late.page.getByLabel('Your name').fill('Late Larry');
    await late.page.getByRole('button', { name: 'Join', exact: true }).click();
    // Not refused: he waits, and the teacher sees him.
    const waiting = late.page.locator('#waiting');
    await waiting.waitFor({ state: 'visible' });
    assert.match(await waiting.innerText(), /The teacher has locked the class/);
    await teacher.page.locator('#waiting-list li', { hasText: 'Late Larry' }).waitFor();

    await teacher.page.getByRole('button', { name: 'End class' }).click();
    await teacher.page.getByRole('dialog').getByRole('button', { name: 'End class' }).click();
    // Everyone is told: the lesson has ended, until the teacher starts the class again.
    for (const c of [student, late]) {
      const w = c.page.locator('#waiting');
      await H.eventually(async () => /This lesson has ended/.test(await w.innerText()), { what: `${c.name || 'Late Larry'} sees the lesson ended` });
    }
    await teacher.page.locator('#ended', { hasText: 'The lesson has ended' }).waitFor();
    await H.screenshot(student.page, 'student-class-ended');
  });

  it('a refused screen share and an unsupported browser are explained', async () => {
    const cls = await H.createClass(server, 'Refusals');
    const context = await browser.newContext();
    await context.addInitScript(() => {
      navigator.mediaDevices.getDisplayMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));
    });
    const page = await context.newPage();
    await page.goto(H.joinUrl(server, cls.teacher.token));
    const c = { page, context, errors: [], name: 'Ms Refused' };
    await H.joinAs(c, 'Ms Refused');
    await page.getByRole('button', { name: 'Share screen' }).click();
    await page.locator('.toast', { hasText: 'Screen sharing was not allowed' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Share screen' }).count(), 1, 'still offers to share');

    const old = await browser.newContext();
    await old.addInitScript(() => {
      delete window.RTCPeerConnection;
    });
    const oldPage = await old.newPage();
    await oldPage.goto(H.joinUrl(server, cls.student.token));
    assert.match(await fatalText(oldPage), /This browser is not supported/);
  });

  it('over plain http on a LAN address the page says why sharing is off and how to fix it', async (t) => {
    // Browsers allow screen, camera and microphone only over HTTPS or on localhost (127.0.0.0/8
    // counts as local): the page must be opened by a non-loopback address of this machine.
    const lan = (H.interfaceCidrs()[0] || '').split('/')[0];
    if (!lan) return t.skip('this machine has no non-loopback IPv4 address');
    const lanServer = await H.startServer({ host: lan });
    const clients = [];
    try {
      assert.ok(lanServer.url.startsWith(`http://${lan}:`), lanServer.url);
      const cls = await H.createClass(lanServer, 'Plain http');
      const student = await H.openClient(browser, H.joinUrl(lanServer, cls.student.token), { name: 'Pat' });
      const teacher = await H.openClient(browser, H.joinUrl(lanServer, cls.teacher.token), { name: 'Ms Lan' });
      clients.push(student, teacher);
      for (const c of [student, teacher]) {
        assert.equal(await c.page.evaluate(() => window.isSecureContext), false, 'a LAN address over http');
        const note = c.page.locator('#perm-note');
        await note.filter({ hasText: 'HTTPS' }).waitFor();
        const text = await note.innerText();
        assert.match(text, /only over HTTPS or on this computer \(localhost\)/, text);
        assert.match(text, /https:\/\//, `says what to do: ${text}`);
        assert.doesNotMatch(text, /This browser cannot share a screen/, text);
      }
      assert.equal(await teacher.page.getByRole('button', { name: 'Share screen' }).count(), 0, 'no Share button');
      const stage = await teacher.page.locator('#stage-empty').innerText();
      assert.doesNotMatch(stage, /Press/, `the stage does not point at a missing button: ${stage}`);
      await H.screenshot(teacher.page, 'teacher-plain-http-lan');
    } finally {
      for (const c of clients) await c.context.close();
      await lanServer.stop();
    }
  });

  it('works at phone width without sideways scrolling', async () => {
    const cls = await H.createClass(server, 'Phone');
    const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Phone' });
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    const phone = await open(H.joinUrl(server, cls.student.token), { name: 'Pat', viewport: { width: 375, height: 740 } });
    await H.waitForFrames(phone.page);
    await phone.page.getByRole('textbox', { name: 'Message' }).fill('hello from my phone');
    await phone.page.getByRole('button', { name: 'Send' }).click();
    await phone.page.locator('#chat-log', { hasText: 'hello from my phone' }).waitFor();
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal overflow (got ${overflow}px)`);
    await H.screenshot(phone.page, 'student-view-phone');
    const tphone = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Phone 2', viewport: { width: 375, height: 740 } });
    const o2 = await tphone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(o2 <= 0, `teacher view: no horizontal overflow (got ${o2}px)`);
    await H.screenshot(tphone.page, 'teacher-view-phone');
  });

  it('the teacher can share the screen with the keyboard alone', async () => {
    const cls = await H.createClass(server, 'Keyboard');
    const c = await open(H.joinUrl(server, cls.teacher.token));
    await c.page.keyboard.type('Ms Keys');
    await c.page.keyboard.press('Enter');
    await c.page.locator('#room').waitFor({ state: 'visible' });
    let found = false;
    for (let i = 0; i < 30 && !found; i++) {
      await c.page.keyboard.press('Tab');
      found = await c.page.evaluate(() => document.activeElement && document.activeElement.textContent === 'Share screen');
    }
    assert.ok(found, 'Tab reaches "Share screen"');
    await c.page.keyboard.press('Enter');
    await c.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
  });

  it('no console errors on any page', () => {
    for (const c of opened) {
      // A refused join closes the WebSocket with 4001; that is not an error the browser logs.
      assert.deepEqual(c.errors, [], `console errors on ${c.page.url()}`);
    }
  });
});
