// Test harness: starts the real `aula serve` binary and drives headless Chromium with playwright-core.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir, networkInterfaces } from 'node:os';
import { join as pathJoin, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const ARTIFACTS = pathJoin(ROOT, 'tests', 'artifacts');
export const BIN = process.env.AULA_BIN || pathJoin(ROOT, 'target', 'debug', 'aula');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let helpText = null;
/** The flags `aula serve` knows (so the harness can use TURN flags once they exist). */
export function serveHelp() {
  if (helpText === null) {
    try {
      helpText = execFileSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
    } catch {
      helpText = '';
    }
  }
  return helpText;
}

/** Whether this `aula` runs an SFU (its `serve` knows `--sfu-listen`). */
export const hasSfu = () => serveHelp().includes('--sfu-listen');

/**
 * An `initScript` for `openClient` that records every RTCPeerConnection the page makes in
 * `window.__pcs`, so a test can read their stats or act as a modified client.
 */
export const RECORD_PCS = () => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function RecordedPeerConnection(...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
};

/** CIDRs of this machine's non-loopback IPv4 interfaces: Chromium's host candidates live there. */
export function interfaceCidrs() {
  const out = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs || []) {
      if (a.family === 'IPv4' && !a.internal) out.push(`${a.address}/32`);
    }
  }
  return out;
}

export function tempDir(prefix = 'aula-e2e-') {
  return mkdtempSync(pathJoin(tmpdir(), prefix));
}

/**
 * Starts `aula serve` and resolves once it prints the address it listens on.
 * @param {{dataDir?: string, host?: string, port?: number, extraArgs?: string[], adminKey?: string, env?: Record<string, string>}} opts
 * `host`: the HTTP listen address (default 127.0.0.1). `env`: extra environment variables for
 * the server, e.g. `AULA_ATTENDANCE__RETENTION_DAYS`.
 */
export async function startServer(opts = {}) {
  // With --turn-listen …:0 the relay picks a UDP port and then binds TCP on the same number, which
  // another socket may hold: that start fails with "address in use", so try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(opts);
    } catch (e) {
      if (attempt >= 4 || !/TURN[\s\S]*(address in use|Address already in use)/i.test(e.message)) throw e;
    }
  }
}

async function startServerOnce(opts) {
  if (!existsSync(BIN)) throw new Error(`${BIN} does not exist; run \`cargo build\` at the repository root first`);
  const dataDir = opts.dataDir || tempDir();
  const adminKey = opts.adminKey || 'e2e-admin-key-0123456789';
  const args = ['serve', '--listen', `${opts.host || '127.0.0.1'}:${opts.port || 0}`, '--data-dir', dataDir, '--admin-key', adminKey];
  const help = serveHelp();
  // TURN for the relay path: listen on loopback, and allow relaying to the interface addresses
  // where Chromium's host candidates live.
  if (help.includes('--turn-listen') && !(opts.extraArgs || []).some((a) => a.startsWith('--turn-listen'))) {
    args.push('--turn-listen', `127.0.0.1:${opts.turnPort || 0}`);
  }
  if (help.includes('--turn-allow-peer')) {
    for (const cidr of [...interfaceCidrs(), '127.0.0.0/8']) args.push('--turn-allow-peer', cidr);
  }
  // The SFU on a free port of an interface address: Chromium reaches it from its host candidates
  // (and through the relay, which may relay to interface addresses).
  if (help.includes('--sfu-listen') && !(opts.extraArgs || []).some((a) => a.startsWith('--sfu-listen') || a === '--no-sfu')) {
    const ip = (interfaceCidrs()[0] || '127.0.0.1/32').split('/')[0];
    args.push('--sfu-listen', `${ip}:0`);
  }
  args.push(...(opts.extraArgs || []));
  const proc = spawn(BIN, args, {
    cwd: dataDir,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn', ...(opts.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => {
    err += d;
    if (process.env.AULA_E2E_VERBOSE) process.stderr.write(d);
  });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`aula serve printed no URL within 20 s\n${out}\n${err}`)), 20_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/Listening:\s+(https?:\/\/[^\s]+)/) || out.match(/(http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1].replace(/\/$/, ''));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`aula serve exited with ${code}\n${out}\n${err}`));
    });
  });
  proc.removeAllListeners('exit');
  await checkEmbeddedClient(url);
  const port = Number(new URL(url).port);
  const turnMatch = out.match(/TURN[^\n]*?(\d+\.\d+\.\d+\.\d+):(\d+)/);
  return {
    url,
    port,
    dataDir,
    adminKey,
    proc,
    turnPort: turnMatch ? Number(turnMatch[2]) : null,
    /** The SFU's UDP address, when the server runs one (it prints it after the URL). */
    sfuAddr: () => (out.match(/SFU:\s+(\d+\.\d+\.\d+\.\d+:\d+)/) || [])[1] || null,
    output: () => out,
    logs: () => err,
    /** Stops the server: SIGTERM (graceful) by default, SIGKILL to simulate a crash. */
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(signal);
      await Promise.race([exited, sleep(5000)]);
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** The page and every module of web-client/js (the binary embeds web-client/ at build time). */
function clientFiles() {
  const js = readdirSync(pathJoin(ROOT, 'web-client', 'js'), { recursive: true })
    .map(String).filter((f) => f.endsWith('.js')).map((f) => `js/${f.split(sep).join('/')}`);
  const pages = readdirSync(pathJoin(ROOT, 'web-client')).filter((f) => f.endsWith('.html') && f !== 'index.html');
  return ['index.html', ...pages.sort(), 'style.css', ...js.sort()];
}

/** The binary embeds web-client/ at build time: refuse to test a stale copy. */
async function checkEmbeddedClient(url) {
  for (const file of clientFiles()) {
    const served = await (await fetch(`${url}/${file}`)).text();
    if (served !== readFileSync(pathJoin(ROOT, 'web-client', file), 'utf8')) {
      throw new Error(`the binary serves an old web-client/${file}; run \`cargo build\` at the repository root`);
    }
  }
}

/** Creates a class through the HTTP API; returns the API's answer. `extra`: e.g. {topology: 'sfu'}. */
export async function createClass(server, name = 'E2E class', extra = {}) {
  const res = await fetch(`${server.url}/api/v1/classes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.adminKey}` },
    body: JSON.stringify({ name, ...extra }),
  });
  if (res.status !== 201) throw new Error(`create class: ${res.status} ${await res.text()}`);
  return res.json();
}

/** True when the server hands out TURN servers (GET /api/v1/ice-servers). */
export async function serverHasTurn(server) {
  const res = await fetch(`${server.url}/api/v1/ice-servers`, { headers: { authorization: `Bearer ${server.adminKey}` } });
  if (!res.ok) return false;
  const body = await res.json();
  return (body.ice_servers || []).some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
}

/** The join link on this server (whatever public URL the server put in its own links). */
export function joinUrl(server, token, query = '') {
  return `${server.url}/join${query}#token=${token}`;
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Opens a join link in a fresh browser context, types the name and joins. Collects console
 * errors and page errors in `client.errors`. `initScript` runs in the page before its own scripts.
 */
export async function openClient(browser, url, { name, viewport, initScript, colorScheme } = {}) {
  const context = await browser.newContext({ viewport: viewport || { width: 1280, height: 800 }, colorScheme: colorScheme || 'light' });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(url);
  const client = { context, page, errors, name };
  if (name !== undefined) await joinAs(client, name);
  return client;
}

export async function joinAs(client, name) {
  const { page } = client;
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.locator('#room').waitFor({ state: 'visible', timeout: 10_000 });
}

/**
 * Shows one tab of the side panel — `People`, `Chat` or `Connectivity` — as a click on it would
 * (web-client/js/ui/panel.js). The roster, the chat and the connectivity list are each in a tab.
 * @param {import('playwright-core').Page} page
 * @param {'People' | 'Chat' | 'Connectivity'} name
 */
export async function showTab(page, name) {
  const tab = page.getByRole('tab', { name: new RegExp(`^${name}`) });
  if ((await tab.getAttribute('aria-selected')) !== 'true') await tab.click();
  await page.locator(`#${await tab.getAttribute('aria-controls')}`).waitFor({ state: 'visible' });
}

/** The name of the side panel's tab shown now (`People`, `Chat` or `Connectivity`). */
export async function shownTab(page) {
  const text = await page.locator('#side-tabs [role="tab"][aria-selected="true"]').innerText();
  return text.match(/^\w+/)[0];
}

/**
 * On a teacher's page, opens the actions menu of a person (the ⋯ button on the roster row,
 * web-client/js/ui/person-menu.js), showing the People tab first; returns the menu's locator.
 */
export async function openPersonMenu(page, name) {
  await showTab(page, 'People');
  const menu = page.getByRole('menu', { name: `Actions for ${name}`, exact: true });
  if (!(await menu.isVisible())) await page.getByRole('button', { name: `Actions for ${name}`, exact: true }).click();
  await menu.waitFor();
  return menu;
}

/**
 * On a teacher's page, chooses an item of a person's actions menu: `Lower hand`, `Mute
 * microphone and camera`, `Make co-teacher…`, `Remove from the class…`, `Make student`. Items
 * that ask first leave their dialog open for the test to answer.
 */
export async function personAction(page, name, item) {
  const menu = await openPersonMenu(page, name);
  await menu.getByRole('menuitem', { name: item, exact: true }).click();
}

/**
 * On a teacher's page, sets a student's rights from the roster: `rights` is any of
 * `{speak, camera, screen}` (true grants, false revokes, absent stays). It opens the student's
 * actions menu, sets its checkable items, waits for the server's answer and closes the menu,
 * back on the tab that was shown. Use this rather than the roster's controls directly, so tests
 * keep working when the roster's markup changes.
 */
export async function setRights(page, name, rights) {
  const labels = {
    speak: 'Allow to speak',
    camera: 'Allow to show a camera',
    screen: 'Allow to share the screen',
  };
  const before = await shownTab(page);
  const menu = await openPersonMenu(page, name);
  for (const [right, on] of Object.entries(rights)) {
    if (on === undefined) continue;
    const item = menu.getByRole('menuitemcheckbox', { name: labels[right], exact: true });
    if (((await item.getAttribute('aria-checked')) === 'true') !== on) await item.click();
    await eventually(async () => (await item.getAttribute('aria-checked')) === String(on), { what: `${name}: ${right} ${on ? 'granted' : 'revoked'}` });
  }
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  await showTab(page, before);
}

/**
 * Starts `n` scripted students in `page` (any page of the server's origin): each joins over /ws
 * as `${prefix} 01`, `${prefix} 02`… and records what it receives in `window.bots[i].msgs`, so
 * node needs no WebSocket package. Resolves once every one has its `welcome`.
 */
export async function startBots(page, server, token, n, prefix = 'Bot') {
  const url = `${server.url.replace(/^http/, 'ws')}/ws`;
  await page.evaluate(async ({ url, token, n, prefix }) => {
    window.bots = window.bots || [];
    const joined = [];
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(url);
      const bot = { ws, msgs: [], id: null, name: `${prefix} ${String(i + 1).padStart(2, '0')}` };
      window.bots.push(bot);
      joined.push(new Promise((resolve) => {
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', token, name: bot.name }));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          bot.msgs.push(m);
          if (m.type === 'welcome') {
            bot.id = m.id;
            resolve();
          }
        };
      }));
    }
    await Promise.all(joined);
  }, { url, token, n, prefix });
}

/** Scripted student `i` (from `startBots`) sends `msg`. */
export const botSend = (page, i, msg) => page.evaluate(([i, m]) => window.bots[i].ws.send(JSON.stringify(m)), [i, msg]);

/** Video stats of the large stage video: size, decoded frames and the page's join timings. */
export async function stageVideo(page) {
  return page.evaluate(async () => {
    const v = document.getElementById('stage-screen');
    const frames = window.aula ? await window.aula.frames() : {};
    const total = Object.values(frames).reduce((a, b) => a + b, 0);
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return {
      width: v.videoWidth,
      height: v.videoHeight,
      hidden: v.hidden,
      framesDecoded: total,
      presented: q ? q.totalVideoFrames : 0,
      timings: window.aula ? { ...window.aula.timings } : null,
    };
  });
}

/** Waits until the stage video decodes frames: videoWidth > 0 and framesDecoded rising. */
export async function waitForFrames(page, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let first = null;
  let last = null;
  while (Date.now() < deadline) {
    last = await stageVideo(page);
    if (last.width > 0 && last.framesDecoded > 0) {
      if (!first) first = last;
      else if (last.framesDecoded > first.framesDecoded) return { first, last };
    }
    await sleep(200);
  }
  const links = await page.evaluate(() => (window.aula && window.aula.links ? window.aula.links() : null)).catch(() => null);
  throw new Error(`no decoded frames within ${timeoutMs} ms: ${JSON.stringify(last)}\nlinks: ${JSON.stringify(links)}`);
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually(fn, { timeoutMs = 10_000, everyMs = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastErr = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = pathJoin(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

let axeSource = null;

/**
 * Runs axe-core (tests/node_modules/axe-core) on the page as it is now, saves the full result as
 * `tests/artifacts/axe-<label>.json`, and throws a readable list when any violation is `serious`
 * or `critical` (minor and moderate ones are in the JSON). The page's Content-Security-Policy
 * forbids injected <script> tags; `page.evaluate` runs the source through the DevTools protocol,
 * which the policy does not cover. `opts.exclude`: CSS selectors axe skips (e.g. a third-party
 * widget); `opts.rules`: axe rule options ({id: {enabled: false}}), to be used sparingly and said why.
 * @param {import('playwright-core').Page} page
 * @param {string} label a file-name-safe name for this view, e.g. `teacher-room-dark-1366`
 * @param {{exclude?: string[], rules?: Record<string, {enabled: boolean}>}} [opts]
 */
export async function axeCheck(page, label, opts = {}) {
  if (axeSource === null) {
    const file = pathJoin(ROOT, 'tests', 'node_modules', 'axe-core', 'axe.min.js');
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`(cd tests && npm ci)\``);
    axeSource = readFileSync(file, 'utf8');
  }
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(`${axeSource}\n;undefined`);
  const result = await page.evaluate(async ({ exclude, rules }) => {
    const context = exclude && exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
    const r = await window.axe.run(context, { resultTypes: ['violations', 'incomplete'], ...(rules ? { rules } : {}) });
    return { url: r.url, timestamp: r.timestamp, testEngine: r.testEngine, testEnvironment: r.testEnvironment, violations: r.violations, incomplete: r.incomplete };
  }, { exclude: opts.exclude || [], rules: opts.rules || null });
  mkdirSync(ARTIFACTS, { recursive: true });
  const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '-');
  writeFileSync(pathJoin(ARTIFACTS, `axe-${safe}.json`), JSON.stringify(result, null, 2));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    const lines = [];
    for (const v of bad) {
      lines.push(`- [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})`);
      for (const n of v.nodes.slice(0, 8)) {
        lines.push(`    ${n.target.join(' ')}: ${(n.failureSummary || '').replace(/\s+/g, ' ').trim()}`);
      }
      if (v.nodes.length > 8) lines.push(`    … and ${v.nodes.length - 8} more`);
    }
    throw new Error(`axe: ${bad.length} serious/critical violation(s) on ${label} (full result: tests/artifacts/axe-${safe}.json)\n${lines.join('\n')}`);
  }
  return result;
}

/** Reads a counter family from /metrics: the sum of every sample whose name matches. */
export async function metricSum(server, re) {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${server.adminKey}` } });
  const text = await res.text();
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name] = line.split(/[\s{]/);
    if (re.test(name)) {
      seen = true;
      sum += Number(line.trim().split(/\s+/).pop()) || 0;
    }
  }
  return { sum, seen, text };
}

/** Console errors that are not expected (e.g. the failed reconnect attempts while a server is down). */
export function unexpectedErrors(errors, allow = []) {
  return errors.filter((e) => !allow.some((re) => re.test(e)));
}

export { sleep };

/**
 * The teacher's connectivity row for a student (web-client/js/ui/connectivity.js): the link's
 * path and verdict level (data attributes), the verdict in words, and the numbers in its details.
 */
export async function connectivityRow(page, name) {
  return page.locator('#conn-rows tr', { hasText: name }).evaluate((tr) => ({
    path: tr.dataset.path,
    level: tr.dataset.level,
    verdict: tr.querySelector('.verdict-line').innerText,
    numbers: tr.querySelector('details dl').textContent,
  }));
}

/** Adds a teacher with the CLI and sets her password through the setup link's API. */
export async function addTeacher(server, name, email, password) {
  const out = execFileSync(BIN, [
    'account', 'add', '--role', 'teacher', '--name', name, '--email', email, '--data-dir', server.dataDir,
  ], { cwd: server.dataDir, env: { ...process.env, AULA_PUBLIC_URL: server.url }, encoding: 'utf8' });
  const token = (out.match(/\/setup#token=(\w+)/) || [])[1];
  assert.ok(token, `no setup link in: ${out}`);
  const res = await fetch(`${server.url}/api/v1/setup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, password }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** A fresh browser context that may use the clipboard, signed in at /signin, on /classes. */
export async function signIn(browser, server, email, password, opts = {}) {
  const client = await openClient(browser, `${server.url}/classes`, opts);
  await client.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  const { page } = client;
  await page.waitForURL(`${server.url}/signin`);
  await page.fill('#signin-email', email);
  await page.fill('#signin-password', password);
  await page.click('#signin-form button[type=submit]');
  await page.waitForURL(`${server.url}/classes`);
  await page.locator('#dashboard').waitFor({ state: 'visible' });
  return client;
}
