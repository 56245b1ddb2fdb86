// @ts-check
// The pages before the classroom: the start page (join with a link or a class code, create a
// class) and the join form (name, then into the room).

import { tokenFromInput, peekClaims, isExpired } from './token.js';
import { ERROR_TEXT } from './messages.js';
import { Room } from './room.js';
import { debugView } from './debug.js';
import { $, show, fatal, toast } from './ui/dom.js';
import { DevicePanel } from './ui/devices.js';

/**
 * A student token for a typed class code (the class id), or null when there is no such class.
 * @param {string} text
 * @returns {Promise<string | null>}
 */
async function tokenForCode(text) {
  const code = String(text || '').trim();
  if (!/^[A-Za-z0-9]{4,32}$/.test(code)) return null;
  try {
    const res = await fetch('/api/v1/join', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code }),
    });
    if (!res.ok) return null;
    const body = await res.json();
    return (body.found && body.token) || null;
  } catch {
    return null;
  }
}

/** The start page: join a class by link or code, or create one. */
export function startPage() {
  show('home');
  $('title').textContent = 'Aula';
  $('home-join').addEventListener('submit', async (/** @type {Event} */ e) => {
    e.preventDefault();
    const input = $('home-link').value;
    const token = tokenFromInput(input) || (await tokenForCode(input));
    if (!token) {
      $('home-link').setAttribute('aria-invalid', 'true');
      toast('That does not look like a class link or code.', 'error');
      return;
    }
    window.location.assign(`/join${window.location.search}#token=${encodeURIComponent(token)}`);
  });
  // Creating a class needs the admin key unless the server allows open creation or a teacher is
  // signed in (then her session cookie and its CSRF token do); ask for the key up front (a
  // refused request would also show up as a console error).
  /** The signed-in session's CSRF token, or '' when nobody is signed in. */
  let csrf = '';
  fetch('/api/v1/info')
    .then((res) => (res.ok ? res.json() : null))
    .then(async (info) => {
      if (info && info.signed_in) {
        const session = await fetch('/api/v1/session').then((res) => (res.ok ? res.json() : null));
        csrf = (session && session.csrf_token) || '';
      }
      const needsKey = !(info && info.open_class_creation) && !csrf;
      $('create-key-field').hidden = !needsKey;
      $('create-key').required = needsKey;
      $('create').dataset.keyNeeded = String(needsKey);
      if (info && info.sso && typeof info.sso.label === 'string') {
        $('sso-start').textContent = info.sso.label;
        $('sso-panel').hidden = false;
      }
    })
    .catch(() => {
      $('create-key-field').hidden = false;
    });
  $('create').addEventListener('submit', async (/** @type {Event} */ e) => {
    e.preventDefault();
    const msg = $('create-msg');
    msg.textContent = '';
    const name = $('create-name').value.trim();
    if (!name) return;
    const key = $('create-key').value.trim();
    /** @type {Record<string, string>} */
    const headers = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    else if (csrf) headers['x-csrf-token'] = csrf;
    let res;
    try {
      res = await fetch('/api/v1/classes', {
        method: 'POST',
        headers,
        body: JSON.stringify({ name }),
      });
    } catch {
      msg.textContent = 'Could not reach the server. Check your connection and try again.';
      return;
    }
    if (res.status === 401) {
      $('create-key-field').hidden = false;
      $('create-key').setAttribute('aria-invalid', 'true');
      msg.textContent = key
        ? 'That admin key is not right. Check it, or ask your school\'s Aula administrator for a class link.'
        : 'Creating a class on this server needs your school\'s Aula admin key. Without it, ask your Aula administrator for a class link.';
      return;
    }
    if (res.status === 429) {
      msg.textContent = 'Too many attempts from this network. Wait a minute and try again.';
      return;
    }
    const body = await res.json().catch(() => null);
    if (!res.ok || !body || !body.teacher) {
      msg.textContent = (body && body.error && body.error.message) || `The server could not create the class (${res.status}).`;
      return;
    }
    $('created-name').textContent = body.name;
    // Links on the address this page was reached by: a person creating a class here reaches the
    // server the way their students will (the server's own `url` may name a default public URL).
    const link = (/** @type {string} */ t) => `${window.location.origin}/join#token=${encodeURIComponent(t)}`;
    $('student-link').value = link(body.student.token);
    $('teacher-link').value = link(body.teacher.token);
    $('class-code').value = body.id;
    $('enter-teacher').href = `/join${window.location.search}#token=${encodeURIComponent(body.teacher.token)}`;
    $('created').hidden = false;
    $('create').hidden = true;
    $('student-link').focus();
    $('student-link').select();
  });
  document.querySelectorAll('[data-copy]').forEach((el) => {
    const btn = /** @type {HTMLElement} */ (el);
    btn.addEventListener('click', async () => {
      const input = $(btn.dataset.copy || '');
      try {
        await navigator.clipboard.writeText(input.value);
        toast('Link copied.');
      } catch {
        input.select();
        toast('Select the link and copy it with Ctrl+C.');
      }
    });
  });
}

/** Where the join form keeps a name the person asked it to remember. */
const NAME_KEY = 'aula.name';

/**
 * The name remembered in this browser, or ''.
 * @returns {string}
 */
function rememberedName() {
  try {
    return localStorage.getItem(NAME_KEY) || '';
  } catch {
    return '';
  }
}

/**
 * Remembers a name, or forgets it (name null).
 * @param {string | null} name
 */
function rememberName(name) {
  try {
    if (name) localStorage.setItem(NAME_KEY, name);
    else localStorage.removeItem(NAME_KEY);
  } catch {
    /* private mode */
  }
}

/**
 * Asks the server what a class link leads to (class name, role) without joining. Null when the
 * server cannot be asked; `{error}` with the join error code when it refuses the token.
 * @param {string} token
 * @returns {Promise<{class: {id: string, name: string}, role: string, name?: string} | {error: string} | null>}
 */
async function joinInfo(token) {
  try {
    const res = await fetch('/api/v1/join-info', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    const body = await res.json().catch(() => null);
    if (res.ok && body && body.class) return body;
    const code = body && body.error && body.error.code;
    if (['invalid_token', 'token_expired', 'class_not_found'].includes(code)) return { error: code };
    return null; // rate limited or a server fault: the join itself will say
  } catch {
    return null;
  }
}

/**
 * The join form for a class link's token: the class name, the name (remembered only when asked:
 * computers in a school are shared), a camera and microphone check, then the classroom.
 * @param {string} token
 */
export function joinPage(token) {
  const claims = peekClaims(token);
  if (!claims) {
    fatal('This link does not work', ERROR_TEXT.invalid_token);
    return;
  }
  if (isExpired(claims)) {
    fatal('This link has expired', ERROR_TEXT.token_expired);
    return;
  }
  show('join');
  const role = claims.role === 'teacher' ? 'teacher' : 'student';
  $('join-role').textContent = role === 'teacher'
    ? 'You are joining as the teacher.'
    : 'You are joining as a student.';
  joinInfo(token).then((info) => {
    if (!info || document.body.dataset.view !== 'join') return;
    if ('error' in info) {
      const title = { invalid_token: 'This link does not work', token_expired: 'This link has expired', class_not_found: 'This class does not exist any more' }[info.error] || 'This link does not work';
      fatal(title, /** @type {Record<string, string>} */ (ERROR_TEXT)[info.error] || ERROR_TEXT.invalid_token);
      return;
    }
    $('join-title').textContent = `Join ${info.class.name}`;
    $('title').textContent = info.class.name;
    document.title = `${info.class.name} · Aula`;
  });
  const nameInput = $('join-name');
  const forget = $('join-forget');
  const remember = $('join-remember');
  if (claims.name) {
    nameInput.value = claims.name;
    nameInput.readOnly = true;
    remember.closest('label').hidden = true;
  } else {
    // A name is kept only if its owner ticked "Remember my name"; whoever comes next on a
    // shared computer sees it with "Not you? Clear", which forgets it.
    const kept = rememberedName();
    nameInput.value = kept;
    remember.checked = !!kept;
    forget.hidden = !kept;
  }
  forget.addEventListener('click', () => {
    rememberName(null);
    nameInput.value = '';
    remember.checked = false;
    forget.hidden = true;
    nameInput.focus();
  });
  const devices = new DevicePanel($('join-devices-panel'), { prefix: 'join-dev' });
  $('join-devices').addEventListener('toggle', () => {
    if ($('join-devices').open) devices.start();
    else devices.stop();
  });
  nameInput.focus();
  $('join-form').addEventListener('submit', (/** @type {Event} */ e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    if (!claims.name) rememberName(remember.checked ? name : null);
    devices.stop();
    $('join-button').disabled = true;
    $('join-msg').textContent = '';
    const room = new Room({ token, name, claims });
    /** @type {any} */ (window).aula = debugView(room);
    room.start();
  });
}
