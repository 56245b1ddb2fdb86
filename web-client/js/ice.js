// @ts-check
// ICE for both media transports: the RTCPeerConnection `iceServers` for this page (from the
// server's `welcome.ice_servers`), and what a link's candidate gathering says when it fails.

/** @typedef {import('./protocol.js').IceServer} IceServer */
/** @typedef {{code: number, text: string, url: string}} IceError an `icecandidateerror` event */

/**
 * Copies the server's entries, keeping only TURN over TCP (`turn:…?transport=tcp`) when
 * `relayTransport` is "tcp", only TURN over TLS (`turns:`) when it is "tls", and every URL
 * otherwise. Entries left without URLs are dropped.
 * @param {IceServer[] | null | undefined} iceServers
 * @param {string | null | undefined} relayTransport
 * @returns {RTCIceServer[]}
 */
export function iceServersFor(iceServers, relayTransport) {
  const keep = (/** @type {string} */ u) => relayTransport === 'tls' ? /^turns:/.test(u)
    : relayTransport === 'tcp' ? /^turn:.*transport=tcp/.test(u) : true;
  return (iceServers || []).map((s) => {
    /** @type {{urls: string[], username?: string, credential?: string}} */
    const o = { urls: /** @type {string[]} */ ([]).concat(s.urls).filter(keep) };
    if (s.username) o.username = s.username;
    if (s.credential) o.credential = s.credential;
    return o;
  }).filter((s) => s.urls.length > 0);
}

/**
 * Gives a live connection new `iceServers` (fresh TURN credentials from the server's
 * `ice_servers`), keeping the rest of its configuration. False when the connection refused them
 * (e.g. it is closed).
 * @param {RTCPeerConnection} pc
 * @param {RTCIceServer[]} iceServers
 * @returns {boolean}
 */
export function applyIceServers(pc, iceServers) {
  try {
    pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
    return true;
  } catch {
    return false;
  }
}

/**
 * The TURN errors of a link's gathering (`icecandidateerror` events), by kind.
 * @param {IceError[]} iceErrors
 * @returns {{refused: IceError | undefined, unreachable: IceError | undefined}}
 */
export function relayErrors(iceErrors) {
  const turn = iceErrors.filter((e) => /^turns?:/.test(e.url || ''));
  return { refused: turn.find((e) => e.code !== 701), unreachable: turn.find((e) => e.code === 701) };
}

/**
 * Why a link could not even gather candidates, in words a teacher understands, or null when it
 * gathered some. `link.localTypes` counts its candidates by type; `transport` holds the
 * `iceServers` and `forceRelay` it was made with.
 * @param {{localTypes: Record<string, number>, iceErrors: IceError[]}} link
 * @param {{iceServers: RTCIceServer[], forceRelay: boolean}} transport
 * @returns {string | null}
 */
export function gatheringProblem({ localTypes, iceErrors }, { iceServers, forceRelay }) {
  const total = Object.values(localTypes).reduce((a, b) => a + b, 0);
  const { refused, unreachable } = relayErrors(iceErrors);
  if (iceServers.length === 0 && forceRelay) return 'relay forced but the server offers no relay';
  if (total > 0) return null;
  if (refused) return `relay refused: ${refused.code} ${refused.text}`.trim();
  if (unreachable) return 'no candidates: the relay is unreachable from this network';
  return 'no candidates gathered on this device';
}
