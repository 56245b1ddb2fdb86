// TURN credentials renewed over the signaling connection: the browser applies each `ice_servers`
// message to its live RTCPeerConnections (setConfiguration) before the old credentials expire,
// and a relayed direct link restarts ICE with them and stays connected.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import * as H from './harness.mjs';

const expiry = (username) => Number(username.split(':')[0]);

describe('TURN credential renewal in the browser', () => {
  let server;
  let browser;

  before(async () => {
    const dataDir = H.tempDir();
    const config = pathJoin(dataDir, 'renewal.toml');
    // Credentials for 8 s, renewed 5 s before expiry: a renewal every 3 s.
    writeFileSync(config, '[ice]\nrenew_before_secs = 5\n[turn]\nmax_credential_lifetime_secs = 8\n');
    server = await H.startServer({ dataDir, extraArgs: ['--config', config] });
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  it('applies renewed credentials to live connections and keeps a relayed link up', async () => {
    const cls = await H.createClass(server, 'Renewal', { topology: 'p2p' });
    const teacher = await H.openClient(browser, H.joinUrl(server, cls.teacher.token), { name: 'Ms T' });
    const student = await H.openClient(browser, H.joinUrl(server, cls.student.token, '?relay=force'), { name: 'Ana' });
    const connected = async () => {
      const links = await student.page.evaluate(() => window.aula.links());
      return Object.values(links).some((l) => l.connection === 'connected');
    };
    await H.eventually(connected, { what: 'the relayed link', timeoutMs: 15_000 });
    const [first] = await student.page.evaluate(() => window.aula.iceUsernames());
    assert.equal(first.length, 1, JSON.stringify(first));
    const deadline = expiry(first[0]);

    // Before the welcome's credentials expire, the connection already holds newer ones.
    await H.eventually(async () => (await student.page.evaluate(() => window.aula.iceRenewals)) >= 1,
      { what: 'a renewal', timeoutMs: 6_000, everyMs: 100 });
    assert.ok(Date.now() / 1000 < deadline, 'the renewal came after the expiry');
    for (const page of [student.page, teacher.page]) {
      const now = await page.evaluate(() => window.aula.iceUsernames());
      assert.ok(now.length >= 1);
      for (const names of now) assert.ok(names.every((u) => expiry(u) > deadline), JSON.stringify(now));
    }

    // Well past the first credentials' expiry, after more renewals and ICE restarts, the relayed
    // link is still (or again) connected.
    await H.eventually(async () => (await student.page.evaluate(() => window.aula.iceRenewals)) >= 3,
      { what: 'three renewals', timeoutMs: 12_000 });
    await H.eventually(connected, { what: 'the relayed link after the renewals', timeoutMs: 10_000 });
    const path = await student.page.evaluate(() => Object.values(window.aula.myLinks)[0]);
    assert.match(path.path, /^relay/, JSON.stringify(path));
    assert.deepEqual(H.unexpectedErrors(student.errors), []);
    assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
  });

  it('in an SFU class, a relayed sending link restarts ICE with renewed credentials and media keeps flowing', async () => {
    // Its own server, with a renewal every 6 s.
    const dataDir = H.tempDir();
    const config = pathJoin(dataDir, 'renewal.toml');
    writeFileSync(config, '[ice]\nrenew_before_secs = 6\n[turn]\nmax_credential_lifetime_secs = 12\n');
    const sfuServer = await H.startServer({ dataDir, extraArgs: ['--config', config] });
    try {
      const cls = await H.createClass(sfuServer, 'Renewal SFU', { topology: 'sfu' });
      const teacher = await H.openClient(browser, H.joinUrl(sfuServer, cls.teacher.token, '?relay=force'), { name: 'Ms T' });
      const student = await H.openClient(browser, H.joinUrl(sfuServer, cls.student.token, '?relay=force'), { name: 'Ana' });
      await teacher.page.getByRole('button', { name: 'Share screen' }).click();
      await H.waitForFrames(student.page, 20_000);
      const [sendingUfrag] = await teacher.page.evaluate(() => window.aula.iceUfrags());
      await H.eventually(async () => (await teacher.page.evaluate(() => window.aula.iceRenewals)) >= 2,
        { what: 'two renewals', timeoutMs: 20_000 });
      // The teacher's sending link restarted ICE (a new local ufrag) on the same connection ...
      await H.eventually(async () => {
        const [now] = await teacher.page.evaluate(() => window.aula.iceUfrags());
        return now && now !== sendingUfrag;
      }, { what: 'an ICE restart of the sending link', timeoutMs: 10_000 });
      // ... and the student still decodes the screen through the relay.
      await H.waitForFrames(student.page, 20_000);
      const link = await student.page.evaluate(() => window.aula.myLinks.sfu);
      assert.match(link.path, /^relay/, JSON.stringify(link));
      assert.deepEqual(H.unexpectedErrors(student.errors), []);
      assert.deepEqual(H.unexpectedErrors(teacher.errors), []);
      await teacher.context.close();
      await student.context.close();
    } finally {
      await sfuServer.stop();
    }
  });
});
