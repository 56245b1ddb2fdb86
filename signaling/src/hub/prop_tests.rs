//! Property tests of the class state machine: random sessions keep classes apart and rosters
//! consistent, and removal refuses exactly the removed identities.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::fixtures::*;
use super::*;
use crate::protocol::MuteKind;

// ----- property tests -----

/// One step of a random session, over a small pool of connections, peers and classes.
#[derive(Debug, Clone)]
enum Op {
    Join {
        conn: u8,
        class: u8,
        teacher: bool,
    },
    Resume {
        conn: u8,
        of_conn: u8,
    },
    Drop {
        conn: u8,
    },
    Tick {
        advance_ms: u32,
    },
    Send {
        conn: u8,
        msg: MsgKind,
        target_conn: u8,
    },
}

#[derive(Debug, Clone, Copy)]
enum MsgKind {
    Offer,
    Chat,
    Hand,
    Mute,
    Remove,
    Lock,
    Unlock,
    End,
    Grant,
    Media,
    Leave,
}

fn op() -> impl Strategy<Value = Op> {
    let msg = prop_oneof![
        Just(MsgKind::Offer),
        Just(MsgKind::Chat),
        Just(MsgKind::Hand),
        Just(MsgKind::Mute),
        Just(MsgKind::Remove),
        Just(MsgKind::Lock),
        Just(MsgKind::Unlock),
        Just(MsgKind::End),
        Just(MsgKind::Grant),
        Just(MsgKind::Media),
        Just(MsgKind::Leave),
    ];
    prop_oneof![
        3 => (0..12u8, 0..3u8, any::<bool>()).prop_map(|(conn, class, teacher)| Op::Join { conn, class, teacher }),
        1 => (0..12u8, 0..12u8).prop_map(|(conn, of_conn)| Op::Resume { conn, of_conn }),
        1 => (0..12u8).prop_map(|conn| Op::Drop { conn }),
        1 => (0..30_000u32).prop_map(|advance_ms| Op::Tick { advance_ms }),
        6 => (0..12u8, msg, 0..12u8).prop_map(|(conn, msg, target_conn)| Op::Send { conn, msg, target_conn }),
    ]
}

/// What a well-behaved client would believe about its class, built only from what it received.
#[derive(Debug, Default, Clone)]
struct ClientView {
    me: Option<PeerId>,
    class: Option<ClassId>,
    roster: BTreeMap<PeerId, PeerInfo>,
}

impl ClientView {
    fn apply(&mut self, msg: &ServerMessage) {
        match msg {
            ServerMessage::Welcome {
                id, class, peers, ..
            } => {
                self.me = Some(id.clone());
                self.class = Some(class.id.clone());
                self.roster = peers.iter().map(|p| (p.id.clone(), p.clone())).collect();
            }
            ServerMessage::PeerJoined { peer } | ServerMessage::PeerUpdated { peer }
                if Some(&peer.id) != self.me.as_ref() =>
            {
                self.roster.insert(peer.id.clone(), peer.clone());
            }
            ServerMessage::PeerLeft { id, .. } => {
                self.roster.remove(id);
            }
            ServerMessage::Hand {
                peer, raised, at, ..
            } => {
                if let Some(p) = self.roster.get_mut(peer) {
                    p.hand_raised = *raised;
                    p.hand_raised_at = *at;
                }
            }
            _ => {}
        }
    }
}

struct World {
    hub: Hub,
    now: u64,
    /// Live connections (as the I/O layer sees them) and what each client believes.
    views: HashMap<ConnId, ClientView>,
    /// The resume token each connection last got.
    resume: HashMap<ConnId, String>,
    counter: u64,
}

const CLASSES: [&str; 3] = ["a", "b", "c"];

impl World {
    fn new() -> Self {
        // With an SFU that `auto` classes switch to above two students.
        let mut hub = Hub::new(HubLimits {
            max_class_size: 6,
            sfu: true,
            auto_sfu_above: 2,
            ..HubLimits::default()
        });
        for c in CLASSES {
            hub.add_class(c.into(), c.into(), Topology::Auto);
        }
        World {
            hub,
            now: 0,
            views: HashMap::new(),
            resume: HashMap::new(),
            counter: 0,
        }
    }

    /// Applies effects, checking that each delivery stays inside the class of its recipients.
    fn apply(
        &mut self,
        effects: Vec<Effect>,
        origin_class: Option<&str>,
    ) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::Deliver { to, msg } => {
                    for conn in to {
                        let view = self.views.get_mut(&conn);
                        prop_assert!(view.is_some(), "delivery to a closed connection {conn}");
                        let view = view.unwrap();
                        if let (Some(origin), Some(class)) = (origin_class, view.class.as_deref()) {
                            prop_assert_eq!(origin, class, "a message crossed classes: {:?}", msg);
                        }
                        view.apply(&msg);
                        if let ServerMessage::Welcome { resume_token, .. } = &msg {
                            self.resume.insert(conn, resume_token.clone());
                        }
                    }
                }
                Effect::Close { conn, .. } => {
                    self.views.remove(&conn);
                }
                Effect::Sfu(request) => {
                    let (class, peer) = match &request {
                        SfuRequest::Publish { class, peer, .. }
                        | SfuRequest::Subscribe { class, peer, .. }
                        | SfuRequest::Answer { class, peer, .. }
                        | SfuRequest::Permissions { class, peer, .. }
                        | SfuRequest::Remove { class, peer } => (class, peer),
                    };
                    if let Some(origin) = origin_class {
                        prop_assert_eq!(origin, class.as_str(), "an SFU request crossed classes");
                    }
                    prop_assert!(peer.starts_with('p'));
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Join {
                conn,
                class,
                teacher,
            } => {
                let conn = conn as ConnId;
                self.views.entry(conn).or_default();
                self.counter += 1;
                let role = if teacher {
                    Role::Teacher
                } else {
                    Role::Student
                };
                let r = JoinRequest {
                    class: CLASSES[class as usize].into(),
                    role,
                    fixed_name: None,
                    name: Some(format!("n{}", self.counter)),
                    resume: None,
                    new_resume_token: format!("tok{}", self.counter),
                    browser: None,
                    personal_token: None,
                    student: None,
                    now_ms: self.now,
                };
                let origin = CLASSES[class as usize];
                match self.hub.join(conn, r, no_ice) {
                    Ok(j) if j.waiting => {
                        // Waiting at a locked or ended class: this client gives up.
                        self.apply(j.effects, Some(origin))?;
                        let fx = self.hub.disconnected(conn, self.now);
                        self.apply(fx, Some(origin))?;
                        self.views.remove(&conn);
                    }
                    Ok(j) => self.apply(j.effects, Some(origin))?,
                    Err(_) => {
                        if self.hub.peer_of(conn).is_none() {
                            self.views.remove(&conn);
                        }
                    }
                }
            }
            Op::Resume { conn, of_conn } => {
                let (conn, of_conn) = (conn as ConnId, of_conn as ConnId);
                if self.hub.peer_of(conn).is_some() {
                    return Ok(());
                }
                let Some(token) = self.resume.get(&of_conn).cloned() else {
                    return Ok(());
                };
                let Some(peer) = self.hub.resume_tokens.get(&token).cloned() else {
                    return Ok(());
                };
                let class = self.hub.class_of(&peer).unwrap().clone();
                let role = self
                    .hub
                    .roster(&class)
                    .unwrap()
                    .into_iter()
                    .find(|p| p.id == peer)
                    .unwrap()
                    .role;
                self.counter += 1;
                self.views.entry(conn).or_default();
                let r = JoinRequest {
                    class: class.clone(),
                    role,
                    fixed_name: None,
                    name: Some("again".into()),
                    resume: Some(token),
                    new_resume_token: format!("tok{}", self.counter),
                    browser: None,
                    personal_token: None,
                    student: None,
                    now_ms: self.now,
                };
                let j = self.hub.join(conn, r, no_ice);
                prop_assert!(j.is_ok(), "resume of a live peer failed: {:?}", j.err());
                let j = j.unwrap();
                prop_assert_eq!(&j.peer, &peer, "resume must restore the identity");
                self.apply(j.effects, Some(&class))?;
            }
            Op::Drop { conn } => {
                let conn = conn as ConnId;
                if self.views.remove(&conn).is_some() {
                    let class = self
                        .hub
                        .peer_of(conn)
                        .and_then(|p| self.hub.class_of(p))
                        .cloned();
                    let fx = self.hub.disconnected(conn, self.now);
                    self.apply(fx, class.as_deref())?;
                }
            }
            Op::Tick { advance_ms } => {
                self.now += advance_ms as u64;
                let fx = self.hub.tick(self.now);
                // Expiry notices go to each expired peer's own class only.
                for e in &fx {
                    if let Effect::Deliver {
                        to,
                        msg: ServerMessage::PeerLeft { id, .. },
                    } = e
                    {
                        let classes: Vec<_> = to
                            .iter()
                            .filter_map(|c| self.views[c].class.clone())
                            .collect();
                        prop_assert!(
                            classes.windows(2).all(|w| w[0] == w[1]),
                            "{id} left to mixed classes"
                        );
                    }
                }
                self.apply(fx, None)?;
            }
            Op::Send {
                conn,
                msg,
                target_conn,
            } => {
                let conn = conn as ConnId;
                let target = self
                    .hub
                    .peer_of(target_conn as ConnId)
                    .cloned()
                    .unwrap_or_else(|| "p0".into());
                let me = self.hub.peer_of(conn).cloned();
                let class = me.as_ref().and_then(|p| self.hub.class_of(p)).cloned();
                let is_teacher = match (&me, &class) {
                    (Some(me), Some(c)) => self
                        .hub
                        .roster(c)
                        .unwrap()
                        .iter()
                        .any(|p| &p.id == me && p.role == Role::Teacher),
                    _ => false,
                };
                let (message, teacher_only) = match msg {
                    MsgKind::Offer => (
                        ClientMessage::Offer {
                            to: target.clone(),
                            sdp: "v=0".into(),
                        },
                        false,
                    ),
                    MsgKind::Chat => (
                        ClientMessage::Chat {
                            text: "hi".into(),
                            to: None,
                        },
                        false,
                    ),
                    MsgKind::Hand => (
                        ClientMessage::Hand {
                            raised: target_conn % 2 == 0,
                        },
                        false,
                    ),
                    MsgKind::Media => (
                        ClientMessage::Media {
                            mic: true,
                            camera: false,
                            screen: false,
                        },
                        false,
                    ),
                    MsgKind::Leave => (ClientMessage::Leave {}, false),
                    MsgKind::Mute => (
                        ClientMessage::Mute {
                            peer: target.clone(),
                            kind: MuteKind::All,
                        },
                        true,
                    ),
                    MsgKind::Remove => (
                        ClientMessage::Remove {
                            peer: target.clone(),
                            reason: None,
                        },
                        true,
                    ),
                    MsgKind::Lock => (ClientMessage::Lock { locked: true }, true),
                    MsgKind::Unlock => (ClientMessage::Lock { locked: false }, true),
                    MsgKind::End => (ClientMessage::End {}, true),
                    MsgKind::Grant => (
                        ClientMessage::Grant {
                            peer: target.clone(),
                            speak: Some(true),
                            camera: None,
                            screen: None,
                            share: None,
                        },
                        true,
                    ),
                };
                let before = class.as_ref().map(|c| {
                    (
                        self.hub.roster(c).unwrap(),
                        self.hub.class_info(c).unwrap().clone(),
                    )
                });
                match self.hub.handle(conn, message, self.now) {
                    Ok(fx) => {
                        prop_assert!(
                            me.is_some(),
                            "a message from an unjoined connection was accepted"
                        );
                        prop_assert!(
                            !teacher_only || is_teacher,
                            "a student did a teacher action"
                        );
                        self.apply(fx, class.as_deref())?;
                    }
                    Err(refusal) => {
                        if me.is_some() && teacher_only && !is_teacher {
                            prop_assert_eq!(refusal.code, ErrorCode::Forbidden);
                        }
                        if let (Some(c), Some(before)) = (&class, before) {
                            let after = (
                                self.hub.roster(c).unwrap(),
                                self.hub.class_info(c).unwrap().clone(),
                            );
                            prop_assert_eq!(before, after, "a refused message changed the class");
                        }
                    }
                }
            }
        }
        self.check_consistency()
    }

    /// Every connected client's view of its class equals the hub's roster, and the indexes agree.
    fn check_consistency(&self) -> Result<(), TestCaseError> {
        for (conn, view) in &self.views {
            let Some(me) = self.hub.peer_of(*conn) else {
                // Still mid-join or closed by the hub: it must not think it is in a class.
                prop_assert!(
                    view.me.is_none(),
                    "conn {conn} believes it is {:?} but the hub disagrees",
                    view.me
                );
                continue;
            };
            prop_assert_eq!(view.me.as_ref(), Some(me));
            let class = self.hub.class_of(me).unwrap();
            let actual: BTreeMap<PeerId, PeerInfo> = self
                .hub
                .roster(class)
                .unwrap()
                .into_iter()
                .filter(|p| p.id != *me)
                .map(|p| (p.id.clone(), p))
                .collect();
            prop_assert_eq!(&view.roster, &actual, "conn {}'s roster diverged", conn);
        }
        for c in CLASSES {
            let roster = self.hub.roster(c).unwrap();
            let students = roster.iter().filter(|p| p.role == Role::Student).count();
            prop_assert!(students <= 6, "more students than the class size");
            prop_assert!(roster.len() - students <= HubLimits::default().teacher_seats);
            for p in roster {
                prop_assert_eq!(self.hub.class_of(&p.id).map(String::as_str), Some(c));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_keep_classes_apart_and_rosters_consistent(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in ops {
            world.step(op)?;
        }
    }
}

/// One step of a session of joins, removals and readmissions in one class.
#[derive(Debug, Clone)]
enum BanOp {
    /// A student joins with maybe a browser id, maybe a personal token, maybe an old resume token.
    Join {
        browser: Option<u8>,
        personal: Option<u8>,
        resume: Option<u8>,
    },
    Remove(u8),
    Readmit(u8),
}

fn ban_op() -> impl Strategy<Value = BanOp> {
    let small = || proptest::option::of(0..3u8);
    prop_oneof![
        3 => (small(), small(), proptest::option::of(0..8u8))
            .prop_map(|(browser, personal, resume)| BanOp::Join { browser, personal, resume }),
        2 => (0..8u8).prop_map(BanOp::Remove),
        1 => (0..4u8).prop_map(BanOp::Readmit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A join is refused as `removed` exactly when it presents the resume token, personal token
    /// or browser id of someone removed and not readmitted; nobody else is ever refused for it.
    #[test]
    fn removal_refuses_exactly_the_removed_identities(ops in proptest::collection::vec(ban_op(), 1..60)) {
            let mut hub = Hub::new(HubLimits::default());
        hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
        join(&mut hub, 1, "c1", Role::Teacher, "T");
        // (peer, browser, personal, resume token) of each present student; the same for bans.
        type Who = (PeerId, Option<String>, Option<String>, String);
        let mut present: Vec<Who> = Vec::new();
        let mut banned: Vec<Who> = Vec::new();
        let mut resume_tokens: Vec<String> = Vec::new();
        let mut conn = 10;
        for op in ops {
            match op {
                BanOp::Join { browser, personal, resume } => {
                    conn += 1;
                    let mut r = req("c1", Role::Student, &format!("s{conn}"));
                    r.browser = browser.map(|b| format!("b{b}"));
                    r.personal_token = personal.map(|p| format!("tok{p}"));
                    r.resume = resume.and_then(|i| resume_tokens.get(i as usize).cloned());
                    r.new_resume_token = format!("rt{conn}");
                    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
                    let expect_refused = banned.iter().any(|(_, b, p, t)| {
                        r.resume.as_ref() == Some(t) || same(b, &r.browser) || same(p, &r.personal_token)
                    });
                    let (browser, personal, resume) = (r.browser.clone(), r.personal_token.clone(), r.resume.clone());
                    match hub.join(conn, r, no_ice) {
                        Err(e) => {
                            prop_assert!(expect_refused, "refused without a ban: {:?}", e);
                            prop_assert_eq!(e.code, ErrorCode::Removed);
                        }
                        Ok(j) => {
                            prop_assert!(!expect_refused, "a removed identity got back in");
                            let resumed = matches!(&to(conn, &j.effects)[0], ServerMessage::Welcome { resumed: true, .. });
                            let token = format!("rt{conn}");
                            resume_tokens.push(token.clone());
                            if resumed {
                                // The same person on a new connection: its resume token moved on.
                                let who = present.iter_mut().find(|w| Some(&w.3) == resume.as_ref()).unwrap();
                                who.3 = token;
                            } else {
                                present.push((j.peer, browser, personal, token));
                            }
                        }
                    }
                }
                BanOp::Remove(i) => {
                    if present.is_empty() {
                        continue;
                    }
                    let who = present.remove(i as usize % present.len());
                    remove(&mut hub, 1, &who.0);
                    banned.push(who);
                }
                BanOp::Readmit(i) => {
                    if banned.is_empty() {
                        continue;
                    }
                    let who = banned.remove(i as usize % banned.len());
                    let fx = hub.handle(1, ClientMessage::Readmit { peer: who.0.clone() }, 0).unwrap();
                    let listed = removed_ids(&fx, 1).unwrap_or_default();
                    let expected: Vec<PeerId> = banned.iter().map(|w| w.0.clone()).collect();
                    prop_assert_eq!(listed, expected);
                }
            }
        }
    }
}
