// The RTCPeerConnection `iceServers` for this page, from the server's `welcome.ice_servers`.

/**
 * Copies the server's entries, keeping only TURN over TCP (`turn:…?transport=tcp`) when
 * `relayTransport` is "tcp", only TURN over TLS (`turns:`) when it is "tls", and every URL
 * otherwise. Entries left without URLs are dropped.
 */
export function iceServersFor(iceServers, relayTransport) {
  const keep = (u) => relayTransport === 'tls' ? /^turns:/.test(u)
    : relayTransport === 'tcp' ? /^turn:.*transport=tcp/.test(u) : true;
  return (iceServers || []).map((s) => {
    const o = { urls: [].concat(s.urls).filter(keep) };
    if (s.username) o.username = s.username;
    if (s.credential) o.credential = s.credential;
    return o;
  }).filter((s) => s.urls.length > 0);
}
