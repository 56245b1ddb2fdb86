// @ts-check
// Turns an RTCPeerConnection's getStats() into the protocol's LinkStats:
// {peer, path, bitrate_kbps?, loss?, rtt_ms?, reason?}.

/**
 * The candidate pair ICE selected, or null.
 * @param {RTCStatsReport} report
 * @returns {any}
 */
export function selectedPair(report) {
  /** @type {any} */
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || pair;
  });
  if (pair) return pair;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected)) pair = pair || s;
  });
  return pair;
}

/**
 * How media flows over the selected pair: `direct`, or `relay_udp|relay_tcp|relay_tls` when a
 * TURN relay carries it. Our own relay candidate tells its protocol (relayProtocol); when only
 * the remote candidate is a relay, the other side relays and reports the protocol itself.
 *
 * @param {RTCStatsReport} report
 * @param {any} pair
 * @returns {{path: import('./protocol.js').MediaPath, via: 'local' | 'remote' | null} | null}
 */
export function pathOf(report, pair) {
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  if (local && local.candidateType === 'relay') {
    const proto = (local.relayProtocol || 'udp').toLowerCase();
    return { path: proto === 'tls' ? 'relay_tls' : proto === 'tcp' ? 'relay_tcp' : 'relay_udp', via: 'local' };
  }
  if (remote && remote.candidateType === 'relay') return { path: 'relay_udp', via: 'remote' };
  return { path: 'direct', via: null };
}

/**
 * Counters summed over every RTP stream of the connection.
 * @param {RTCStatsReport} report
 */
function counters(report) {
  const c = { bytes: 0, packetsReceived: 0, packetsLost: 0, remoteLossSum: 0, remoteLossN: 0, framesDecoded: 0 };
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      c.bytes += s.bytesReceived || 0;
      c.packetsReceived += s.packetsReceived || 0;
      c.packetsLost += Math.max(0, s.packetsLost || 0);
      if (s.kind === 'video') c.framesDecoded += s.framesDecoded || 0;
    } else if (s.type === 'outbound-rtp') {
      c.bytes += s.bytesSent || 0;
    } else if (s.type === 'remote-inbound-rtp' && typeof s.fractionLost === 'number') {
      c.remoteLossSum += s.fractionLost;
      c.remoteLossN += 1;
    }
  });
  return c;
}

/**
 * Keeps the previous sample per link so rates can be computed.
 */
export class LinkSampler {
  constructor() {
    this.prev = null;
  }

  /**
   * @param {RTCStatsReport} report
   * @param {RTCPeerConnection} pc
   * @param {{peer: string, diagnose: () => string|null}} ctx
   */
  sample(report, pc, ctx) {
    const now = performance.now();
    const c = counters(report);
    const pair = selectedPair(report);
    /** @type {import('./protocol.js').LinkStats} */
    const out = { peer: ctx.peer, path: 'connecting' };
    const state = pc.connectionState;
    if (state === 'failed') {
      out.path = 'failed';
      out.reason = ctx.diagnose() || 'no network path between the two browsers worked';
    } else if (pair && (state === 'connected' || state === 'disconnected')) {
      const p = /** @type {NonNullable<ReturnType<typeof pathOf>>} */ (pathOf(report, pair));
      out.path = p.path;
      if (p.via === 'remote') out.reason = 'relayed by the other side';
      if (typeof pair.currentRoundTripTime === 'number') out.rtt_ms = Math.round(pair.currentRoundTripTime * 1000);
      if (state === 'disconnected') out.reason = 'connection interrupted, trying to recover';
    } else if (state === 'closed') {
      out.path = 'failed';
      out.reason = 'connection closed';
    }
    if (this.prev) {
      const dt = (now - this.prev.at) / 1000;
      if (dt > 0) {
        const bytes = Math.max(0, c.bytes - this.prev.c.bytes);
        out.bitrate_kbps = Math.round((bytes * 8) / dt / 100) / 10;
        const rec = c.packetsReceived - this.prev.c.packetsReceived;
        const lost = c.packetsLost - this.prev.c.packetsLost;
        if (rec + lost > 0) out.loss = Math.max(0, Math.min(1, lost / (rec + lost)));
      }
    }
    if (out.loss === undefined && c.remoteLossN > 0) out.loss = c.remoteLossSum / c.remoteLossN;
    if (typeof out.loss === 'number') out.loss = Math.round(out.loss * 1000) / 1000;
    this.prev = { at: now, c };
    return { link: out, framesDecoded: c.framesDecoded };
  }
}

export const PATH_LABEL = {
  connecting: 'Connecting',
  direct: 'Direct',
  relay_udp: 'Relay (UDP)',
  relay_tcp: 'Relay (TCP)',
  relay_tls: 'Relay (TLS)',
  sfu: 'Media server',
  failed: 'Failed',
};
