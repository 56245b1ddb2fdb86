// The teacher's invite panel in the room: class code, a fresh student link that copies and
// works, and its QR code large enough for a projector (and full screen).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

describe('invite panel', () => {
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

  for (const viewport of [{ width: 1366, height: 768 }, { width: 390, height: 844 }]) {
    it(`a teacher sees the code, copies a working student link and shows its QR code (${viewport.width} px)`, async () => {
      const cls = await H.createClass(server, `Invite ${viewport.width}`);
      const teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Invite', viewport });
      const student = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ola', viewport });
      try {
        assert.equal(await student.page.getByRole('button', { name: 'Invite' }).count(), 0, 'students have no Invite button');
        await teacher.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
        const { page } = teacher;
        await page.getByRole('button', { name: 'Invite' }).click();
        const dlg = page.getByRole('dialog', { name: 'Invite students' });
        await dlg.waitFor();
        await H.eventually(async () => (await dlg.getByLabel('Class code', { exact: true }).inputValue()) !== '', { what: 'the class code' });
        assert.equal(await dlg.getByLabel('Class code', { exact: true }).inputValue(), cls.id);
        const link = await dlg.getByLabel('Student link', { exact: true }).inputValue();
        assert.ok(link.startsWith(`${server.url}/join#token=`), link);
        const token = decodeURIComponent(link.split('#token=')[1]);
        const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
        assert.equal(claims.role, 'student');
        assert.equal(claims.class, cls.id);
        assert.ok(claims.exp * 1000 > Date.now() + 3600_000, 'valid for a while yet');

        await dlg.getByRole('button', { name: 'Copy student link' }).click();
        await page.locator('.toast', { hasText: 'Student link copied.' }).waitFor();
        assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
        await dlg.getByRole('button', { name: 'Copy class code' }).click();
        assert.equal(await page.evaluate(() => navigator.clipboard.readText()), cls.id);

        const qr = dlg.getByRole('img', { name: 'QR code of the student link' });
        await qr.waitFor();
        const box = await qr.evaluate((img) => ({ w: img.getBoundingClientRect().width, h: img.getBoundingClientRect().height, natural: img.naturalWidth, version: Number(img.dataset.version), src: img.src.slice(0, 40) }));
        assert.ok(box.natural > 0, `the SVG loaded: ${JSON.stringify(box)}`);
        assert.ok(box.w >= 200 && Math.abs(box.w - box.h) < 1, `rendered square and at least 200 px: ${JSON.stringify(box)}`);
        assert.ok(box.version >= 1 && box.version <= 40, JSON.stringify(box));
        // The SVG's size is a whole number of pixels per module of a symbol of that version
        // (17 + 4v modules, plus a 4-module quiet zone on each side): a real QR matrix.
        const svg = decodeURIComponent(await qr.evaluate((img) => img.src.split(',')[1]));
        const size = Number((svg.match(/width="(\d+)"/) || [])[1]);
        assert.equal(size % (17 + 4 * box.version + 8), 0, `${size} px for version ${box.version}`);
        await H.axeCheck(page, `invite-dialog-light-${viewport.width}`);
        await H.screenshot(page, `invite-dialog-${viewport.width}`);
        await page.emulateMedia({ colorScheme: 'dark' });
        await H.axeCheck(page, `invite-dialog-dark-${viewport.width}`);
        await page.emulateMedia({ colorScheme: 'light' });

        await dlg.getByRole('button', { name: 'Show QR code full screen' }).click();
        await H.eventually(() => page.evaluate(() => document.fullscreenElement && document.fullscreenElement.id === 'invite-qr-box'), { what: 'the QR code full screen' });
        const big = await qr.evaluate((img) => img.getBoundingClientRect().width);
        assert.ok(big >= Math.min(viewport.width, viewport.height) * 0.9, `fills the screen: ${big}`);
        await H.screenshot(page, `invite-qr-fullscreen-${viewport.width}`);
        await page.evaluate(() => document.exitFullscreen());
        await dlg.getByRole('button', { name: 'Close' }).click();

        // The copied link works: a new student joins with it.
        const late = await H.openClient(browser, link, { name: 'Late Lu', viewport });
        await teacher.page.locator('#roster', { hasText: 'Late Lu' }).waitFor();
        await late.context.close();
        for (const c of [teacher, student]) assert.deepEqual(H.unexpectedErrors(c.errors), [], c.name);
      } finally {
        await teacher.context.close();
        await student.context.close();
      }
    });
  }
});
