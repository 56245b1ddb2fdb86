// Kill (and separately gracefully stop) the server mid-class, start it again on the same port and
// data dir: the clients reconnect on their own, resume with their own ids, and the student's
// video resumes within 10 s.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as H from './harness.mjs';

const RESUME_BUDGET_MS = 10_000;
// While the server is down the browser logs each failed WebSocket attempt; that is expected here.
const OUTAGE_NOISE = [/WebSocket connection to .* failed/, /ERR_CONNECTION_REFUSED/];

describe('reconnect after a server restart', () => {
  let server;
  let browser;
  let teacher;
  let student;
  const results = [];

  before(async () => {
    server = await H.startServer();
    const cls = await H.createClass(server, 'Resilience');
    browser = await H.launchBrowser();
    teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Mr Okafor' });
    student = await H.openClient(browser, H.joinUrl(server, cls.student.token), { name: 'Dana' });
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await H.waitForFrames(student.page);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (results.length) {
      console.log('\nserver restart → student video again:');
      for (const r of results) console.log(`  ${r.signal.padEnd(8)} down ${r.downMs} ms, frames again ${r.resumeMs} ms after the stop (${r.afterUpMs} ms after the server was back)`);
    }
  });

  for (const signal of ['SIGKILL', 'SIGTERM']) {
    it(`after ${signal} and a restart, clients reconnect and video resumes within 10 s`, async () => {
      const before = await student.page.evaluate(() => window.aula.welcomes);
      const ids = await Promise.all([teacher, student].map((c) => c.page.evaluate(() => window.aula.me.id)));
      const { port, dataDir, adminKey } = server;
      const stoppedAt = Date.now();
      await server.stop(signal);
      server = await H.startServer({ port, dataDir, adminKey });
      const upAt = Date.now();
      // The student is back in the class (resumed: the server kept the live state) ...
      await H.eventually(async () => {
        const s = await student.page.evaluate(() => ({ status: window.aula.status, welcomes: window.aula.welcomes }));
        return s.status === 'connected' && s.welcomes > before;
      }, { what: 'the student to rejoin', timeoutMs: RESUME_BUDGET_MS, everyMs: 100 });
      // ... and decodes the teacher's screen over the new link.
      await H.eventually(async () => {
        const v = await H.stageVideo(student.page);
        const links = await student.page.evaluate(() => window.aula.links());
        const connected = Object.values(links).some((l) => l.connection === 'connected');
        return connected && v.width > 0 && v.framesDecoded > 0;
      }, { what: 'video on the new link', timeoutMs: RESUME_BUDGET_MS, everyMs: 100 });
      const after = await Promise.all([teacher, student].map((c) => c.page.evaluate(() => window.aula.me.id)));
      assert.deepEqual(after, ids, 'both resumed with their own ids');
      const { last } = await H.waitForFrames(student.page, 5000);
      const resumeMs = Date.now() - stoppedAt;
      results.push({ signal, downMs: upAt - stoppedAt, resumeMs, afterUpMs: Date.now() - upAt });
      assert.ok(last.framesDecoded > 0);
      assert.ok(resumeMs < RESUME_BUDGET_MS + (upAt - stoppedAt), `video resumed ${resumeMs} ms after the stop`);
      assert.ok(Date.now() - upAt < RESUME_BUDGET_MS, 'within 10 s of the server being back');
      // The teacher is still sharing, and both see each other in the roster.
      await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
      await teacher.page.locator('#roster li', { hasText: 'Dana' }).waitFor();
      await H.showTab(student.page, 'People');
      await student.page.locator('#roster li', { hasText: 'Mr Okafor' }).waitFor();
    });
  }

  it('no unexpected console errors', () => {
    for (const c of [teacher, student]) {
      assert.deepEqual(H.unexpectedErrors(c.errors, OUTAGE_NOISE), [], `console errors on ${c.name}'s page`);
    }
  });
});
