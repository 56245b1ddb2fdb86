// @ts-check
// Aula's browser client: the entry point index.html loads. It picks the page for the URL — the
// join form for a class link (`#token=`), else the start page. The classroom is room.js; the
// README lists every module.

import { tokenFromHash } from './token.js';
import { startPage, joinPage } from './pages.js';
import { $, fatal } from './ui/dom.js';
import { takeAutoJoin, autoStart } from './ui/ended.js';

/** Whether this browser has what the classroom needs. */
function browserSupported() {
  return typeof WebSocket === 'function' && typeof RTCPeerConnection === 'function' && 'srcObject' in HTMLVideoElement.prototype;
}

function boot() {
  if (!browserSupported()) {
    fatal('This browser is not supported', 'Aula needs a current browser with WebRTC (Firefox, Chrome, Edge or Safari).');
    return;
  }
  const token = tokenFromHash(window.location.hash);
  if (token) {
    joinPage(token);
    // Rejoin, or a teacher's "Start the class again": the page reloaded to join by itself.
    const auto = takeAutoJoin(token);
    const form = $('join-form');
    if (auto && form && !$('join').hidden) {
      if (!$('join-name').readOnly) $('join-name').value = auto.name;
      autoStart.pending = auto.start;
      form.requestSubmit();
    }
  } else {
    startPage();
  }
  // Another link opened in this tab (or the same one again after leaving, see ui/ended.js).
  window.addEventListener('hashchange', () => window.location.reload());
  window.addEventListener('popstate', () => window.location.reload());
}

boot();
