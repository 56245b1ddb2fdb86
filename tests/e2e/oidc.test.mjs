// Staff single sign-on against a real OpenID provider (`oidc-provider` on loopback, see
// oidc_provider.mjs): a teacher of the school's domain signs in from the start page and is signed
// in; someone of another domain, and someone of the domain who is not a teacher, get a refusal
// page that says why; a changed `state`, a callback in a browser that did not start the sign-in,
// and a flood of starts are refused. axe-core checks the start page and the refusal pages.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join as pathJoin } from 'node:path';
import * as H from './harness.mjs';
import { freePort, startProvider } from './oidc_provider.mjs';

const CLIENT_ID = 'aula-e2e';
const CLIENT_SECRET = 'e2e-client-secret-0123456789';
const LABEL = 'Sign in with School SSO';

describe('single sign-on (OpenID Connect)', () => {
  let server;
  let publicUrl;
  let provider;
  let browser;

  before(async () => {
    const providerPort = await freePort();
    const dir = H.tempDir('aula-oidc-');
    const config = pathJoin(dir, 'aula.toml');
    // Aula discovers the provider on the first sign-in, so it can start before the provider,
    // whose client registration needs Aula's callback URL.
    writeFileSync(config, [
      '[oidc]',
      `issuer = "http://127.0.0.1:${providerPort}"`,
      '# A provider on loopback over plain http: the tests\' explicit allowance.',
      'allow_http_on_loopback = true',
      `client_id = "${CLIENT_ID}"`,
      `client_secret = "${CLIENT_SECRET}"`,
      'allowed_domains = ["school.example"]',
      'teacher_groups = ["staff"]',
      'extra_scopes = ["groups"]',
      `button_label = "${LABEL}"`,
      '',
    ].join('\n'));
    server = await H.startServer({ dataDir: dir, extraArgs: ['--config', config] });
    // The provider sends people back to Aula's public URL (http://localhost:PORT here), while
    // the tests open Aula at 127.0.0.1: the start moves the browser to the public URL first.
    publicUrl = (server.output().match(/Open:\s+(http:\/\/\S+?)\/?\s/) || [])[1];
    assert.ok(publicUrl, server.output());
    provider = await startProvider({
      port: providerPort,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: `${publicUrl}/auth/oidc/callback`,
    });
    browser = await H.launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (provider) await provider.stop();
    if (server) await server.stop();
  });

  /** From Aula's start page through the provider's login and consent pages, as `login`. */
  async function signInFromStartPage(page, login) {
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: LABEL }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any-password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.origin === publicUrl && !u.pathname.startsWith('/auth/oidc/start'));
  }

  it('the sign-in page offers single sign-on above the password form', async () => {
    const client = await H.openClient(browser, `${server.url}/signin`);
    const button = client.page.getByRole('link', { name: LABEL });
    await button.waitFor();
    assert.equal(await button.getAttribute('href'), '/auth/oidc/start');
    await H.axeCheck(client.page, 'oidc-signin-page');
    await client.context.close();
  });

  it('a teacher of the school signs in from the start page', async () => {
    const client = await H.openClient(browser, `${server.url}/`);
    const { page } = client;
    const button = page.getByRole('link', { name: LABEL });
    await button.waitFor();
    assert.equal(await button.getAttribute('href'), '/auth/oidc/start');
    await H.axeCheck(page, 'oidc-start-page');
    await signInFromStartPage(page, 'rivera');
    // She lands on "My classes".
    await page.waitForURL((u) => u.pathname === '/classes');
    const session = await page.evaluate(async () => {
      const res = await fetch('/api/v1/session');
      return { status: res.status, body: await res.json() };
    });
    assert.equal(session.status, 200, JSON.stringify(session.body));
    assert.equal(session.body.account.email, 'rivera@school.example');
    assert.equal(session.body.account.role, 'teacher');
    assert.equal(session.body.account.name, 'Ms Rivera');
    // The session cookie is the server's; the binding cookie of the sign-in is gone.
    const cookies = await client.context.cookies(publicUrl);
    const sessionCookie = cookies.find((c) => c.name === 'aula-session');
    assert.ok(sessionCookie && sessionCookie.httpOnly && sessionCookie.sameSite === 'Lax', JSON.stringify(cookies));
    assert.ok(!cookies.some((c) => c.name === 'aula-oidc' && c.value), JSON.stringify(cookies));
    await client.context.close();
  });

  for (const [login, why, label] of [
    ['mallory', /mallory@other\.example is not an address of this school/, 'oidc-refused-domain'],
    ['pupil', /pupil@school\.example is not on this server's list of teachers/, 'oidc-refused-not-teacher'],
  ]) {
    it(`${login} is refused with a page that says why`, async () => {
      for (const colorScheme of ['light', 'dark']) {
        const client = await H.openClient(browser, `${server.url}/`, { colorScheme });
        const { page } = client;
        const answer = page.waitForResponse((r) => r.url().startsWith(`${publicUrl}/auth/oidc/callback`));
        await signInFromStartPage(page, login);
        assert.equal((await answer).status(), 403);
        await page.getByRole('heading', { name: 'You cannot sign in here' }).waitFor();
        assert.match(await page.locator('#sso-reason').innerText(), why);
        assert.match(await page.locator('#sso-advice').innerText(), /class link or code/);
        await page.getByRole('link', { name: 'Back to the start page' }).waitFor();
        await H.axeCheck(page, `${label}-${colorScheme}`);
        const session = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
        assert.equal(session, 401, 'not signed in');
        await client.context.close();
      }
    });
  }

  it('a changed state is refused', async () => {
    const client = await H.openClient(browser, `${server.url}/`);
    const { page } = client;
    // Started in this browser (its binding cookie is set): at the provider's login page, the
    // URL carries the state; come back with one character of it changed.
    const authRequest = page.waitForRequest((r) => r.url().startsWith(`${provider.issuer}/auth?`));
    await page.getByRole('link', { name: LABEL }).click();
    const authUrl = (await authRequest).url();
    await page.waitForURL((u) => u.origin === provider.issuer);
    const state = new URL(authUrl).searchParams.get('state') || '';
    assert.ok(state.length >= 16, authUrl);
    const changed = `${state.slice(0, -1)}${state.endsWith('A') ? 'B' : 'A'}`;
    const res = await page.goto(`${publicUrl}/auth/oidc/callback?code=some-code&state=${encodeURIComponent(changed)}`);
    assert.equal(res && res.status(), 400);
    await page.getByRole('heading', { name: 'This sign-in cannot be completed' }).waitFor();
    assert.match(await page.locator('#sso-reason').innerText(), /expired, was already used, was changed/);
    await H.axeCheck(page, 'oidc-refused-state');
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/session')).status), 401);
    await client.context.close();
  });

  it('a sign-in started elsewhere cannot be finished in this browser', async () => {
    // Someone starts a sign-in (outside any browser) and sends its callback to a victim.
    const start = await fetch(`${publicUrl}/auth/oidc/start`, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const state = new URL(start.headers.get('location') || '').searchParams.get('state');
    assert.ok(state);
    const client = await H.openClient(browser, `${server.url}/`);
    const res = await client.page.goto(`${publicUrl}/auth/oidc/callback?state=${encodeURIComponent(state)}&code=stolen`);
    assert.equal(res && res.status(), 400);
    await client.page.getByRole('heading', { name: 'This sign-in cannot be completed' }).waitFor();
    await client.context.close();
    // Without state, or with an unknown one: the same refusal.
    for (const query of ['', '?code=x', '?state=unknown&code=x']) {
      const r = await fetch(`${server.url}/auth/oidc/callback${query}`);
      assert.equal(r.status, 400, query);
      assert.match(r.headers.get('content-type') || '', /text\/html/);
    }
  });

  it('a flood of sign-in starts from one address is refused', async () => {
    const statuses = [];
    for (let i = 0; i < 70; i++) {
      const r = await fetch(`${publicUrl}/auth/oidc/start`, { redirect: 'manual' });
      statuses.push(r.status);
      await r.arrayBuffer();
      if (r.status === 429) break;
    }
    assert.equal(statuses.at(-1), 429, `statuses: ${statuses.join(',')}`);
    assert.ok(statuses.slice(0, -1).every((s) => s === 303));
  });
});
