// Unit tests of the web client's class state (web-client/js/state.js): pure, no browser.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClassState, mayBe, mediaMode, mergeLinks, describeLink, rosterOrder, clipReasons,
} from '../../web-client/js/state.js';

const perms = (speak = false, camera = false, screen = false) => ({ speak, camera, screen });
const media = (m = {}) => ({ mic: false, camera: false, screen: false, ...m });
function peer(id, role, extra = {}) {
  return { id, name: id.toUpperCase(), role, hand_raised: false, permissions: perms(), media: media(), connected: true, ...extra };
}
function welcome(extra = {}) {
  return {
    type: 'welcome', protocol: 1, id: 'p1', role: 'student', name: 'Ana',
    class: { id: 'c', name: '9C', locked: false, topology: 'auto', media: 'p2p' },
    peers: [peer('p0', 'teacher'), peer('p2', 'student')], ice_servers: [], resume_token: 'r',
    resumed: false, permissions: perms(), hand_raised: false, chat: [], ...extra,
  };
}
const p2pWith = (...ids) => ({ kind: 'p2p', links: new Map(ids.map((id) => [id, {}])) });
const sfu = { kind: 'sfu', links: new Map([['sfu', {}]]) };

describe('mayBe', () => {
  it('a teacher always, a student only with the right, an unknown peer never', () => {
    assert.equal(mayBe(peer('t', 'teacher'), 'speak'), true);
    assert.equal(mayBe(peer('s', 'student'), 'speak'), false);
    assert.equal(mayBe(peer('s', 'student', { permissions: perms(true, false) }), 'speak'), true);
    assert.equal(mayBe(peer('s', 'student', { permissions: perms(true, false) }), 'camera'), false);
    assert.equal(mayBe(peer('s', 'student', { permissions: perms(false, true) }), 'camera'), true);
    assert.equal(mayBe(peer('s', 'student', { permissions: perms(false, true) }), 'screen'), false, 'a camera is not a screen');
    assert.equal(mayBe(peer('s', 'student', { permissions: perms(false, false, true) }), 'screen'), true);
    assert.equal(mayBe(undefined, 'screen'), false);
  });
});

describe('mediaMode', () => {
  it('is sfu only when the class says so; an older server means p2p', () => {
    assert.equal(mediaMode({ media: 'sfu' }), 'sfu');
    assert.equal(mediaMode({ media: 'p2p' }), 'p2p');
    assert.equal(mediaMode({}), 'p2p');
    assert.equal(mediaMode(null), 'p2p');
  });
});

describe('mergeLinks', () => {
  const now = 100_000;
  it('nothing known is null', () => {
    assert.equal(mergeLinks(undefined, undefined, now), null);
  });
  it('a relay seen by either end wins over direct, and the relaying end (no reason) names it', () => {
    const mine = { peer: 'p2', path: 'relay_udp', reason: 'relayed by the other side', rtt_ms: 30 };
    const theirs = { peer: 'p1', path: 'relay_tcp', at: now - 1000, loss: 0.01, rtt_ms: 40, bitrate_kbps: 5 };
    const l = mergeLinks(mine, theirs, now);
    assert.equal(l.path, 'relay_tcp');
    assert.equal(l.reason, null);
    assert.equal(l.rtt_ms, 30, 'our round trip first');
    assert.equal(l.loss, 0.01, 'their loss first (they receive)');
    assert.equal(l.bitrate_kbps, 5, 'theirs when we have none');
  });
  it('a failure wins over a relay and keeps its reason', () => {
    const l = mergeLinks({ peer: 'x', path: 'relay_udp' }, { peer: 'y', path: 'failed', reason: 'no candidates', at: now }, now);
    assert.deepEqual([l.path, l.reason], ['failed', 'no candidates']);
  });
  it('a stale report from the other end is ignored', () => {
    const l = mergeLinks({ peer: 'x', path: 'direct', reason: 'ignored' }, { peer: 'y', path: 'failed', at: now - 10_000 }, now);
    assert.deepEqual([l.path, l.reason], ['direct', null]);
  });
  it('only a stale report is still connecting', () => {
    assert.equal(mergeLinks(undefined, { peer: 'y', path: 'direct', at: 0 }, now).path, 'connecting');
  });
});

describe('describeLink', () => {
  it('colours and plain words per verdict (verdict.js)', () => {
    assert.deepEqual(describeLink({ path: 'direct', reason: null, rtt_ms: 12.4 }), { state: 'good', text: 'Good connection, straight between the two computers' });
    assert.deepEqual(describeLink({ path: 'sfu', reason: null }), { state: 'good', text: 'Good connection, through the school\'s media server' });
    assert.deepEqual(describeLink({ path: 'relay_udp', reason: null }), { state: 'relay', text: 'Good connection, through the school\'s relay server' });
    assert.match(describeLink({ path: 'relay_tls', reason: null }).text, /^Good connection, through the school's relay server, the slower way/);
    assert.deepEqual(describeLink({ path: 'failed', reason: 'UDP blocked', rtt_ms: 5 }),
      { state: 'bad', text: 'Not connected: no way through the network worked, so sound and video cannot arrive' });
    assert.deepEqual(describeLink({ path: 'sfu', reason: null, loss: 0.08 }), { state: 'weak', text: 'Weak connection: video is stuttering: 8% lost' });
    assert.deepEqual(describeLink({ path: 'connecting', reason: null }), { state: 'wait', text: 'Connecting sound and video…' });
  });
});

describe('rosterOrder', () => {
  it('teachers first, ourselves first in our role, then by name', () => {
    const order = rosterOrder([
      { name: 'Zoe', role: 'student' }, { name: 'Bea', role: 'student' }, { name: 'Me', role: 'student', self: true },
      { name: 'Mr B', role: 'teacher' }, { name: 'Ms A', role: 'teacher' },
    ]).map((p) => p.name);
    assert.deepEqual(order, ['Mr B', 'Ms A', 'Me', 'Bea', 'Zoe']);
  });
});

describe('clipReasons', () => {
  it('cuts a reason to the 200 characters the server takes, and leaves the rest alone', () => {
    const long = { peer: 'a', path: 'failed', reason: 'x'.repeat(250) };
    const short = { peer: 'b', path: 'failed', reason: 'short' };
    const [a, b] = clipReasons([long, short]);
    assert.equal(a.reason.length, 200);
    assert.equal(long.reason.length, 250, 'the input is not changed');
    assert.equal(b, short);
  });
});

describe('ClassState', () => {
  it('a first welcome is a new identity; a resumed one is not; an unresumed one is again', () => {
    const st = new ClassState();
    assert.equal(st.welcome(welcome()), true);
    assert.equal(st.me.id, 'p1');
    assert.deepEqual([...st.peers.keys()], ['p0', 'p2']);
    assert.equal(st.welcome(welcome({ resumed: true })), false);
    assert.equal(st.welcome(welcome({ resumed: false })), true);
  });

  it('peers come, change and go with their tracks and links', () => {
    const st = new ClassState();
    st.welcome(welcome());
    assert.equal(st.upsertPeer(peer('p3', 'student')), undefined);
    const old = st.upsertPeer(peer('p3', 'student', { connected: false }));
    assert.equal(old.connected, true);
    st.setRemoteTrack('p3', 'camera', 'track');
    st.myLinks.set('p3', { peer: 'p3', path: 'direct' });
    st.theirLinks.set('p3', { peer: 'p1', path: 'direct', at: 0 });
    assert.equal(st.removePeer('p3').name, 'P3');
    assert.equal(st.peers.has('p3') || st.remote.has('p3') || st.myLinks.has('p3') || st.theirLinks.has('p3'), false);
  });

  it('our own update returns the rights we had', () => {
    const st = new ClassState();
    st.welcome(welcome());
    const before = st.updateMe(peer('p1', 'student', { permissions: perms(true, true, true), hand_raised: true }));
    assert.deepEqual(before, perms());
    assert.deepEqual(st.me.permissions, perms(true, true, true));
    assert.equal(st.me.hand_raised, true);
  });

  it('hands: ours, someone else\'s, an unknown peer\'s', () => {
    const st = new ClassState();
    st.welcome(welcome());
    assert.equal(st.setHand('p1', true), 'me');
    assert.equal(st.me.hand_raised, true);
    assert.equal(st.setHand('p2', true).id, 'p2');
    assert.equal(st.peers.get('p2').hand_raised, true);
    assert.equal(st.setHand('nobody', true), null);
  });

  it('keeps a report about the link to us, or in SFU mode about the link to the SFU', () => {
    const st = new ClassState();
    st.welcome(welcome({ id: 't', role: 'teacher' }));
    st.takeReport('p2', [{ peer: 'other', path: 'direct' }], false, 5);
    assert.equal(st.theirLinks.size, 0);
    st.takeReport('p2', [{ peer: 'sfu', path: 'sfu' }], false, 5);
    assert.equal(st.theirLinks.size, 0, 'the SFU link counts only in SFU mode');
    st.takeReport('p2', [{ peer: 'sfu', path: 'sfu' }], true, 5);
    assert.deepEqual(st.theirLinks.get('p2'), { peer: 'sfu', path: 'sfu', at: 5 });
    st.takeReport('p2', [{ peer: 't', path: 'relay_udp' }, { peer: 'sfu', path: 'sfu' }], true, 6);
    assert.equal(st.theirLinks.get('p2').path, 'relay_udp', 'the link to us first');
  });

  it('the stage shows the teacher who shares, else one with a camera, else the first', () => {
    const st = new ClassState();
    st.welcome(welcome({ peers: [peer('a', 'teacher'), peer('b', 'teacher', { media: media({ camera: true }) }), peer('s', 'student')] }));
    assert.equal(st.stageTeacher().id, 'b');
    st.upsertPeer(peer('a', 'teacher', { media: media({ screen: true }) }));
    assert.equal(st.stageTeacher().id, 'a');
    st.welcome(welcome({ peers: [peer('s', 'student')] }));
    assert.equal(st.stageTeacher(), null);
  });

  it('a student on the stage shares a screen we receive and holds the right to share a screen', () => {
    const st = new ClassState();
    const sharing = peer('s', 'student', { media: media({ screen: true }) });
    st.welcome(welcome({ peers: [sharing] }));
    st.setRemoteTrack('s', 'screen', 'track');
    assert.equal(st.stageStudent(), null, 'no right to share');
    st.upsertPeer({ ...sharing, permissions: perms(false, true) });
    assert.equal(st.stageStudent(), null, 'the camera right does not show a screen');
    st.upsertPeer({ ...sharing, permissions: perms(false, false, true) });
    assert.equal(st.stageStudent().id, 's');
  });

  it('the roster puts us among everyone, in order', () => {
    const st = new ClassState();
    st.welcome(welcome());
    const names = st.roster(media()).map((p) => `${p.name}${p.self ? '*' : ''}`);
    assert.deepEqual(names, ['P0', 'Ana*', 'P2']);
  });

  it('indicators: offline, online without a link, connecting, then the merged link', () => {
    const st = new ClassState();
    st.welcome(welcome({ id: 't', role: 'teacher' }));
    const student = st.peers.get('p2');
    assert.deepEqual(st.indicator({ ...student, connected: false }, p2pWith('p2')), { state: 'offline', text: 'Reconnecting' });
    assert.deepEqual(st.indicator(student, p2pWith()), { state: 'online', text: 'Online' });
    assert.deepEqual(st.indicator(student, p2pWith('p2')), { state: 'wait', text: 'Connecting media' });
    st.myLinks.set('p2', { peer: 'p2', path: 'direct', rtt_ms: 20 });
    assert.deepEqual(st.indicator(student, p2pWith('p2')), { state: 'good', text: 'Good connection, straight between the two computers' });
    // Through the SFU a teacher reads each student's report; a teacher is not linked to teachers.
    assert.equal(st.hasMediaLink(student, sfu), true);
    assert.equal(st.hasMediaLink(st.peers.get('p0'), sfu), false);
    st.myLinks.clear();
    assert.equal(st.indicator(student, sfu, 0).state, 'wait');
    st.takeReport('p2', [{ peer: 'sfu', path: 'relay_udp' }], true, 0);
    assert.deepEqual(st.indicator(student, sfu, 1000), { state: 'relay', text: 'Good connection, through the school\'s relay server' });
  });

  it('a student\'s own indicator follows its link to the teacher, or to the SFU', () => {
    const st = new ClassState();
    st.welcome(welcome());
    assert.equal(st.selfIndicator(p2pWith('p0')).state, 'offline', 'not connected yet');
    st.status = 'connected';
    assert.deepEqual(st.selfIndicator(p2pWith('p0')), { state: 'online', text: 'Connected' });
    st.myLinks.set('p0', { peer: 'p0', path: 'failed', reason: 'no relay' });
    assert.deepEqual(st.selfIndicator(p2pWith('p0')), { state: 'bad', text: 'Not connected: the school\'s relay server could not be used, so sound and video cannot arrive' });
    assert.deepEqual(st.selfLink(p2pWith('p0')), { path: 'failed', reason: 'no relay', bitrate_kbps: undefined, loss: undefined, rtt_ms: undefined });
    st.myLinks.set('sfu', { peer: 'sfu', path: 'sfu' });
    assert.equal(st.linkPeerOf('p0', sfu), 'sfu');
    assert.deepEqual(st.selfIndicator(sfu), { state: 'good', text: 'Good connection, through the school\'s media server' });
  });
});

describe('raised hands in the roster', () => {
  it('come first, the first raised first', async () => {
    const { raisedHands } = await import('../../web-client/js/state.js');
    const everyone = [
      { name: 'T', role: 'teacher' },
      { name: 'Zoe', role: 'student', hand_raised: true, hand_raised_at: 300 },
      { name: 'Al', role: 'student' },
      { name: 'Bo', role: 'student', hand_raised: true, hand_raised_at: 100 },
      { name: 'Cy', role: 'student', hand_raised: true },
    ];
    assert.deepEqual(rosterOrder([...everyone]).map((p) => p.name), ['Bo', 'Zoe', 'Cy', 'T', 'Al']);
    assert.deepEqual(raisedHands(everyone).map((p) => p.name), ['Bo', 'Zoe', 'Cy']);
  });
});
