// Who gets into a class, as a teacher sees it in real headless Chromium: the role badge comes
// from the server's `role` (a name cannot fake it), a student knocking at a locked class waits and
// shows in the teacher's waiting list, refused joins show in the roster,
// and a removed student stays out (same browser, same link) until the teacher readmits them.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('joining: roles, knocking, removal and readmit', () => {
  let server;
  let browser;
  let cls;
  let teacher;
  let ana;
  let impostor;

  before(async () => {
    server = await H.startServer();
    cls = await H.createClass(server, 'History 7A');
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Rivera' });
    ana = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ana' });
    impostor = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ms Rivera · Teacher' });
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('only the real teacher has the teacher badge, in every roster', async () => {
    for (const c of [teacher, ana]) {
      const rows = c.page.locator('#roster li');
      await H.eventually(async () => (await rows.count()) === 3, { what: `${c.name} sees three people` });
      const named = (re) => c.page.locator('#roster li').filter({ has: c.page.locator('.name', { hasText: re }) });
      const real = named(/^Ms Rivera( \(you\))?$/);
      const fake = named(/^Ms Rivera · Teacher/);
      assert.equal(await real.count(), 1);
      assert.equal(await fake.count(), 1);
      assert.equal(await real.locator('.role-badge[data-role="teacher"]').count(), 1, `${c.name}: the teacher's badge`);
      assert.equal(await fake.locator('.role-badge').count(), 0, `${c.name}: no badge on a student's name`);
    }
    await H.screenshot(teacher.page, 'teacher-roster-badge');
  });

  it('the teacher sees a student knocking at the locked class, and can turn her away', async () => {
    await teacher.page.getByRole('button', { name: 'Lock class' }).click();
    await teacher.page.getByRole('button', { name: 'Unlock class' }).waitFor();
    const zoe = await H.openClient(browser, H.joinUrl(server, cls.student.token));
    await zoe.page.getByLabel('Your name').fill('Zoe');
    await zoe.page.getByRole('button', { name: 'Join', exact: true }).click();
    // She is not refused: she waits, and the teacher sees her waiting.
    const waiting = zoe.page.locator('#waiting');
    await waiting.waitFor({ state: 'visible' });
    assert.match(await waiting.innerText(), /Waiting for the teacher to let you in/);
    assert.match(await waiting.innerText(), /The teacher has locked the class/);
    const knock = teacher.page.locator('#waiting-room');
    await knock.waitFor({ state: 'visible' });
    assert.match(await knock.innerText(), /Zoe/);
    await teacher.page.getByRole('button', { name: 'Unlock class' }).click();
    await teacher.page.getByRole('button', { name: 'Lock class' }).waitFor();
    // Unlocking lets nobody in by itself; the teacher declines her.
    assert.ok(await waiting.isVisible(), 'still waiting after the unlock');
    await teacher.page.getByRole('button', { name: 'Decline Zoe' }).click();
    const fatal = zoe.page.locator('#fatal');
    await fatal.waitFor({ state: 'visible' });
    assert.match(await fatal.innerText(), /The teacher did not let you in/);
    await knock.waitFor({ state: 'hidden' });
    await zoe.context.close();
  });

  it('a removed student is refused with the same link in the same browser until readmitted', async () => {
    await H.personAction(teacher.page, 'Ana', 'Remove from the class…');
    await teacher.page.getByRole('button', { name: 'Remove', exact: true }).click();
    await ana.page.locator('#fatal').waitFor({ state: 'visible' });
    const removed = teacher.page.locator('#removed-list li', { hasText: 'Ana' });
    await removed.waitFor();
    assert.ok(await teacher.page.locator('#removed-section').isVisible());

    // Same browser (its localStorage keeps the browser id), same shared link: refused.
    await ana.page.goto('about:blank');
    await ana.page.goto(H.joinUrl(server, cls.student.token));
    await ana.page.getByLabel('Your name').fill('Ana again');
    await ana.page.getByRole('button', { name: 'Join', exact: true }).click();
    const fatal = ana.page.locator('#fatal');
    await H.eventually(async () => /removed from this class/.test(await fatal.innerText()), { what: 'Ana refused as removed' });
    const note = teacher.page.locator('#knock-note');
    await H.eventually(async () => /Ana again could not join: you removed them/.test(await note.innerText()), { what: 'the teacher sees the removed student knocking' });
    await H.screenshot(teacher.page, 'teacher-removed-list');

    await teacher.page.getByRole('button', { name: 'Readmit Ana' }).click();
    await teacher.page.locator('#removed-section').waitFor({ state: 'hidden' });
    await ana.page.goto('about:blank');
    await ana.page.goto(H.joinUrl(server, cls.student.token));
    await H.joinAs(ana, 'Ana');
    await teacher.page.locator('#roster li', { hasText: 'Ana' }).waitFor();
  });

  it('no console errors on any page', () => {
    for (const c of [teacher, ana, impostor]) {
      assert.deepEqual(H.unexpectedErrors(c.errors, [/WebSocket/]), [], `console errors on ${c.name}'s page`);
    }
  });
});
