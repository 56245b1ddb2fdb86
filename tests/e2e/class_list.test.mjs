// Class lists and personal links on "My classes", in a real browser: a signed-in teacher's
// class list refuses a bad line (400, named, nothing added) and a too large paste (413), then
// takes a pasted list of 3 (one CSV line with an email) and a typed name, shows a personal link
// per student (Copy), downloads the list as CSV (its rows match the API's list) and prints a
// sheet of names and links (print media shows only that sheet). A student opens her personal
// link in another browser: the join form holds her name read-only, and even a page modified to
// send another name joins under hers. The teacher takes a student off the list (after a confirm
// dialog): his link is then refused with `not_on_class_list`. With the shared student link
// switched off, that link is refused (`personal_link_required`) while a personal link still
// works. axe-core on every view, light at 1366×768 and dark at 390×844.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as H from './harness.mjs';
import { ERROR_TEXT, refusalTitle } from '../../web-client/js/messages.js';

/** The rows of the class list as the dialog shows them: name, reference, link. */
async function shownStudents(page) {
  return page.locator('#students-list li').evaluateAll((items) => items.map((li) => ({
    name: li.querySelector('.student-name').textContent,
    reference: li.querySelector('.student-ref')?.textContent ?? null,
    link: li.querySelector('input.link-field').value,
  })));
}

/** Opens a link in a fresh browser context and presses Join (the name is whatever the form holds). */
async function openAndJoin(browser, url, opts = {}) {
  const client = await H.openClient(browser, url, opts);
  await client.page.locator('#join').waitFor({ state: 'visible' });
  return client;
}

/** The refusal page after pressing Join: its title and text. */
async function refusal(client) {
  await client.page.getByRole('button', { name: 'Join', exact: true }).click();
  await client.page.locator('#fatal').waitFor({ state: 'visible', timeout: 10_000 });
  return {
    title: await client.page.locator('#fatal-title').textContent(),
    text: await client.page.locator('#fatal-text').textContent(),
  };
}

describe('class lists and personal links', () => {
  let server;
  let browser;

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
    await H.addTeacher(server, 'Ms Rivera', 'rivera@school.example', 'violet staircase 42');
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('a teacher pastes a list, shares personal links, removes a student and turns shared links off', async () => {
    const rivera = await H.signIn(browser, server, 'rivera@school.example', 'violet staircase 42', { viewport: { width: 1366, height: 768 } });
    const { page } = rivera;
    await page.getByLabel('Class name').fill('Year 9 Physics');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.locator('#class-list li', { hasText: 'Year 9 Physics' }).waitFor();
    const [physics] = await page.evaluate(async () => (await fetch('/api/v1/classes')).json());
    const api = (path) => page.evaluate(async (p) => {
      const res = await fetch(p);
      return { status: res.status, body: await res.json() };
    }, `/api/v1/classes/${physics.id}${path}`);

    // The shared student link, copied while shared links are still allowed.
    await page.getByRole('button', { name: 'Copy student link: Year 9 Physics' }).click();
    await H.eventually(async () => /\/join#token=/.test(await page.evaluate(() => navigator.clipboard.readText())), { what: 'student link copied' });
    const sharedLink = await page.evaluate(() => navigator.clipboard.readText());

    // An empty list, the switch on.
    await page.getByRole('button', { name: 'Class list: Year 9 Physics' }).click();
    const dialog = page.getByRole('dialog', { name: 'Class list: Year 9 Physics' });
    await dialog.waitFor();
    await page.locator('#students-empty').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#students-count').textContent(), '0');
    const shared = page.getByRole('switch', { name: 'Allow the shared student link and class code' });
    assert.equal(await shared.isChecked(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'students-add-name');
    await H.axeCheck(page, 'class-list-empty');

    // A bad line is named, selected in the box, and nothing is added.
    const paste = page.getByLabel('Paste a list');
    await paste.fill(`Ana García\n${'x'.repeat(80)}\nCarla Díaz`);
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => /Line 2:/.test(await page.locator('#students-msg').textContent()), { what: 'the refused line named' });
    assert.match(await page.locator('#students-msg').textContent(), /^Nothing was added\. Line 2: the display name is longer than 64 characters\.$/);
    assert.equal(await paste.getAttribute('aria-invalid'), 'true');
    const selected = await paste.evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd));
    assert.equal(selected, 'x'.repeat(80));
    assert.equal((await api('/students')).body.length, 0);
    await H.axeCheck(page, 'class-list-bad-line');

    // Too large: 413, said so.
    // (Set as a paste would: Playwright's fill types 7,000 lines far too slowly.)
    await paste.evaluate((t) => { t.value = 'Some Name\n'.repeat(7000); });
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => /too large/.test(await page.locator('#students-msg').textContent()), { what: 'the too large paste refused' });
    assert.match(await page.locator('#students-msg').textContent(), /^Nothing was added: the list is too large \(the list is longer than 65536 bytes\)/);
    assert.equal((await api('/students')).body.length, 0);

    // The list of 3, the first line with an email (CSV); then one typed name.
    await paste.fill('Ana García, ana@school.example\nBen Okafor\nCarla Díaz\n');
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 3, { what: '3 students listed' });
    assert.equal(await page.locator('#students-msg').textContent(), '');
    assert.equal(await paste.inputValue(), '');
    assert.equal(await paste.getAttribute('aria-invalid'), null);
    assert.equal(await page.locator('#students-count').textContent(), '3');
    let rows = await shownStudents(page);
    assert.deepEqual(rows.map((r) => [r.name, r.reference]), [['Ana García', 'ana@school.example'], ['Ben Okafor', null], ['Carla Díaz', null]]);
    for (const r of rows) assert.ok(r.link.startsWith(`${server.url}/join#token=`), r.link);
    assert.equal(new Set(rows.map((r) => r.link)).size, 3);
    const [anaLink, benLink, carlaLink] = rows.map((r) => r.link);

    // A double click adds once (the button waits for the answer).
    await page.getByLabel('Add a student').fill('Dana Idris');
    await page.getByRole('button', { name: 'Add', exact: true }).dblclick();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 4, { what: 'the typed student listed' });
    const listed = (await api('/students')).body;
    assert.deepEqual(listed.map((s) => s.name), ['Ana García', 'Ben Okafor', 'Carla Díaz', 'Dana Idris']);

    // Copy link puts that student's link on the clipboard.
    await page.getByRole('button', { name: 'Copy link: Carla Díaz' }).click();
    await H.eventually(async () => (await page.evaluate(() => navigator.clipboard.readText())) === carlaLink, { what: "Carla's link copied" });
    await H.axeCheck(page, 'class-list-light-desktop');
    await H.screenshot(page, 'class-list-light-desktop');

    // Download CSV: a real download of `…/students.csv`.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `class-${physics.id}-students.csv`);
    const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
    assert.equal(csv[0], 'name,student_id,reference,link');
    assert.equal(csv.length, 5);
    const cells = csv.slice(1).map((line) => line.split(','));
    assert.deepEqual(cells.map((c) => c.slice(0, 3)), listed.map((s) => [s.name, s.id, s.reference ?? '']));
    // The CSV's links are fresh ones of the same students, on the address the page was reached
    // by (the server's public URL here is localhost).
    const studentOf = (link) => JSON.parse(Buffer.from(link.split('#token=')[1].split('.')[1], 'base64url').toString()).student;
    assert.ok(!listed[0].link.url.startsWith(server.url), listed[0].link.url);
    cells.forEach((c, i) => {
      assert.ok(c[3].startsWith(`${server.url}/join#token=`), c[3]);
      assert.equal(studentOf(c[3]), listed[i].id);
    });

    // Print: the sheet of names, links and a QR code each is all that print media shows; each
    // printed link is a fresh one of that student, on this page's address.
    await page.evaluate(() => {
      window.printed = 0;
      window.print = () => { window.printed += 1; };
    });
    await page.getByRole('button', { name: 'Print' }).click();
    await H.eventually(async () => (await page.evaluate(() => window.printed)) === 1, { what: 'the print dialog asked for' });
    await page.emulateMedia({ media: 'print' });
    const sheet = page.locator('#students-print-sheet');
    await sheet.waitFor({ state: 'visible' });
    assert.ok(await page.locator('#dashboard').isHidden());
    assert.ok(await dialog.isHidden());
    const printed = await sheet.locator('li').evaluateAll((items) => items.map((li) => {
      const img = li.querySelector('img');
      return {
        name: li.querySelector('.print-name').textContent,
        link: li.querySelector('.print-link').textContent,
        qr: img && { alt: img.alt, svg: img.src.startsWith('data:image/svg+xml'), w: img.naturalWidth, h: img.naturalHeight, shown: img.getBoundingClientRect().width },
      };
    }));
    assert.deepEqual(printed.map((p) => p.name), ['Ana García (ana@school.example)', 'Ben Okafor', 'Carla Díaz', 'Dana Idris']);
    printed.forEach((p, i) => {
      assert.ok(p.link.startsWith(`${server.url}/join#token=`), p.link);
      assert.equal(studentOf(p.link), listed[i].id);
      assert.equal(p.qr.alt, `QR code of ${listed[i].name}'s link`);
      assert.ok(p.qr.svg && p.qr.w >= 200 && p.qr.w === p.qr.h && p.qr.shown > 90, JSON.stringify(p.qr));
    });
    assert.equal(await page.locator('#students-note').textContent(), '');
    await H.screenshot(page, 'class-list-print');
    await page.emulateMedia({ media: 'screen' });
    await page.evaluate(() => window.dispatchEvent(new Event('afterprint')));
    await dialog.waitFor({ state: 'visible' });
    assert.ok(await sheet.isHidden());

    // Ana joins with her personal link: the form holds her name read-only, and a page modified
    // to send another name still joins under hers.
    const ana = await openAndJoin(browser, anaLink);
    const nameField = ana.page.getByLabel('Your name');
    assert.equal(await nameField.inputValue(), 'Ana García');
    assert.equal(await nameField.getAttribute('readonly'), '');
    assert.ok(await ana.page.locator('#join-remember').isHidden());
    await ana.page.evaluate(() => {
      const field = /** @type {HTMLInputElement} */ (document.getElementById('join-name'));
      field.readOnly = false;
      field.value = 'The Teacher';
    });
    await ana.page.getByRole('button', { name: 'Join', exact: true }).click();
    await ana.page.locator('#room').waitFor({ state: 'visible', timeout: 10_000 });
    await H.showTab(ana.page, 'People');
    await ana.page.locator('#roster li', { hasText: 'Ana García' }).waitFor();
    assert.equal(await ana.page.locator('#roster li', { hasText: 'The Teacher' }).count(), 0);
    assert.deepEqual(H.unexpectedErrors(ana.errors), []);

    // Ben is taken off the list (Cancel first keeps him); his link is then refused.
    await page.getByRole('button', { name: 'Remove: Ben Okafor' }).click();
    const confirm = page.getByRole('dialog', { name: 'Remove from the class list?' });
    await confirm.waitFor();
    assert.match(await page.locator('#student-remove-text').textContent(), /Remove Ben Okafor from the class list\?/);
    await H.axeCheck(page, 'class-list-remove-confirm');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#students-list li').count(), 4);
    await page.getByRole('button', { name: 'Remove: Ben Okafor' }).click();
    await confirm.getByRole('button', { name: 'Remove student' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 3, { what: 'Ben off the list' });
    assert.deepEqual((await shownStudents(page)).map((r) => r.name), ['Ana García', 'Carla Díaz', 'Dana Idris']);
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Copy link: Carla Díaz');
    assert.deepEqual((await api('/students')).body.map((s) => s.name), ['Ana García', 'Carla Díaz', 'Dana Idris']);
    const ben = await openAndJoin(browser, benLink);
    assert.deepEqual(await refusal(ben), { title: refusalTitle('not_on_class_list'), text: ERROR_TEXT.not_on_class_list });
    await H.axeCheck(ben.page, 'class-list-not-on-list');
    await ben.context.close();

    // Shared links off: the shared student link is refused, a personal link still works; the
    // class's card says so.
    const marker = page.locator('#class-list li', { hasText: 'Year 9 Physics' }).locator('.class-shared');
    assert.ok(await marker.isHidden());
    await shared.uncheck();
    await H.eventually(async () => (await api('/settings')).body.shared_links === false, { what: 'shared links off' });
    assert.equal(await shared.isChecked(), false);
    await marker.waitFor({ state: 'visible' });
    assert.equal(await marker.textContent(), ' · personal links only');
    const dora = await openAndJoin(browser, sharedLink);
    await dora.page.getByLabel('Your name').fill('Dora');
    assert.deepEqual(await refusal(dora), { title: refusalTitle('personal_link_required'), text: ERROR_TEXT.personal_link_required });
    await dora.context.close();
    const carla = await openAndJoin(browser, carlaLink);
    assert.equal(await carla.page.getByLabel('Your name').inputValue(), 'Carla Díaz');
    await carla.page.getByRole('button', { name: 'Join', exact: true }).click();
    await carla.page.locator('#room').waitFor({ state: 'visible', timeout: 10_000 });
    await H.showTab(carla.page, 'People');
    await carla.page.locator('#roster li', { hasText: 'Carla Díaz' }).waitFor();
    await carla.context.close();
    await ana.context.close();

    // A name already on the list is added (two students may share a name) with a note, and
    // the second one removed again.
    await page.getByLabel('Add a student').fill('dana idris');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 4, { what: 'the second Dana listed' });
    assert.equal(await page.getByRole('status').filter({ hasText: 'Already on the list' }).textContent(),
      'Already on the list before: dana idris. Each entry is a separate student with its own link; remove the ones you did not mean to add.');
    await page.getByRole('button', { name: 'Remove: dana idris', exact: true }).click();
    await confirm.getByRole('button', { name: 'Remove student' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 3, { what: 'the second Dana removed' });
    assert.equal(await page.locator('#students-note').textContent(), '');

    // Closed and opened again, dark on a phone: the same list, the switch still off, nothing
    // wider than the screen.
    await page.getByRole('button', { name: 'Close' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Class list: Year 9 Physics');
    await page.reload();
    await marker.waitFor({ state: 'visible' });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: 'Class list: Year 9 Physics' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 3, { what: 'the list again' });
    assert.equal(await shared.isChecked(), false);
    const fits = await dialog.evaluate((d) => ({ right: d.getBoundingClientRect().right, width: window.innerWidth, scroll: d.scrollWidth - d.clientWidth }));
    assert.ok(fits.right <= fits.width && fits.scroll <= 0, JSON.stringify(fits));
    // The link takes the phone's width (its buttons below), not a sliver beside them.
    const linkWidth = await page.locator('#students-list input.link-field').first().evaluate((i) => i.getBoundingClientRect().width);
    assert.ok(linkWidth > 250, `link field ${linkWidth} px wide`);
    await H.axeCheck(page, 'class-list-dark-phone');
    await H.screenshot(page, 'class-list-dark-phone');
    await page.locator('#students-list').scrollIntoViewIfNeeded();
    await H.screenshot(page, 'class-list-dark-phone-list');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    // The console logs the refused calls: not signed in yet (401), the bad line and the big paste.
    assert.deepEqual(H.unexpectedErrors(rivera.errors, [/status of 401/, /status of 400 \(Bad Request\)/, /status of 413/]), []);
    await rivera.context.close();
  });

  it('a teacher opens a CSV file with a header row; a file that is not UTF-8 is refused', async () => {
    const rivera = await H.signIn(browser, server, 'rivera@school.example', 'violet staircase 42', { viewport: { width: 1366, height: 768 } });
    const { page } = rivera;
    await page.getByLabel('Class name').fill('Year 10 Biology');
    await page.getByRole('button', { name: 'Create class' }).click();
    await page.getByRole('button', { name: 'Class list: Year 10 Biology' }).click();
    await page.locator('#students-empty').waitFor({ state: 'visible' });
    const file = page.getByLabel('Open a file…');

    // Saved as Windows-1252 ("ë" is one byte 0xEB): refused, the box left empty.
    await file.setInputFiles({ name: 'roster-latin1.csv', mimeType: 'text/csv', buffer: Buffer.from('Name;Email\nZoë Ng;zoe@school.example\n', 'latin1') });
    await H.eventually(async () => /not UTF-8/.test(await page.locator('#students-msg').textContent()), { what: 'the latin-1 file refused' });
    assert.match(await page.locator('#students-msg').textContent(), /^roster-latin1\.csv is not UTF-8 text/);
    assert.equal(await page.getByLabel('Paste a list').inputValue(), '');

    // UTF-8 with a byte order mark, `;` and a header row, as spreadsheets save it.
    await file.setInputFiles({ name: 'roster.csv', mimeType: 'text/csv', buffer: Buffer.from('\uFEFFName;Email\r\nZoë Ng;zoe@school.example\r\nYusuf Ali;\r\n', 'utf8') });
    await H.eventually(async () => (await page.getByLabel('Paste a list').inputValue()).startsWith('Name;Email'), { what: 'the file in the box' });
    assert.equal(await page.locator('#students-msg').textContent(), '');
    assert.equal(await page.locator('#students-note').textContent(), 'Opened roster.csv: 3 lines in the box. Check them, then Add these students.');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'students-paste-text');
    await H.axeCheck(page, 'class-list-file-opened');
    assert.equal(await page.locator('#students-list li').count(), 0);
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 2, { what: 'the file\'s 2 students' });
    assert.deepEqual((await shownStudents(page)).map((r) => [r.name, r.reference]), [['Zoë Ng', 'zoe@school.example'], ['Yusuf Ali', null]]);

    // A "name, email" row under a plain first line would be one long name: said before anything
    // is added, the row selected; with a header line it reads as name and email.
    const paste = page.getByLabel('Paste a list');
    await paste.fill('Xavi Puig\nWen Li, wen@school.example\n');
    await page.getByRole('button', { name: 'Add these students' }).click();
    assert.equal(await page.locator('#students-msg').textContent(),
      'Line 2 has a "," but line 1 has none, so every line would be taken as a whole name ("Wen Li, wen@school.example"). '
      + 'To read a name and an email or id, start the list with the line "name,email". To add the lines as they are, press Add these students again.');
    assert.equal(await paste.evaluate((t) => t.value.slice(t.selectionStart, t.selectionEnd)), 'Wen Li, wen@school.example');
    await H.axeCheck(page, 'class-list-mixed-paste');
    assert.equal((await page.evaluate(async (id) => (await fetch(`/api/v1/classes/${id}/students`)).json(), await page.locator('#class-list li', { hasText: 'Year 10 Biology' }).getAttribute('data-class'))).length, 2);
    await paste.fill('name,email\nXavi Puig\nWen Li, wen@school.example\n');
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 4, { what: 'the 2 students read with a header' });
    assert.deepEqual((await shownStudents(page)).slice(2).map((r) => [r.name, r.reference]), [['Xavi Puig', null], ['Wen Li', 'wen@school.example']]);
    assert.equal(await page.locator('#students-msg').textContent(), '');
    // A comma that belongs to the name: warned once, added when pressed again unchanged.
    await paste.fill('Quinn Ross\nSmith, Jr\n');
    await page.getByRole('button', { name: 'Add these students' }).click();
    assert.match(await page.locator('#students-msg').textContent(), /^Line 2 has a ","/);
    await page.getByRole('button', { name: 'Add these students' }).click();
    await H.eventually(async () => (await page.locator('#students-list li').count()) === 6, { what: 'the names added as they are' });
    assert.deepEqual((await shownStudents(page)).slice(4).map((r) => [r.name, r.reference]), [['Quinn Ross', null], ['Smith, Jr', null]]);
    assert.deepEqual(H.unexpectedErrors(rivera.errors, [/status of 401/]), []);
    await rivera.context.close();
  });
});
