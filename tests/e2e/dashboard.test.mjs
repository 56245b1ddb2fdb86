// "My classes" in a real browser: a teacher added with the CLI signs in and lands on her
// dashboard, creates a class, copies the student link (clipboard), a student joins with it in
// another browser, the teacher opens the class as teacher and sees the student; she renames and
// (after a confirm dialog) deletes a class; the start page creates one for her without the admin
// key. A second teacher sees none of hers. Not signed in, /classes sends you to /signin.
// axe-core in light and dark at 1366×768 and 390×844.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('my classes dashboard', () => {
  let server;
  let browser;

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
    await H.addTeacher(server, 'Ms Rivera', 'rivera@school.example', 'violet staircase 42');
    await H.addTeacher(server, 'Mr Okafor', 'okafor@school.example', 'amber lighthouse 17');
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a teacher creates a class, shares the student link and teaches it; others do not see it', async () => {
    const rivera = await H.signIn(browser, server, 'rivera@school.example', 'violet staircase 42', { viewport: { width: 1366, height: 768 } });
    const { page } = rivera;
    assert.equal(await page.locator('#who-name').textContent(), 'Ms Rivera');
    await page.locator('#class-list-empty').waitFor({ state: 'visible' });
    await H.axeCheck(page, 'dashboard-empty');

    await page.getByLabel('Class name').fill('Year 9 Physics');
    await page.getByLabel('How media flows').selectOption('p2p');
    await page.getByRole('button', { name: 'Create class' }).click();
    const item = page.locator('#class-list li', { hasText: 'Year 9 Physics' });
    await item.waitFor();
    assert.match(await item.textContent(), /Direct/);
    await page.getByLabel('Class name').fill('Year 10 Chemistry');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.locator('#class-list li', { hasText: 'Year 10 Chemistry' }).waitFor();
    const mine = await page.evaluate(async () => (await fetch('/api/v1/classes')).json());
    assert.deepEqual(mine.map((c) => c.name).sort(), ['Year 10 Chemistry', 'Year 9 Physics']);
    const physics = mine.find((c) => c.name === 'Year 9 Physics');
    assert.equal(physics.topology, 'p2p');
    await H.axeCheck(page, 'dashboard-light-desktop');
    await H.screenshot(page, 'dashboard-light-desktop');

    // The class code is the class id; the student link comes from the clipboard.
    await page.getByRole('button', { name: 'Copy class code: Year 9 Physics' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), physics.id);
    await page.getByRole('button', { name: 'Copy student link: Year 9 Physics' }).click();
    await H.eventually(async () => /\/join#token=/.test(await page.evaluate(() => navigator.clipboard.readText())), { what: 'student link copied' });
    const studentLink = await page.evaluate(() => navigator.clipboard.readText());
    assert.ok(studentLink.startsWith(`${server.url}/join#token=`), studentLink);

    // Dark, on a phone.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 390, height: 844 });
    await H.axeCheck(page, 'dashboard-dark-phone');
    await H.screenshot(page, 'dashboard-dark-phone');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1366, height: 768 });

    // Rename, then delete after the confirm dialog (cancelling first keeps the class).
    await page.getByRole('button', { name: 'Rename: Year 10 Chemistry' }).click();
    await page.locator('#rename-dialog').waitFor({ state: 'visible' });
    await H.axeCheck(page, 'dashboard-rename');
    await page.getByLabel('New name').fill('Year 10 Chemistry B');
    await page.locator('#rename-form').getByRole('button', { name: 'Rename' }).click();
    await page.locator('#class-list li', { hasText: 'Year 10 Chemistry B' }).waitFor();
    await page.getByRole('button', { name: 'Delete: Year 10 Chemistry B' }).click();
    await page.locator('#delete-dialog').waitFor({ state: 'visible' });
    assert.match(await page.locator('#delete-text').textContent(), /Year 10 Chemistry B/);
    await H.axeCheck(page, 'dashboard-delete-confirm');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#delete-dialog').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#class-list li').count(), 2);
    await page.getByRole('button', { name: 'Delete: Year 10 Chemistry B' }).click();
    await page.getByRole('button', { name: 'Delete class' }).click();
    await page.locator('#class-list li', { hasText: 'Year 10 Chemistry B' }).waitFor({ state: 'detached' });
    assert.equal(await page.locator('#class-list li').count(), 1);

    // A second teacher sees none of her classes and may not open one.
    const okafor = await H.signIn(browser, server, 'okafor@school.example', 'amber lighthouse 17', { colorScheme: 'dark', viewport: { width: 390, height: 844 } });
    await okafor.page.locator('#class-list-empty').waitFor({ state: 'visible' });
    assert.equal(await okafor.page.locator('#class-list li').count(), 0);
    assert.equal(await okafor.page.evaluate(async (id) => (await fetch(`/api/v1/classes/${id}`)).status, physics.id), 403);
    await H.axeCheck(okafor.page, 'dashboard-empty-dark-phone');
    await okafor.context.close();

    // A student joins with the copied link; the teacher opens the class and sees her.
    const student = await H.openClient(browser, studentLink, { name: 'Ana' });
    await page.getByRole('button', { name: 'Open as teacher: Year 9 Physics' }).click();
    await page.waitForURL(/\/join#token=/);
    await H.joinAs(rivera, 'Ms Rivera');
    await page.locator('#roster li', { hasText: 'Ana' }).waitFor();
    assert.deepEqual(H.unexpectedErrors(student.errors), []);
    await student.context.close();

    // Signed in, the start page creates a class without the admin key; it is hers.
    await page.goto(`${server.url}/`);
    await H.eventually(async () => (await page.locator('#create').getAttribute('data-key-needed')) === 'false', { what: 'no key asked' });
    assert.ok(await page.locator('#create-key-field').isHidden());
    await page.fill('#create-name', 'Drop-in help');
    await page.getByRole('button', { name: 'Create a class' }).click();
    await page.locator('#created').waitFor({ state: 'visible' });
    await page.goto(`${server.url}/classes`);
    await page.locator('#class-list li', { hasText: 'Drop-in help' }).waitFor();

    // Signing out ends the session; /classes then asks to sign in.

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${server.url}/signin`);
    await page.goto(`${server.url}/classes`);
    await page.waitForURL(`${server.url}/signin`);
    assert.deepEqual(H.unexpectedErrors(rivera.errors, [/status of 401/]), []);
    await rivera.context.close();
  });
});
