// @ts-check
// The teacher's invite panel in the room: the class code, a fresh student link with Copy
// buttons, and the link as a QR code that can fill the screen for a projector. The server mints
// the link and draws the QR code (`POST /api/v1/invite` with the teacher's own token).

import { $, toast } from './dom.js';

/** @typedef {import('../room.js').Room} Room */

/**
 * @typedef {{class: {id: string, name: string}, code: string, student: {token: string, url: string, expires_at: number}, qr_svg: string, qr_version: number}} Invite
 */

/**
 * Asks the server for the class code, a fresh student link and its QR code.
 * @param {string} token the teacher's class link token
 * @returns {Promise<Invite>}
 */
async function fetchInvite(token) {
  const res = await fetch('/api/v1/invite', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, origin: window.location.origin }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok || !body || !body.student) {
    throw new Error((body && body.error && body.error.message) || `The server could not make a student link (${res.status}).`);
  }
  return body;
}

/**
 * Copies an input's text, or selects it for Ctrl+C when the clipboard is not allowed.
 * @param {HTMLInputElement} input
 * @param {string} what
 */
async function copy(input, what) {
  try {
    await navigator.clipboard.writeText(input.value);
    toast(`${what} copied.`);
  } catch {
    input.focus();
    input.select();
    toast(`Select the ${what.toLowerCase()} and copy it with Ctrl+C.`);
  }
}

/**
 * Wires the Invite button and dialog (teachers only).
 * @param {Room} room
 */
export function wireInvite(room) {
  const me = room.state.me;
  const teacher = !!me && me.role === 'teacher';
  $('btn-invite').hidden = !teacher;
  if (!teacher || $('btn-invite').dataset.wired) return;
  $('btn-invite').dataset.wired = 'true';
  const dlg = $('invite-dialog');
  const img = /** @type {HTMLImageElement} */ ($('invite-qr'));
  $('btn-invite').addEventListener('click', async () => {
    $('invite-msg').textContent = 'Making a student link…';
    img.hidden = true;
    dlg.showModal();
    try {
      const inv = await fetchInvite(room.token);
      $('invite-code').value = inv.code;
      $('invite-link').value = inv.student.url;
      img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(inv.qr_svg)}`;
      img.dataset.version = String(inv.qr_version);
      img.hidden = false;
      const until = new Date(inv.student.expires_at * 1000);
      $('invite-msg').textContent = `Students can open the link, scan the code with a phone, or type the class code on the start page. The link works until ${until.toLocaleString()}.`;
    } catch (err) {
      $('invite-msg').textContent = err instanceof Error ? err.message : String(err);
    }
  });
  $('invite-copy-code').addEventListener('click', () => copy($('invite-code'), 'Class code'));
  $('invite-copy-link').addEventListener('click', () => copy($('invite-link'), 'Student link'));
  $('invite-fullscreen').addEventListener('click', () => {
    const box = $('invite-qr-box');
    if (document.fullscreenElement) document.exitFullscreen();
    else if (box.requestFullscreen) box.requestFullscreen().catch(() => toast('Fullscreen is not available here.'));
  });
  document.addEventListener('fullscreenchange', () => {
    $('invite-fullscreen').textContent = document.fullscreenElement === $('invite-qr-box') ? 'Exit full screen' : 'Show QR code full screen';
  });
}
