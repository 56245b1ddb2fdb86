// @ts-check
// What the stage shows, decided from the class state alone: the main picture (a pinned person,
// else whoever presents a screen, else a teacher's camera), the gallery of the other pictures
// (cameras, our own camera as a mirrored "You", other screens), and whether we are presenting
// ourselves (then the stage says so and shows a small preview instead of our own screen, so a
// whole-screen share does not fill the stage with itself). Pure: no DOM, no tracks' playback.

import { mayBe } from './state.js';

/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */
/** @typedef {'screen' | 'camera'} VideoSlot */
/** @typedef {{screen?: MediaStreamTrack | null, camera?: MediaStreamTrack | null, mic?: MediaStreamTrack | null}} Tracks */

/**
 * One picture: whose, which slot, its track and its label.
 * @typedef {object} Picture
 * @property {string} key "<peer id>:<slot>"
 * @property {string} peer the peer id (ours for our own pictures)
 * @property {VideoSlot} slot
 * @property {string} name the person's name
 * @property {import('./protocol.js').Role} role
 * @property {boolean} self our own picture
 * @property {string} label what the picture is, in words ("Sam's screen", "Sam's camera", "You")
 * @property {string} caption the gallery's shorter caption: a camera by the name alone ("Sam", "You")
 * @property {MediaStreamTrack | null} track
 */

/**
 * What the stage shows.
 * @typedef {object} StagePlan
 * @property {Picture | null} main the big picture (never our own screen)
 * @property {Picture[]} tiles the gallery, in order: teachers, us, students by name
 * @property {Picture | null} presenting our own screen while it is not pinned away: the stage
 *   says "You are presenting" with a small preview, unless someone else's screen is the main picture
 * @property {boolean} pinned whether `main` is there because we pinned it
 * @property {boolean} spotlit whether `main` is there because a teacher put that person in the
 *   spotlight for everyone (`class.spotlight`)
 */

/**
 * Whether the server lets `peer` be seen on `slot`: a teacher always; a student with the right
 * of that name (`camera` / `screen`).
 * @param {PeerInfo | null | undefined} peer
 * @param {VideoSlot} slot
 * @returns {boolean}
 */
export function maySend(peer, slot) {
  return mayBe(peer, slot);
}

/**
 * "Sam's screen", "Ms Rivera's camera"; ours: "Your screen", "You".
 * @param {string} name
 * @param {VideoSlot} slot
 * @param {boolean} self
 */
export function pictureLabel(name, slot, self) {
  if (self) return slot === 'screen' ? 'Your screen' : 'You';
  return `${name}'s ${slot}`;
}

/**
 * @param {{id: string, name: string, role: import('./protocol.js').Role}} who
 * @param {VideoSlot} slot
 * @param {MediaStreamTrack | null | undefined} track
 * @param {boolean} self
 * @returns {Picture}
 */
function picture(who, slot, track, self) {
  return {
    key: `${who.id}:${slot}`, peer: who.id, slot, name: who.name, role: who.role, self,
    label: pictureLabel(who.name, slot, self), caption: slot === 'camera' ? (self ? 'You' : who.name) : pictureLabel(who.name, slot, self),
    track: track || null,
  };
}

/**
 * Gallery order: teachers first, then us, then by name.
 * @param {Picture} a
 * @param {Picture} b
 */
function galleryOrder(a, b) {
  if (a.role !== b.role) return a.role === 'teacher' ? -1 : 1;
  if (a.self !== b.self) return a.self ? -1 : 1;
  return a.name.localeCompare(b.name) || (a.slot === b.slot ? 0 : a.slot === 'screen' ? -1 : 1);
}

/**
 * Decides the stage.
 * @param {object} input
 * @param {{id: string, name: string, role: import('./protocol.js').Role}} input.me
 * @param {Iterable<PeerInfo>} input.peers everyone else
 * @param {Map<string, Tracks>} input.remote the tracks we receive, by peer
 * @param {{screen: MediaStreamTrack | null, camera: MediaStreamTrack | null}} input.local what we publish
 * @param {string | null} [input.pin] the key of the picture we pinned
 * @param {string | null} [input.spotlight] the member in the spotlight for everyone
 * @returns {StagePlan}
 */
export function planStage({ me, peers, remote, local, pin = null, spotlight = null }) {
  /** @type {Picture[]} */
  const others = [];
  const list = [...peers];
  for (const p of list) {
    const r = remote.get(p.id) || {};
    for (const slot of /** @type {VideoSlot[]} */ (['screen', 'camera'])) {
      // Only what the server lets this person send, whatever their browser sends.
      if (p.media[slot] && r[slot] && maySend(p, slot)) others.push(picture(p, slot, r[slot], false));
    }
  }
  /** @type {Picture[]} */
  const mine = [];
  if (local.screen) mine.push(picture(me, 'screen', local.screen, true));
  if (local.camera) mine.push(picture(me, 'camera', local.camera, true));
  const all = [...others, ...mine];
  const byRole = (/** @type {Picture[]} */ xs) => [...xs].sort(galleryOrder);

  /** @type {Picture | null} */
  let main = null;
  let pinned = false;
  // Our own screen is never the main picture (a whole-screen share would show itself).
  const pinnedPic = pin ? all.find((x) => x.key === pin && !(x.self && x.slot === 'screen')) : undefined;
  if (pinnedPic) {
    main = pinnedPic;
    pinned = true;
  }
  // The spotlight (a teacher's choice for everyone): that person's screen, else camera.
  let spotlit = false;
  if (!main && spotlight && spotlight !== me.id) {
    const theirs = others.filter((x) => x.peer === spotlight);
    main = theirs.find((x) => x.slot === 'screen') || theirs[0] || null;
    spotlit = !!main;
  }
  const screens = byRole(others.filter((x) => x.slot === 'screen'));
  const myScreen = mine.find((x) => x.slot === 'screen') || null;
  if (!main && screens.length) main = screens[0];
  // Nobody else presents but we do: the stage says so (no main picture).
  const presenting = myScreen && !main ? myScreen : null;
  if (!main && !presenting) {
    // A teacher on camera without sharing is the main picture (for a teacher: another teacher).
    main = byRole(others.filter((x) => x.slot === 'camera' && x.role === 'teacher'))[0] || null;
  }
  const tiles = byRole(all.filter((x) => x !== main && x !== presenting));
  return { main, tiles, presenting, pinned, spotlit };
}
