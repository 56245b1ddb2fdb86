// Unit tests of the web client's pure helpers: texts (messages.js), links and tokens (token.js),
// ICE servers (ice.js), stats paths (stats.js), who connects (p2p.js) and the SFU's m-lines
// (sfu.js). No browser: these modules touch no DOM when imported.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ERROR_TEXT, isJoinRefusal, errorText, refusalTitle, refusedNotice, muted, reconnectText, capitalize, quantity,
  shareBlockedText, INSECURE_MEDIA_TEXT, NO_SCREEN_SHARE_TEXT,
} from '../../web-client/js/messages.js';
import { tokenFromHash, tokenFromInput, peekClaims, isExpired } from '../../web-client/js/token.js';
import { iceServersFor, relayErrors, gatheringProblem } from '../../web-client/js/ice.js';
import { selectedPair, pathOf, LinkSampler } from '../../web-client/js/stats.js';
import { shouldConnect, isImpolite, holdsRight, floorNotice, FLOOR_LINK_MAX_STUDENTS } from '../../web-client/js/p2p.js';
import { SFU_PEER } from '../../web-client/js/sfu.js';
import { slotsOf, publishInit } from '../../web-client/js/sfu-media.js';

describe('messages', () => {
  it('sharing blocked on plain http says the real reason (HTTPS or localhost) and the fix', () => {
    // An insecure page has no getDisplayMedia either: the reason is the connection, not the browser.
    assert.equal(shareBlockedText(false, false), INSECURE_MEDIA_TEXT);
    assert.equal(shareBlockedText(false, true), INSECURE_MEDIA_TEXT);
    assert.match(INSECURE_MEDIA_TEXT, /HTTPS/);
    assert.match(INSECURE_MEDIA_TEXT, /localhost/);
    assert.match(INSECURE_MEDIA_TEXT, /https:\/\//);
    assert.doesNotMatch(INSECURE_MEDIA_TEXT, /This browser cannot/);
    assert.equal(shareBlockedText(true, false), NO_SCREEN_SHARE_TEXT);
    assert.equal(NO_SCREEN_SHARE_TEXT, 'This browser cannot share a screen.');
    assert.equal(shareBlockedText(true, true), '');
  });
  it('join refusals are left to the close that follows', () => {
    assert.equal(isJoinRefusal('class_locked', true), true);
    assert.equal(isJoinRefusal('rate_limited', false), true, 'before joining: a join refusal');
    assert.equal(isJoinRefusal('rate_limited', true), false, 'after joining: sending too fast');
    assert.equal(isJoinRefusal('forbidden', false), false);
  });
  it('error toasts: known words, the server\'s message for forbidden and unknown codes', () => {
    assert.equal(errorText({ code: 'too_long', message: 'm' }), ERROR_TEXT.too_long);
    assert.equal(errorText({ code: 'forbidden', message: 'only teachers' }), 'only teachers');
    assert.equal(errorText({ code: 'what', message: '' }), 'what');
  });
  it('refusal titles and notices', () => {
    assert.equal(refusalTitle('class_full'), 'The class is full');
    assert.equal(refusalTitle(undefined), 'You could not join');
    assert.equal(refusedNotice({ name: 'Ana', code: 'class_locked', count: 3 }), 'Ana could not join: the class is locked (3 attempts).');
    assert.equal(refusedNotice({ code: 'odd_code', count: 1 }), 'Someone could not join: odd_code.');
  });
  it('a mute stops the slots it names', () => {
    assert.deepEqual(muted('audio'), { slots: ['mic'], what: 'microphone' });
    assert.deepEqual(muted('video'), { slots: ['camera', 'screen'], what: 'camera' });
    assert.deepEqual(muted('all').slots, ['mic', 'camera', 'screen']);
  });
  it('formatting', () => {
    assert.equal(reconnectText('waiting', 1200), 'Connection lost. Reconnecting in 2 s…');
    assert.equal(reconnectText('reconnecting'), 'Reconnecting…');
    assert.equal(capitalize('class over'), 'Class over');
    assert.equal(capitalize(''), '');
    assert.equal(quantity(undefined, 'ms'), '–');
    assert.equal(quantity(12.6, 'ms'), '13 ms');
    assert.equal(quantity(0.0125, '%'), '1.3 %');
  });
});

describe('tokens', () => {
  const claims = { class: 'c1', role: 'teacher', exp: 2_000_000_000 };
  const jwt = `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  it('reads a token from a hash, a pasted link or a bare JWT', () => {
    assert.equal(tokenFromHash('#token=abc'), 'abc');
    assert.equal(tokenFromHash(''), null);
    assert.equal(tokenFromInput(`https://x/join#token=${jwt}`), jwt);
    assert.equal(tokenFromInput(jwt), jwt);
    assert.equal(tokenFromInput('not a token'), null);
  });
  it('peeks at the claims and their expiry', () => {
    assert.deepEqual(peekClaims(jwt), claims);
    assert.equal(peekClaims('a.b'), null);
    assert.equal(isExpired(claims, 1_000), false);
    assert.equal(isExpired(claims, 2_000_000_000_000), true);
  });
});

describe('ice servers', () => {
  const servers = [
    { urls: ['stun:s:3478'] },
    { urls: ['turn:t:3478?transport=udp', 'turn:t:3478?transport=tcp', 'turns:t:5349'], username: 'u', credential: 'c' },
  ];
  it('keeps every URL, or only TURN over TCP / TLS', () => {
    assert.equal(iceServersFor(servers, null).length, 2);
    assert.deepEqual(iceServersFor(servers, 'tcp'), [{ urls: ['turn:t:3478?transport=tcp'], username: 'u', credential: 'c' }]);
    assert.deepEqual(iceServersFor(servers, 'tls'), [{ urls: ['turns:t:5349'], username: 'u', credential: 'c' }]);
    assert.deepEqual(iceServersFor(null, null), []);
  });
  it('explains a gathering that found nothing', () => {
    const errors = [{ code: 701, text: 'timeout', url: 'turn:t' }, { code: 401, text: 'Unauthorized', url: 'turns:t' }];
    assert.deepEqual(relayErrors(errors), { refused: errors[1], unreachable: errors[0] });
    const none = { localTypes: {}, iceErrors: [] };
    assert.equal(gatheringProblem({ localTypes: { host: 1 }, iceErrors: [] }, { iceServers: [{}], forceRelay: false }), null);
    assert.equal(gatheringProblem(none, { iceServers: [], forceRelay: true }), 'relay forced but the server offers no relay');
    assert.equal(gatheringProblem({ localTypes: {}, iceErrors: errors }, { iceServers: [{}], forceRelay: true }), 'relay refused: 401 Unauthorized');
    assert.equal(gatheringProblem(none, { iceServers: [{}], forceRelay: false }), 'no candidates gathered on this device');
  });
});

describe('stats paths', () => {
  const report = (entries) => new Map(entries.map((e) => [e.id, e]));
  it('finds the selected pair and whose relay carries it', () => {
    const r = report([
      { id: 'T', type: 'transport', selectedCandidatePairId: 'P' },
      { id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R', currentRoundTripTime: 0.05 },
      { id: 'L', type: 'local-candidate', candidateType: 'relay', relayProtocol: 'tls' },
      { id: 'R', type: 'remote-candidate', candidateType: 'host' },
    ]);
    const pair = selectedPair(r);
    assert.equal(pair.id, 'P');
    assert.deepEqual(pathOf(r, pair), { path: 'relay_tls', via: 'local' });
    r.get('L').candidateType = 'host';
    r.get('R').candidateType = 'relay';
    assert.deepEqual(pathOf(r, pair), { path: 'relay_udp', via: 'remote' });
    r.get('R').candidateType = 'srflx';
    assert.deepEqual(pathOf(r, pair), { path: 'direct', via: null });
    assert.equal(pathOf(r, null), null);
  });
  it('samples a link: path, round trip, and a failure diagnosed in words', () => {
    const r = report([
      { id: 'P', type: 'candidate-pair', state: 'succeeded', nominated: true, localCandidateId: 'L', remoteCandidateId: 'R', currentRoundTripTime: 0.0314 },
      { id: 'L', type: 'local-candidate', candidateType: 'host' },
      { id: 'R', type: 'remote-candidate', candidateType: 'host' },
    ]);
    const s = new LinkSampler();
    const ok = s.sample(r, { connectionState: 'connected' }, { peer: 'p2', diagnose: () => null });
    assert.deepEqual(ok.link, { peer: 'p2', path: 'direct', rtt_ms: 31 });
    const failed = s.sample(r, { connectionState: 'failed' }, { peer: 'p2', diagnose: () => 'UDP blocked' });
    assert.equal(failed.link.path, 'failed');
    assert.equal(failed.link.reason, 'UDP blocked');
  });
});

describe('who connects and who offers (p2p)', () => {
  const t1 = { id: 'p1', role: 'teacher' };
  const t10 = { id: 'p10', role: 'teacher' };
  const s2 = { id: 'p2', role: 'student' };
  it('every pair with a teacher connects; students do not connect to each other', () => {
    assert.equal(shouldConnect(s2, t1), true);
    assert.equal(shouldConnect(t1, s2), true);
    assert.equal(shouldConnect(s2, { id: 'p3', role: 'student' }), false);
  });
  it('two students connect by a floor link while one holds a right, in a class of at most 30', () => {
    const granted = { id: 'p3', role: 'student', name: 'Ana', permissions: { speak: true, camera: false, screen: false } };
    const plain = { id: 'p4', role: 'student', permissions: { speak: false, camera: false, screen: false } };
    assert.equal(FLOOR_LINK_MAX_STUDENTS, 30);
    assert.equal(holdsRight(granted), true);
    assert.equal(holdsRight(plain), false);
    assert.equal(holdsRight({ id: 'p5', role: 'student', permissions: { speak: false, camera: false, screen: true } }), true, 'any right counts');
    assert.equal(shouldConnect(plain, granted, 3), true);
    assert.equal(shouldConnect(granted, plain, 30), true);
    assert.equal(shouldConnect(granted, plain, 31), false, 'not in a class of 31 students');
    assert.equal(shouldConnect(plain, { ...plain, id: 'p5' }, 3), false, 'no right between them');
    assert.equal(isImpolite({ ...plain, id: 'p2' }, { ...granted, id: 'p10' }), true, 'the smaller id offers');
    assert.equal(floorNotice(plain, granted, 30), null);
    assert.match(floorNotice(plain, granted, 31), /^Only teachers receive Ana: .* more than 30 students/);
    assert.equal(floorNotice(granted, granted, 31), null, 'once, when she gains her first right');
  });
  it('the teacher offers; between teachers the smaller id by number', () => {
    assert.equal(isImpolite(t1, s2), true);
    assert.equal(isImpolite(s2, t1), false);
    assert.equal(isImpolite({ id: 'p2', role: 'teacher' }, t10), true, 'p2 < p10 by number');
    assert.equal(isImpolite(t10, { id: 'p2', role: 'teacher' }), false);
  });
});

describe('the SFU offer\'s m-lines (sfu.js)', () => {
  it('maps each mid to its publisher and slot by the order of that publisher\'s m-lines', () => {
    const sdp = [
      'v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', 'a=msid:aula.p1 s',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:1', 'a=msid:aula.p1 c',
      'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:2', 'a=msid:aula.p1 m',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:3', 'a=msid:aula.p7 s',
      'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:4', 'a=msid:other x',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:5', '',
    ].join('\r\n');
    assert.deepEqual([...slotsOf(sdp)], [
      ['0', { peer: 'p1', slot: 'screen' }],
      ['1', { peer: 'p1', slot: 'camera' }],
      ['2', { peer: 'p1', slot: 'mic' }],
      ['3', { peer: 'p7', slot: 'screen' }],
    ]);
    assert.equal(SFU_PEER, 'sfu');
  });

  it('a publisher sends the camera as three layers and the screen as two, low to high', () => {
    assert.deepEqual(publishInit('camera').sendEncodings.map((e) => e.rid), ['q', 'h', 'f']);
    assert.deepEqual(publishInit('screen').sendEncodings.map((e) => e.rid), ['h', 'f']);
    assert.deepEqual(publishInit('mic'), { direction: 'sendonly' });
    publishInit('camera').sendEncodings[0].maxBitrate = 1;
    assert.equal(publishInit('camera').sendEncodings[0].maxBitrate, 150_000, 'each call gets its own copy');
  });
});

describe('rights in words', () => {
  it('says which rights were granted, and which a student may still be given', async () => {
    const { grantedText, rightsNote, listWords } = await import('../../web-client/js/messages.js');
    const none = { speak: false, camera: false, screen: false };
    assert.equal(listWords(['a', 'b', 'c']), 'a, b and c');
    assert.equal(grantedText(none, { ...none, camera: true }), 'The teacher lets you turn your camera on now.');
    assert.equal(grantedText(none, { speak: true, camera: false, screen: true }), 'The teacher lets you speak and share your screen now.');
    assert.equal(grantedText({ ...none, camera: true }, { ...none, camera: true }), '');
    assert.equal(rightsNote(none), 'The teacher can let you speak, turn on a camera or share a screen.');
    assert.equal(rightsNote({ ...none, camera: true }), 'The teacher can let you speak and share a screen.');
    assert.equal(rightsNote({ speak: true, camera: true, screen: true }), '');
  });
});

describe('mute messages', () => {
  it('say what was actually turned off', async () => {
    const { mutedText } = await import('../../web-client/js/messages.js');
    assert.equal(mutedText('audio', { mic: true, camera: true }, false), 'The teacher turned off your microphone.');
    assert.equal(mutedText('all', { camera: true }, false), 'The teacher turned off your camera.');
    assert.equal(mutedText('all', { mic: true, camera: true, screen: true }, false), 'The teacher turned off your microphone, camera and screen share.');
    assert.equal(mutedText('video', { mic: true }, false), 'The teacher asked to turn off your camera; it was already off.');
    assert.equal(mutedText('audio', { mic: true }, true), 'The teacher muted the class: your microphone is now off.');
    assert.equal(mutedText('audio', {}, true), '', 'nothing said when nothing changed');
  });
});
