// @ts-check
// The class protocol's messages as JSDoc types for the type checker (the shapes of
// signaling/src/protocol/, documented in docs/protocol.md), and its one reserved id. Import a
// type with `/** @typedef {import('./protocol.js').PeerInfo} PeerInfo */`.

/** The reserved peer id of the server's SFU (docs/protocol.md). */
export const SFU_PEER = 'sfu';

/** @typedef {'teacher' | 'student'} Role */
/** @typedef {'p2p' | 'sfu' | 'auto'} Topology */
/** @typedef {'p2p' | 'sfu'} MediaMode */
/** @typedef {'audio' | 'video' | 'all'} MuteKind */
/**
 * A media slot of a connection: the shared screen, the camera, the microphone, and the shared
 * screen's sound (a tab's audio; it travels and is heard with the screen). Only the first three
 * are in the `media` message.
 * @typedef {'screen' | 'camera' | 'mic' | 'screenAudio'} Slot
 */
/** @typedef {'connecting' | 'direct' | 'relay_udp' | 'relay_tcp' | 'relay_tls' | 'sfu' | 'failed'} MediaPath */

/** What a student may publish: `speak` the microphone, `camera` a camera, `screen` a screen share. */
/** @typedef {{speak: boolean, camera: boolean, screen: boolean}} Permissions */
/** @typedef {{mic: boolean, camera: boolean, screen: boolean}} MediaState */

/**
 * @typedef {object} PeerInfo
 * @property {string} id
 * @property {string} name
 * @property {Role} role
 * @property {boolean} hand_raised
 * @property {number} [hand_raised_at] when the hand went up (server ms); absent while down
 * @property {boolean} [co_teacher] a student a teacher promoted (`promote`): `role` is then `teacher`
 * @property {Permissions} permissions
 * @property {MediaState} media
 * @property {boolean} connected
 */

/**
 * @typedef {object} ClassInfo
 * @property {string} id
 * @property {string} name
 * @property {boolean} locked
 * @property {boolean} [waiting_room] new students wait until a teacher admits them
 * @property {boolean} [ended] the lesson ended; students wait for a teacher's `start`
 * @property {Topology} topology
 * @property {MediaMode} [media] absent from an older server: `p2p`
 * @property {string} [spotlight] the member a teacher put in the spotlight for everyone (absent: nobody)
 */

/** @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer */
/** @typedef {{id: string, name: string, role: Role}} RemovedPeer */
/** Who a chat line is for: the class, or its teachers only (a private question). */
/** @typedef {'everyone' | 'teachers'} ChatAudience */
/** @typedef {{id: number, from: string, name: string, text: string, time: number, to?: ChatAudience}} ChatEntry */

/** @typedef {'locked' | 'waiting_room' | 'ended'} WaitReason */
/** @typedef {{id: string, name: string, since: number, reason: WaitReason}} WaitingPeer */
/**
 * One person in a lesson's attendance.
 * @typedef {{id: string, name: string, role: Role, joined: number, left: number, present_secs: number, reconnects?: number, student?: string}} Attendance
 */
/** @typedef {{started: number, ended: number, attendance: Attendance[]}} LessonSummary */

/**
 * A link report (`stats.links[]`), as measured here or reported by the other end.
 * @typedef {object} LinkStats
 * @property {string} peer
 * @property {MediaPath} path
 * @property {number} [bitrate_kbps]
 * @property {number} [loss] 0..1
 * @property {number} [rtt_ms]
 * @property {string} [reason]
 */

/**
 * @typedef {object} Welcome
 * @property {'welcome'} type
 * @property {number} protocol
 * @property {string} id
 * @property {Role} role
 * @property {string} name
 * @property {ClassInfo} class
 * @property {PeerInfo[]} peers
 * @property {IceServer[]} ice_servers
 * @property {string} resume_token
 * @property {boolean} resumed
 * @property {Permissions} permissions
 * @property {boolean} hand_raised
 * @property {boolean} [co_teacher] a teacher made us co-teacher
 * @property {ChatEntry[]} chat the recent lines we may read
 * @property {LessonSummary} [summary] to a teacher while the lesson has ended
 * @property {boolean} [server_restarted] first resume after a restart: rebuild the SFU links
 */

/** @typedef {{type: 'peer_joined' | 'peer_updated', peer: PeerInfo}} PeerJoined */
/** @typedef {{type: 'peer_left', id: string, reason: string}} PeerLeft */
/** @typedef {{type: 'offer' | 'answer', from: string, sdp: string}} Description */
/** @typedef {{type: 'candidate', from: string, candidate: RTCIceCandidateInit}} Candidate */
/** @typedef {{type: 'chat'} & ChatEntry} Chat */
/**
 * A hand raised or lowered: `at` is when it went up (server ms), `by` the teacher who lowered it.
 * @typedef {{type: 'hand', peer: string, raised: boolean, at?: number, by?: string}} Hand
 */
/** @typedef {{type: 'mute', by: string, kind: MuteKind, everyone?: boolean}} Mute `everyone`: a teacher's `mute_all` */
/** @typedef {{type: 'reaction', peer: string, emoji: string}} Reaction someone's reaction, for a moment */

/** The reactions the server accepts in `react` (signaling/src/protocol/client.rs, REACTIONS). */
export const REACTIONS = ['👍', '👏', '❤️', '😂', '😮', '🎉'];
/** @typedef {{type: 'stats', from: string, links: LinkStats[]}} Stats */
/** @typedef {{type: 'class_updated', class: ClassInfo}} ClassUpdated */
/** @typedef {{type: 'removed' | 'class_ended', reason: string, summary?: LessonSummary}} Notice */
/** @typedef {{type: 'waiting', reason: WaitReason, class_name: string}} Waiting */
/** @typedef {{type: 'admitted'}} Admitted */
/** @typedef {{type: 'waiting_list', waiting: WaitingPeer[]}} WaitingList */
/** @typedef {{type: 'join_refused', name?: string, code: string, count: number}} JoinRefused */
/** @typedef {{type: 'removed_list', removed: RemovedPeer[]}} RemovedList */
/** @typedef {{type: 'pong'}} Pong */
/** @typedef {{type: 'ice_servers', ice_servers: IceServer[]}} IceServers */
/** @typedef {{type: 'error', code: string, message: string, ref?: unknown}} ErrorMsg */

/**
 * Every message the server sends.
 * @typedef {Welcome | PeerJoined | PeerLeft | Description | Candidate | Chat | Hand | Mute | Reaction | Stats
 *   | ClassUpdated | Notice | JoinRefused | RemovedList | Pong | IceServers | ErrorMsg
 *   | Waiting | Admitted | WaitingList} ServerMessage
 */

/**
 * A message this page sends (docs/protocol.md, "Client messages"); its `type` names it. Among them:
 * `{type: 'grant', peer, speak?, camera?, screen?}`, `{type: 'chat', text, to?: ChatAudience}`,
 * `{type: 'mute_all', kind?}`, `{type: 'lower_hands', peer?}` (no peer: every hand),
 * `{type: 'promote', peer}` / `{type: 'demote', peer}` (co-teacher), `{type: 'react', emoji}`.
 * @typedef {{type: string, [key: string]: unknown}} ClientMessage
 */
