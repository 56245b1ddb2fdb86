// @ts-check
/**
 * Staff pages that live outside the classroom client: `/signin` (email and password; then on to
 * "My classes" at `/classes`, js/dashboard.js) and `/setup#token=…` (a new account chooses its
 * password). Each page's <body data-page> says which one runs. The session is an HttpOnly
 * cookie this script never sees; state changes send the session's CSRF token from
 * `GET /api/v1/session`.
 */

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function el(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e;
}

/**
 * @param {string} id
 * @returns {HTMLInputElement}
 */
function input(id) {
  return /** @type {HTMLInputElement} */ (el(id));
}

/**
 * A JSON API call: `{ok, status, body}`; `body.error.message` explains a failure.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {Record<string, string>} [headers]
 * @returns {Promise<{ok: boolean, status: number, body: any}>}
 */
export async function api(method, path, body, headers = {}) {
  /** @type {RequestInit} */
  const init = { method, headers: { ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers = { ...headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  try {
    const res = await fetch(path, init);
    const text = await res.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
    return { ok: res.ok, status: res.status, body: parsed };
  } catch {
    return { ok: false, status: 0, body: { error: { code: 'network', message: 'Cannot reach the server; check your connection and try again.' } } };
  }
}

/**
 * The text to show for a failed call.
 * @param {{status: number, body: any}} res
 * @returns {string}
 */
export function failureText(res) {
  const code = res.body?.error?.code;
  if (code === 'invalid_credentials') return 'Wrong email or password.';
  if (code === 'rate_limited') return 'Too many failed attempts. Wait a few minutes, then try again.';
  return res.body?.error?.message ?? `The server answered ${res.status}.`;
}

/** Where a signed-in teacher works: "My classes" (js/dashboard.js). */
const DASHBOARD = '/classes';

/** `/signin`: the form; a signed-in person (already, or now) goes on to the dashboard. */
async function signinPage() {
  const form = /** @type {HTMLFormElement} */ (el('signin-form'));
  const msg = el('signin-msg');

  // Single sign-on, when the server has it: its button above the password form.
  api('GET', '/api/v1/info').then((info) => {
    const sso = info.ok ? info.body?.sso : null;
    if (sso && typeof sso.label === 'string') {
      el('signin-sso-start').textContent = sso.label;
      el('signin-sso').hidden = false;
    }
  });

  const me = await api('GET', '/api/v1/session');
  if (me.ok) {
    location.replace(DASHBOARD);
    return;
  }
  el('signin').hidden = false;

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const res = await api('POST', '/api/v1/session', {
      email: input('signin-email').value,
      password: input('signin-password').value,
    });
    if (!res.ok) {
      msg.textContent = failureText(res);
      input('signin-password').select();
      return;
    }
    location.assign(DASHBOARD);
  });
}

/** `/setup#token=…`: shows whose link it is, then saves the chosen password (which signs in). */
async function setupPage() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  // The token should not stay in the address bar or the history.
  history.replaceState(null, '', location.pathname);
  /** @param {string} text */
  const invalid = (text) => {
    el('setup').hidden = true;
    el('setup-invalid-text').textContent = text;
    el('setup-invalid').hidden = false;
  };
  if (!token) {
    invalid('This page needs the setup link your Aula administrator sent you.');
    return;
  }
  const info = await api('POST', '/api/v1/setup/info', { token });
  if (!info.ok) {
    invalid(failureText(info));
    return;
  }
  el('setup-name').textContent = info.body.name;
  el('setup-email').textContent = info.body.email;
  input('setup-username').value = info.body.email;
  const min = Number(info.body.password_min_length);
  input('setup-password').minLength = min;
  el('setup-hint').textContent = `At least ${min} characters; a phrase of a few words is easy to remember. Common passwords are refused.`;
  el('setup').hidden = false;

  const form = /** @type {HTMLFormElement} */ (el('setup-form'));
  const msg = el('setup-msg');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    const password = input('setup-password').value;
    if (password !== input('setup-confirm').value) {
      msg.textContent = 'The two passwords differ.';
      input('setup-confirm').select();
      return;
    }
    const res = await api('POST', '/api/v1/setup', { token, password });
    if (!res.ok) {
      if (res.body?.error?.code === 'setup_link_invalid') {
        invalid(failureText(res));
      } else {
        msg.textContent = failureText(res);
        input('setup-password').select();
      }
      return;
    }
    el('setup').hidden = true;
    el('setup-done').hidden = false;
    el('setup-done-title').setAttribute('tabindex', '-1');
    el('setup-done-title').focus();
  });
}

const page = document.body.dataset.page;
if (page === 'signin') void signinPage();
if (page === 'setup') void setupPage();
