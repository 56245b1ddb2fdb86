// axe-core on every view of the client, in light and dark, at laptop and phone size: zero serious
// or critical violations (harness `axeCheck`; the full results land in tests/artifacts/axe-*.json).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as H from './harness.mjs';

const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

describe('accessibility (axe-core): every view, light and dark, 1366×768 and 390×844', () => {
  let server;
  let browser;
  /** @type {Array<{context: import('playwright-core').BrowserContext}>} */
  let opened = [];

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  async function closeAll() {
    for (const c of opened) await c.context.close().catch(() => {});
    opened = [];
  }

  /** A token `aula token` mints with a 1-second lifetime (expired once we use it). */
  function shortToken(classId) {
    const out = execFileSync(H.BIN, ['token', '--data-dir', server.dataDir, '--class', classId, '--ttl', '1'], { encoding: 'utf8', cwd: server.dataDir });
    const t = out.trim().split(/\s+/).find((w) => w.split('.').length === 3 && w.length > 40) || '';
    assert.ok(t, 'aula token printed a token');
    return t.replace(/^.*#token=/, '');
  }

  for (const colorScheme of ['light', 'dark']) {
    for (const viewport of [LAPTOP, PHONE]) {
      const tag = `${colorScheme}-${viewport.width}`;

      it(`start page, join form and error pages (${tag})`, async () => {
        const open = async (url, opts = {}) => {
          const c = await H.openClient(browser, url, { viewport, colorScheme, ...opts });
          opened.push(c);
          return c;
        };
        const fatal = async (page, text) => page.locator('#fatal', { hasText: text }).waitFor();
        try {
          const home = await open(`${server.url}/`);
          await home.page.getByLabel('Class name').waitFor();
          await home.page.getByLabel('Admin key').waitFor({ state: 'visible' });
          await H.axeCheck(home.page, `start-${tag}`);
          await home.page.getByLabel('Class name').fill('Axe 5B');
          await home.page.getByLabel('Admin key').fill(server.adminKey);
          await home.page.getByRole('button', { name: 'Create a class' }).click();
          await home.page.locator('#created').waitFor({ state: 'visible' });
          await H.axeCheck(home.page, `start-created-${tag}`);

          const cls = await H.createClass(server, 'Axe 5B');
          const join = await open(H.joinUrl(server, cls.student.token));
          await join.page.getByLabel('Your name').waitFor();
          await H.axeCheck(join.page, `join-${tag}`);

          const [hd, pl] = cls.student.token.split('.');
          // The join form asks the server about the link first: a forged one is refused at once.
          const forged = await open(H.joinUrl(server, `${hd}.${pl}.${'A'.repeat(43)}`));
          await fatal(forged.page, 'This link does not work');
          await H.axeCheck(forged.page, `error-forged-${tag}`);

          const expiredToken = shortToken(cls.id);
          await H.sleep(2100);
          const expired = await open(H.joinUrl(server, expiredToken));
          await fatal(expired.page, 'This link has expired');
          await H.axeCheck(expired.page, `error-expired-${tag}`);

          // Locked: a student knocking waits (and the teacher sees her in the waiting list).
          const teacher = await open(H.joinUrl(server, cls.teacher.token), { name: 'Ms Axe' });
          const ola = await open(H.joinUrl(server, cls.student.token), { name: 'Ola' });
          await teacher.page.getByRole('button', { name: 'Lock class' }).click();
          await teacher.page.getByRole('button', { name: 'Unlock class' }).waitFor();
          const late = await open(H.joinUrl(server, cls.student.token));
          await late.page.getByLabel('Your name').fill('Late Larry');
          await late.page.getByRole('button', { name: 'Join', exact: true }).click();
          await late.page.locator('#waiting', { hasText: 'The teacher has locked the class' }).waitFor();
          await H.axeCheck(late.page, `waiting-locked-${tag}`);
          await teacher.page.locator('#waiting-room', { hasText: 'Late Larry' }).waitFor();
          await H.axeCheck(teacher.page, `teacher-knock-${tag}`);

          // Removed.
          await H.personAction(teacher.page, 'Ola', 'Remove from the class…');
          await teacher.page.getByRole('dialog').getByRole('button', { name: 'Remove', exact: true }).click();
          await fatal(ola.page, 'You were removed');
          await H.axeCheck(ola.page, `error-removed-${tag}`);

          // Ended.
          await teacher.page.getByRole('button', { name: 'Unlock class' }).click();
          await teacher.page.getByRole('button', { name: 'Lock class' }).waitFor();
          const sam = await open(H.joinUrl(server, cls.student.token), { name: 'Sam' });
          await teacher.page.getByRole('button', { name: 'End class' }).click();
          await H.axeCheck(teacher.page, `teacher-end-dialog-${tag}`);
          await teacher.page.getByRole('dialog').getByRole('button', { name: 'End class' }).click();
          await sam.page.locator('#waiting', { hasText: 'This lesson has ended' }).waitFor();
          await H.axeCheck(sam.page, `error-ended-${tag}`);
          await teacher.page.locator('#ended', { hasText: 'The lesson has ended' }).waitFor();
          await H.axeCheck(teacher.page, `teacher-ended-${tag}`);
        } finally {
          await closeAll();
        }
      });

      it(`teacher and student rooms (${tag})`, async () => {
        try {
          const cls = await H.createClass(server, `Axe room ${tag}`);
          const teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms Axe', viewport, colorScheme });
          opened.push(teacher);
          const student = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ola', viewport, colorScheme });
          opened.push(student);
          const other = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Ben', viewport, colorScheme });
          opened.push(other);
          await teacher.page.locator('#roster', { hasText: 'Ben' }).waitFor();
          // The student raises a hand, the teacher lets her speak, both write in the chat.
          await student.page.getByRole('button', { name: 'Raise hand' }).click();
          await student.page.locator('#btn-hand[aria-pressed="true"]').waitFor();
          await teacher.page.locator('#roster .badge.hand').waitFor();
          await teacher.page.getByRole('button', { name: 'Share screen' }).click();
          await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
          // The teacher's actions menu for a student, open (People tab), then the Connectivity tab.
          await H.openPersonMenu(teacher.page, 'Ola');
          await H.axeCheck(teacher.page, `teacher-person-menu-${tag}`);
          await teacher.page.keyboard.press('Escape');
          await H.showTab(teacher.page, 'Connectivity');
          await H.axeCheck(teacher.page, `teacher-connectivity-${tag}`);
          await H.showTab(teacher.page, 'Chat');
          await teacher.page.getByRole('textbox', { name: 'Message' }).fill('Welcome, everyone');
          await teacher.page.getByRole('button', { name: 'Send' }).click();
          await student.page.locator('#chat-log', { hasText: 'Welcome, everyone' }).waitFor();
          await H.waitForFrames(student.page);
          await H.axeCheck(teacher.page, `teacher-room-${tag}`);
          await H.axeCheck(student.page, `student-room-${tag}`);
          await H.screenshot(teacher.page, `a11y-teacher-${tag}`);
          await H.screenshot(student.page, `a11y-student-${tag}`);
          assert.deepEqual(H.unexpectedErrors([...teacher.errors, ...student.errors]), []);
        } finally {
          await closeAll();
        }
      });
    }
  }
});
