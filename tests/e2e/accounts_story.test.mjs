// School accounts, the whole story in a real browser: an admin adds a teacher with
// `aula account add`; the teacher opens the printed setup link, chooses her password on /setup,
// signs in at /signin, creates a class on "My classes", copies the student link (clipboard); a
// student joins with it and a class-list student with her personal link, each in another
// browser; the teacher opens the class as teacher, sees them and ends the lesson for everyone;
// back on "My classes", "Past lessons" shows the lesson and who attended (name, time present;
// the teacher and the personal link marked) and how long attendance is kept, and the attendance CSV
// downloads with the same figures. A second lesson; one lesson's attendance deleted (after a
// cancelled and a confirmed question), then all. axe-core on the view in light at 1366×768 and
// dark at 390×844, and on the delete question. A server that keeps no attendance says so.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as H from './harness.mjs';
import { duration } from '../../web-client/js/ui/ended.js';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const EMAIL = 'rivera@school.example';
const PASSWORD = 'violet staircase 42';

/** The class's recorded lessons, as the dashboard's page may fetch them (session cookie). */
const lessons = (page, id) => page.evaluate(async (cid) => (await fetch(`/api/v1/classes/${cid}/sessions`)).json(), id);

describe('school accounts: from the CLI to the attendance', () => {
  let server;
  let browser;
  const clients = [];

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    for (const c of clients) await c.context.close().catch(() => {});
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a CLI-made teacher sets her password, teaches a class and sees who attended', async () => {
    // The admin adds the teacher; the CLI prints her setup link.
    const out = execFileSync(H.BIN, [
      'account', 'add', '--role', 'teacher', '--name', 'Ms Rivera', '--email', EMAIL, '--data-dir', server.dataDir,
    ], { cwd: server.dataDir, env: { ...process.env, AULA_PUBLIC_URL: server.url }, encoding: 'utf8' });
    const setupLink = (out.match(/(http\S+\/setup#token=\w+)/) || [])[1];
    assert.ok(setupLink, `no setup link in: ${out}`);

    // She opens it in her browser and chooses a password there.
    const setup = await H.openClient(browser, setupLink, { viewport: LAPTOP });
    clients.push(setup);
    await setup.page.locator('#setup').waitFor({ state: 'visible' });
    assert.equal(await setup.page.locator('#setup-name').textContent(), 'Ms Rivera');
    await setup.page.fill('#setup-password', PASSWORD);
    await setup.page.fill('#setup-confirm', PASSWORD);
    await setup.page.click('#setup-form button[type=submit]');
    await setup.page.locator('#setup-done').waitFor({ state: 'visible' });
    assert.deepEqual(H.unexpectedErrors(setup.errors), []);
    await setup.context.close();

    // Later, on another browser: /classes asks her to sign in; she does and lands there.
    const rivera = await H.openClient(browser, `${server.url}/classes`, { viewport: LAPTOP });
    clients.push(rivera);
    const { page } = rivera;
    await rivera.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    await page.waitForURL(`${server.url}/signin`);
    await page.fill('#signin-email', EMAIL);
    await page.fill('#signin-password', PASSWORD);
    await page.click('#signin-form button[type=submit]');
    await page.waitForURL(`${server.url}/classes`);
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#who-name').textContent(), 'Ms Rivera');

    // She creates a class and copies its student link.
    await page.getByLabel('Class name').fill('Year 9 Physics');
    await page.getByLabel('How media flows').selectOption('p2p');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.locator('#class-list li', { hasText: 'Year 9 Physics' }).waitFor();
    const [cls] = await page.evaluate(async () => (await fetch('/api/v1/classes')).json());
    assert.equal(cls.name, 'Year 9 Physics');
    await page.getByRole('button', { name: 'Copy student link: Year 9 Physics' }).click();
    await H.eventually(async () => /\/join#token=/.test(await page.evaluate(() => navigator.clipboard.readText())), { what: 'student link copied' });
    const studentLink = await page.evaluate(() => navigator.clipboard.readText());
    assert.ok(studentLink.startsWith(`${server.url}/join#token=`), studentLink);

    // Nothing recorded yet: "Past lessons" says so, and how long attendance is kept.
    await page.getByRole('button', { name: 'Past lessons: Year 9 Physics' }).click();
    const dialog = page.locator('#lessons-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#lessons-empty').waitFor({ state: 'visible' });
    assert.match(await page.locator('#lessons-retention').textContent(), /kept for 90 days after each lesson, then deleted automatically/);
    assert.ok(await page.locator('#lessons-delete-all').isHidden(), 'nothing to delete');
    await H.axeCheck(page, 'attendance-empty');
    await page.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Past lessons: Year 9 Physics', 'focus back on the button');

    // A class-list student with a personal link (fixed name), added through the API.
    const personal = await page.evaluate(async (id) => {
      const me = await (await fetch('/api/v1/session')).json();
      const res = await fetch(`/api/v1/classes/${id}/students`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
        body: JSON.stringify({ names: ['Ben Okafor'] }),
      });
      return (await res.json()).students[0];
    }, cls.id);
    assert.ok(personal.link.url.includes('/join#token='), JSON.stringify(personal));

    // A student joins with the copied link, Ben with his; the teacher opens the class and sees both.
    const ana = await H.openClient(browser, studentLink, { name: 'Ana' });
    clients.push(ana);
    const ben = await H.openClient(browser, personal.link.url.replace(/^https?:\/\/[^/]+/, server.url));
    clients.push(ben);
    assert.equal(await ben.page.getByLabel('Your name').inputValue(), 'Ben Okafor');
    await ben.page.getByRole('button', { name: 'Join', exact: true }).click();
    await ben.page.locator('#room').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Open as teacher: Year 9 Physics' }).click();
    await page.waitForURL(/\/join#token=/);
    await H.joinAs(rivera, 'Ms Rivera');
    for (const name of ['Ana', 'Ben Okafor']) await page.locator('#roster li', { hasText: name }).waitFor();
    await H.sleep(2000);

    // End for everyone.
    await page.getByRole('button', { name: 'End class' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'End class' }).click();
    await page.locator('#ended').waitFor({ state: 'visible' });
    for (const s of [ana, ben]) {
      await H.eventually(async () => /This lesson has ended/.test(await s.page.locator('#waiting').innerText()), { what: 'the student sees the lesson ended' });
      assert.deepEqual(H.unexpectedErrors(s.errors), []);
      await s.context.close();
    }

    // Back on "My classes": the lesson and who attended.
    await page.goto(`${server.url}/classes`);
    await page.locator('#class-list li', { hasText: 'Year 9 Physics' }).waitFor();
    await H.eventually(async () => (await lessons(page, cls.id)).length === 1, { what: 'the lesson recorded' });
    const [lesson] = await lessons(page, cls.id);
    const byName = Object.fromEntries(lesson.attendance.map((a) => [a.name, a]));
    assert.deepEqual(Object.keys(byName).sort(), ['Ana', 'Ben Okafor', 'Ms Rivera']);
    assert.ok(byName.Ana.present_secs >= 2, `Ana was there: ${JSON.stringify(byName.Ana)}`);

    await page.getByRole('button', { name: 'Past lessons: Year 9 Physics' }).click();
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#lessons-title').textContent(), 'Past lessons: Year 9 Physics');
    const items = page.locator('#lessons-list > li');
    await items.first().waitFor();
    assert.equal(await items.count(), 1);
    const summary = items.first().locator('summary');
    assert.match(await summary.innerText(), /2 students attended/);
    assert.match(await summary.innerText(), new RegExp(duration((lesson.ended - lesson.started) / 1000)));
    await summary.click();
    const rows = items.first().locator('tbody tr');
    await rows.first().waitFor({ state: 'visible' });
    assert.equal(await rows.count(), 3);
    /** The row's cells as text: name (with its marks), joined–left, present, reconnects. */
    const row = async (name) => (await items.first().locator('tbody tr', { has: page.locator('th', { hasText: name }) }).locator('th, td').allInnerTexts()).map((t) => t.trim());
    const anaRow = await row('Ana');
    assert.equal(anaRow[0], 'Ana');
    assert.match(anaRow[1], /^\d\d:\d\d.*–\d\d:\d\d/);
    assert.equal(anaRow[2], duration(byName.Ana.present_secs));
    assert.equal(anaRow[3], '0');
    assert.match((await row('Ben Okafor'))[0], /^Ben Okafor\s*personal link$/);
    assert.match((await row('Ms Rivera'))[0], /^Ms Rivera\s*teacher$/);
    await H.axeCheck(page, 'attendance-light-desktop');
    await H.screenshot(page, 'attendance-light-desktop');

    // The CSV: the same people and figures.
    const csvLink = items.first().getByRole('link', { name: /^Download CSV/ });
    const [download] = await Promise.all([page.waitForEvent('download'), csvLink.click()]);
    assert.equal(download.suggestedFilename(), `class-${cls.id}-session-${lesson.id}-attendance.csv`);
    const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
    assert.equal(csv[0], 'name,student_id,role,joined_utc,left_utc,minutes_present,reconnects');
    assert.equal(csv.length, 4);
    const utc = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const line = (a) => [a.name, a.student || '', a.role, utc(a.joined), utc(a.left), String(Math.floor(a.present_secs / 60)), String(a.reconnects)].join(',');
    assert.deepEqual(csv.slice(1).sort(), lesson.attendance.map(line).sort());
    assert.ok(csv.includes(`Ben Okafor,${personal.id},student,${utc(byName['Ben Okafor'].joined)},${utc(byName['Ben Okafor'].left)},0,0`), csv.join('\n'));

    // Dark, on a phone: the dialog fits the screen.
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize(PHONE);
    const box = await dialog.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `dialog inside the screen: ${JSON.stringify(box)}`);
    const wrap = await items.first().locator('.table-wrap').evaluate((e) => [e.scrollWidth, e.clientWidth]);
    assert.ok(wrap[0] <= wrap[1], `the table fits without sideways scrolling: ${wrap}`);
    await H.axeCheck(page, 'attendance-dark-phone');
    await H.screenshot(page, 'attendance-dark-phone');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize(LAPTOP);
    await page.getByRole('button', { name: 'Close' }).click();

    // A second lesson, without students (she starts the class again and ends it): newest first.
    await page.getByRole('button', { name: 'Open as teacher: Year 9 Physics' }).click();
    await page.waitForURL(/\/join#token=/);
    await page.getByLabel('Your name').fill('Ms Rivera');
    await page.getByRole('button', { name: 'Join', exact: true }).click();
    await page.getByRole('button', { name: 'Start the class again' }).click();
    await page.locator('#room').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'End class' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'End class' }).click();
    await page.locator('#ended').waitFor({ state: 'visible' });
    await page.goto(`${server.url}/classes`);
    await page.locator('#class-list li', { hasText: 'Year 9 Physics' }).waitFor();
    await H.eventually(async () => (await lessons(page, cls.id)).length === 2, { what: 'the second lesson recorded' });
    await page.getByRole('button', { name: 'Past lessons: Year 9 Physics' }).click();
    await H.eventually(async () => (await items.count()) === 2, { what: 'two lessons listed' });
    assert.equal(await items.nth(1).getAttribute('data-session'), String(lesson.id), 'the first lesson is listed last');
    assert.match(await items.nth(0).locator('summary').innerText(), /no students attended/);

    // Deleting the first lesson's attendance asks first; Cancel keeps it.
    const deleteOne = items.nth(1).getByRole('button', { name: /^Delete attendance/ });
    await items.nth(1).locator('summary').click();
    await deleteOne.click();
    const question = page.locator('#lessons-confirm');
    await question.waitFor({ state: 'visible' });
    assert.match(await question.innerText(), /3 people\)\? This cannot be undone/);
    await H.axeCheck(page, 'attendance-delete-confirm');
    await question.getByRole('button', { name: 'Cancel' }).click();
    await question.waitFor({ state: 'hidden' });
    assert.equal((await lessons(page, cls.id)).length, 2);
    await deleteOne.click();
    await question.getByRole('button', { name: 'Delete attendance' }).click();
    await H.eventually(async () => (await items.count()) === 1, { what: 'one lesson left' });
    const left = await lessons(page, cls.id);
    assert.deepEqual(left.map((l) => l.id).includes(lesson.id), false);
    assert.equal(await page.evaluate(async (p) => (await fetch(p)).status, `/api/v1/classes/${cls.id}/sessions/${lesson.id}/attendance.csv`), 404);

    // Delete all: asked, then nothing is left.
    await page.getByRole('button', { name: 'Delete all attendance' }).click();
    await question.waitFor({ state: 'visible' });
    assert.match(await question.innerText(), /every past lesson of Year 9 Physics/);
    await question.getByRole('button', { name: 'Delete attendance' }).click();
    await page.locator('#lessons-empty').waitFor({ state: 'visible' });
    assert.equal(await items.count(), 0);
    assert.deepEqual(await lessons(page, cls.id), []);
    assert.deepEqual(H.unexpectedErrors(rivera.errors, [/status of 401/, /status of 404/]), []);
  });
});

describe('a server that keeps no attendance', () => {
  let server;
  let browser;

  before(async () => {
    server = await H.startServer({ env: { AULA_ATTENDANCE__RETENTION_DAYS: '0' } });
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('Past lessons says so', async () => {
    const res = await fetch(`${server.url}/api/v1/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminKey}` },
      body: JSON.stringify({ email: EMAIL, name: 'Ms Rivera' }),
    });
    assert.equal(res.status, 201);
    const token = (await res.json()).setup_url.split('#token=')[1];
    const teacher = await H.openClient(browser, `${server.url}/setup#token=${token}`, { viewport: PHONE, colorScheme: 'dark' });
    const { page } = teacher;
    await page.fill('#setup-password', PASSWORD);
    await page.fill('#setup-confirm', PASSWORD);
    await page.click('#setup-form button[type=submit]');
    await page.locator('#setup-done').waitFor({ state: 'visible' });
    await page.goto(`${server.url}/classes`);
    await page.getByLabel('Class name').fill('Art');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.getByRole('button', { name: 'Past lessons: Art' }).click();
    await page.locator('#lessons-empty').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#lessons-retention').textContent(), 'This server does not keep attendance: lessons are not recorded.');
    await H.axeCheck(page, 'attendance-none-kept-dark-phone');
    assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
    await teacher.context.close();
  });
});
