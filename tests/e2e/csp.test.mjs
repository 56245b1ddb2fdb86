// The web client under the server's Content-Security-Policy: the start page, the join page and a
// classroom with camera and screen share run without a console error or a CSP violation.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as H from './harness.mjs';

/** Records every `securitypolicyviolation` event of the page in `window.__cspViolations`. */
function recordViolations() {
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
  });
}

describe('content security policy', () => {
  let server;
  let browser;
  const opened = [];

  async function open(url, opts = {}) {
    const c = await H.openClient(browser, url, { ...opts, initScript: recordViolations });
    opened.push(c);
    return c;
  }

  before(async () => {
    server = await H.startServer();
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('every page is served with the policy and the hardening headers', async () => {
    const res = await fetch(`${server.url}/`);
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('permissions-policy') || '', /camera=\(self\).*microphone=\(self\).*display-capture=\(self\)/);
  });

  it('the start page, the join page and a classroom with camera and screen run without violations', async () => {
    // Start page: create a class with the admin key.
    const start = await open(`${server.url}/`);
    await start.page.getByLabel('Class name').fill('CSP 9C');
    await start.page.getByLabel('Admin key').fill(server.adminKey);
    await start.page.getByRole('button', { name: 'Create a class' }).click();
    await start.page.locator('#created').waitFor({ state: 'visible' });
    const teacherLink = await start.page.getByLabel('Teacher link', { exact: true }).inputValue();
    const studentLink = await start.page.locator('#created').getByLabel('Student link', { exact: true }).inputValue();

    // Classroom: the teacher turns the camera on and shares the screen; a student watches.
    const teacher = await open(teacherLink, { name: 'Ms Policy' });
    await teacher.page.getByRole('button', { name: 'Camera' }).click();
    await teacher.page.getByRole('button', { name: 'Share screen' }).click();
    await teacher.page.getByRole('button', { name: 'Stop sharing' }).waitFor();
    const student = await open(studentLink);
    await student.page.getByText('You are joining as a student.').waitFor();
    await H.joinAs(student, 'Pol');
    await H.waitForFrames(student.page);
    await student.page.getByRole('textbox', { name: 'Message' }).fill('hello');
    await student.page.getByRole('button', { name: 'Send' }).click();
    await H.showTab(teacher.page, 'Chat');
    await teacher.page.locator('#chat-log', { hasText: 'hello' }).waitFor();

    for (const c of opened) {
      const violations = await c.page.evaluate(() => window.__cspViolations || []);
      assert.deepEqual(violations, [], `CSP violations on ${c.page.url()}`);
      assert.deepEqual(c.errors, [], `console errors on ${c.page.url()}`);
    }
  });
});

describe('start page with open class creation', () => {
  let server;
  let browser;

  before(async () => {
    const dataDir = H.tempDir();
    const config = `${dataDir}/open.toml`;
    writeFileSync(config, 'open_class_creation = true\n');
    server = await H.startServer({ dataDir, extraArgs: ['--config', config] });
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('creates a class without asking for the admin key', async () => {
    const c = await H.openClient(browser, `${server.url}/`, { initScript: recordViolations });
    // The page asks the server first; the key field stays hidden once it knows.
    await c.page.locator('#create[data-key-needed="false"]').waitFor({ state: 'attached' });
    assert.equal(await c.page.getByLabel('Admin key').isVisible(), false);
    await c.page.getByLabel('Class name').fill('Open 5B');
    await c.page.getByRole('button', { name: 'Create a class' }).click();
    await c.page.locator('#created').waitFor({ state: 'visible' });
    assert.match(await c.page.locator('#created').getByLabel(/Class code/).inputValue(), /^[a-z0-9]{10}$/);
    assert.deepEqual(await c.page.evaluate(() => window.__cspViolations), []);
    assert.deepEqual(c.errors, []);
  });
});
