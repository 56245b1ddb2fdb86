//! Fixtures shared by the hub's unit tests: a hub with small limits and two classes, join
//! requests, and readers of the effects a call returned.

use super::*;
use crate::protocol::IceServer;

pub(super) fn hub() -> Hub {
    let mut hub = Hub::new(HubLimits {
        max_class_size: 5,
        chat_history: 3,
        ..HubLimits::default()
    });
    hub.add_class("c1".into(), "Maths".into(), Topology::Auto);
    hub.add_class("c2".into(), "Biology".into(), Topology::Auto);
    hub
}

pub(super) fn req(class: &str, role: Role, name: &str) -> JoinRequest {
    JoinRequest {
        class: class.into(),
        role,
        fixed_name: None,
        name: Some(name.into()),
        resume: None,
        new_resume_token: format!("rt-{name}-{class}"),
        browser: None,
        personal_token: None,
        student: None,
        now_ms: 0,
    }
}

pub(super) fn no_ice(_: &PeerId) -> Vec<IceServer> {
    Vec::new()
}

pub(super) fn join(
    hub: &mut Hub,
    conn: ConnId,
    class: &str,
    role: Role,
    name: &str,
) -> (PeerId, Vec<Effect>) {
    let j = hub
        .join(conn, req(class, role, name), no_ice)
        .expect("join succeeds");
    (j.peer, j.effects)
}

/// Messages delivered to `conn`, in order.
pub(super) fn to(conn: ConnId, effects: &[Effect]) -> Vec<ServerMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { to, msg } if to.contains(&conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn closed(conn: ConnId, effects: &[Effect]) -> Option<u16> {
    effects.iter().find_map(|e| match e {
        Effect::Close { conn: c, code, .. } if *c == conn => Some(*code),
        _ => None,
    })
}

/// The code of the first error delivered to `conn`.
pub(super) fn error_code(conn: ConnId, effects: &[Effect]) -> Option<ErrorCode> {
    to(conn, effects).into_iter().find_map(|m| match m {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    })
}

pub(super) fn removed_ids(fx: &[Effect], conn: ConnId) -> Option<Vec<PeerId>> {
    to(conn, fx).into_iter().rev().find_map(|m| match m {
        ServerMessage::RemovedList { removed } => Some(removed.into_iter().map(|r| r.id).collect()),
        _ => None,
    })
}

pub(super) fn remove(hub: &mut Hub, teacher: ConnId, peer: &str) -> Vec<Effect> {
    let msg = ClientMessage::Remove {
        peer: peer.into(),
        reason: None,
    };
    hub.handle(teacher, msg, 0).unwrap()
}
