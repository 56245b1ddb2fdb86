// @ts-check
// Aula's browser client: the entry point index.html loads. It picks the page for the URL — the
// join form for a class link (`#token=`), else the start page. The classroom is room.js; the
// README lists every module.

import { tokenFromHash } from './token.js';
import { startPage, joinPage } from './pages.js';
import { fatal } from './ui/dom.js';

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
  if (token) joinPage(token);
  else startPage();
  window.addEventListener('hashchange', () => window.location.reload());
}

boot();
