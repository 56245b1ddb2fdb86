// Unit tests of the connection verdict (web-client/js/verdict.js): pure, no browser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { verdict, linkNumbers, LOSS_WEAK, RTT_WEAK_MS } from '../../web-client/js/verdict.js';
import { verdictSentence } from '../../web-client/js/messages.js';

const link = (extra = {}) => ({ path: 'direct', reason: null, ...extra });

describe('verdict', () => {
  it('is Good on a working link, and says which way media travels', () => {
    assert.deepEqual(verdict(link({ rtt_ms: 20, loss: 0 })),
      { level: 'good', label: 'Good', reason: 'straight between the two computers', advice: '' });
    assert.equal(verdict(link({ path: 'sfu' })).reason, 'through the school\'s media server');
    assert.equal(verdict(link({ path: 'relay_udp' })).reason, 'through the school\'s relay server');
    assert.match(verdict(link({ path: 'relay_tcp' })).reason, /relay server, the slower way \(this network blocks/);
    assert.match(verdict(link({ path: 'relay_tls' })).reason, /relay server, the slower way \(this network lets only web pages/);
  });

  it('is Weak from LOSS_WEAK lost, saying how much and what to do', () => {
    assert.equal(LOSS_WEAK, 0.05);
    assert.equal(verdict(link({ loss: 0.049 })).level, 'good');
    const v = verdict(link({ path: 'relay_udp', loss: 0.08, rtt_ms: 900 }));
    assert.equal(v.level, 'weak');
    assert.equal(v.label, 'Weak');
    assert.equal(v.reason, 'video is stuttering: 8% lost', 'loss is named before the delay');
    assert.match(v.advice, /Close other programs/);
    assert.equal(verdict(link({ loss: 0.05 })).reason, 'video is stuttering: 5% lost');
  });

  it('is Weak from RTT_WEAK_MS round trip', () => {
    assert.equal(RTT_WEAK_MS, 500);
    assert.equal(verdict(link({ rtt_ms: 499 })).level, 'good');
    const v = verdict(link({ path: 'sfu', rtt_ms: 650 }));
    assert.deepEqual([v.level, v.reason], ['weak', 'sound and video arrive late: 650 ms there and back']);
  });

  it('is Weak while an interrupted link recovers', () => {
    const v = verdict(link({ path: 'relay_udp', reason: 'connection interrupted, trying to recover' }));
    assert.equal(v.level, 'weak');
    assert.match(v.reason, /dropped for a moment/);
  });

  it('is Not connected when the link failed or the person is offline, with what to do', () => {
    const failed = verdict(link({ path: 'failed', reason: 'no direct path (UDP blocked?) and no relay candidate' }));
    assert.equal(failed.label, 'Not connected');
    assert.match(failed.reason, /relay server could not be used/);
    assert.match(failed.advice, /details below/);
    assert.match(verdict(link({ path: 'failed', reason: 'the other side sent no candidates' })).reason, /no way through the network worked/);
    const offline = verdict(link(), { connected: false });
    assert.deepEqual([offline.level, offline.label], ['bad', 'Not connected']);
    assert.match(offline.advice, /Wi-Fi/);
  });

  it('is Connecting before a link is up', () => {
    assert.equal(verdict(null).level, 'wait');
    assert.equal(verdict(link({ path: 'connecting' })).label, 'Connecting');
  });

  it('reads as one sentence', () => {
    assert.equal(verdictSentence(verdict(link({ path: 'sfu' }))), 'Good connection, through the school\'s media server');
    assert.equal(verdictSentence(verdict(link({ loss: 0.08 }))), 'Weak connection: video is stuttering: 8% lost');
    assert.match(verdictSentence(verdict(link({ path: 'failed' }))), /^Not connected: /);
    assert.equal(verdictSentence(verdict(null)), 'Connecting sound and video…');
  });
});

describe('linkNumbers', () => {
  it('keeps the technical terms and numbers for whoever looks after the network', () => {
    assert.deepEqual(linkNumbers(link({ path: 'relay_udp', bitrate_kbps: 812.4, loss: 0.005, rtt_ms: 45, reason: 'relayed by the other side' })), [
      ['Path', 'Relay (UDP)'], ['Bitrate', '812 kbps'], ['Loss', '0.5 %'], ['Round trip (RTT)', '45 ms'], ['Note', 'relayed by the other side'],
    ]);
    assert.deepEqual(linkNumbers(link({ path: 'sfu' })), [['Path', 'Media server'], ['Bitrate', '–'], ['Loss', '–'], ['Round trip (RTT)', '–']]);
    assert.deepEqual(linkNumbers(null), [['Path', 'none yet']]);
  });
});
