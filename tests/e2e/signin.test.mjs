// Staff sign-in in a real browser: an admin adds a teacher with `aula account add`, the teacher
// opens the printed setup link, chooses a password (a common one is refused) and is signed in,
// then signs out and in again at /signin (a wrong password is refused) and lands on "My classes";
// the start page links to /signin. axe-core on every view.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as H from './harness.mjs';

describe('staff sign-in', () => {
  let server;
  let browser;

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a teacher added with the CLI sets a password from the link and signs in', async () => {
    const out = execFileSync(H.BIN, [
      'account', 'add', '--role', 'teacher', '--name', 'Ms Rivera', '--email', 'rivera@school.example',
      '--data-dir', server.dataDir,
    ], { cwd: server.dataDir, env: { ...process.env, AULA_PUBLIC_URL: server.url }, encoding: 'utf8' });
    const link = (out.match(/(http\S+\/setup#token=\w+)/) || [])[1];
    assert.ok(link, `no setup link in: ${out}`);

    const setup = await H.openClient(browser, link);
    const { page } = setup;
    await page.locator('#setup').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#setup-name').textContent(), 'Ms Rivera');
    assert.equal(await page.locator('#setup-email').textContent(), 'rivera@school.example');
    assert.ok(!page.url().includes('token='), 'the token leaves the address bar');
    await H.axeCheck(page, 'setup-form');
    await H.screenshot(page, 'setup-form');

    await page.fill('#setup-password', 'password1234');
    await page.fill('#setup-confirm', 'password1234');
    await page.click('#setup-form button[type=submit]');
    await H.eventually(async () => /common/.test(await page.locator('#setup-msg').textContent()), { what: 'common password refused' });

    await page.fill('#setup-password', 'violet staircase 42');
    await page.fill('#setup-confirm', 'violet staircase 42');
    await page.click('#setup-form button[type=submit]');
    await page.locator('#setup-done').waitFor({ state: 'visible' });
    await H.axeCheck(page, 'setup-done');
    const me = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
    assert.equal(me.account.email, 'rivera@school.example');
    const cookies = await setup.context.cookies();
    const session = cookies.find((c) => c.name === 'aula-session');
    assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
    assert.equal(session.sameSite, 'Lax');
    assert.deepEqual(H.unexpectedErrors(setup.errors, [/status of 400/]), []);

    // The used link now says so.
    const again = await H.openClient(browser, link);
    await again.page.locator('#setup-invalid').waitFor({ state: 'visible' });
    assert.match(await again.page.locator('#setup-invalid-text').textContent(), /expired or was already used/);
    await H.axeCheck(again.page, 'setup-invalid');
    await again.context.close();

    // Signed in, /signin goes on to "My classes"; signed out (there), it asks again, refuses a
    // wrong password and then takes her to "My classes".
    await page.goto(`${server.url}/signin`);
    await page.waitForURL(`${server.url}/classes`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${server.url}/signin`);
    await page.locator('#signin').waitFor({ state: 'visible' });
    assert.equal((await page.evaluate(async () => (await fetch('/api/v1/session')).status)), 401);
    await H.axeCheck(page, 'signin-form');

    await page.fill('#signin-email', 'rivera@school.example');
    await page.fill('#signin-password', 'not her password');
    await page.click('#signin-form button[type=submit]');
    await H.eventually(async () => (await page.locator('#signin-msg').textContent()) === 'Wrong email or password.', { what: 'wrong password refused' });
    await H.axeCheck(page, 'signin-wrong-password');

    await page.fill('#signin-password', 'violet staircase 42');
    await page.click('#signin-form button[type=submit]');
    await page.waitForURL(`${server.url}/classes`);
    assert.equal(await page.locator('#who-name').textContent(), 'Ms Rivera');
    assert.deepEqual(H.unexpectedErrors(setup.errors, [/status of 40[01]/]), []);
    await setup.context.close();

    // The start page links staff to the sign-in page.
    const dark = await H.openClient(browser, `${server.url}/`, { colorScheme: 'dark', viewport: { width: 390, height: 844 } });
    await dark.page.getByRole('link', { name: 'sign in' }).click();
    await dark.page.locator('#signin').waitFor({ state: 'visible' });
    assert.equal(new URL(dark.page.url()).pathname, '/signin');
    await H.axeCheck(dark.page, 'signin-dark-phone');
    await H.screenshot(dark.page, 'signin-dark-phone');
    await dark.context.close();
  });
});
