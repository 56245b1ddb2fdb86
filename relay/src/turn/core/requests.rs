//! Request handling: Binding, and the authenticated TURN requests Allocate, Refresh,
//! CreatePermission and ChannelBind, each answered with a success or an error response.

use super::table::{
    bump, install_permission, quota_class, quota_user, Allocation, Channel, Reservation, Slot,
    RESERVATION_LIFETIME,
};
use super::{AllocId, Core, Family, FiveTuple, Now, PortRequest, RelayBinder};
use crate::turn::filter::Verdict;
use crate::turn::stun::{attr, code, method, Class, Message, MessageWriter};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Known comprehension-required attributes (anything else in a request is answered with 420).
fn known_attribute(t: u16) -> bool {
    matches!(
        t,
        attr::USERNAME
            | attr::MESSAGE_INTEGRITY
            | attr::REALM
            | attr::NONCE
            | attr::CHANNEL_NUMBER
            | attr::LIFETIME
            | attr::XOR_PEER_ADDRESS
            | attr::DATA
            | attr::REQUESTED_ADDRESS_FAMILY
            | attr::REQUESTED_TRANSPORT
            | attr::DONT_FRAGMENT
            | attr::XOR_MAPPED_ADDRESS
            | attr::PRIORITY
            | attr::USE_CANDIDATE
            | attr::ERROR_CODE
            | attr::EVEN_PORT
            | attr::RESERVATION_TOKEN
    )
}

impl<H, R> Core<H, R> {
    pub(super) fn request<B: RelayBinder<Handle = H, Reserved = R>>(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Now,
        out: &mut Vec<u8>,
        binder: &mut B,
    ) {
        let tid = *msg.transaction_id();
        let m = msg.method();
        let fp = msg.has_fingerprint();
        if m == method::BINDING {
            let mut w = MessageWriter::new(out, m, Class::Success, &tid);
            w.xor_address(attr::XOR_MAPPED_ADDRESS, &ft.client);
            if fp {
                w.fingerprint();
            }
            return;
        }
        if !matches!(
            m,
            method::ALLOCATE | method::REFRESH | method::CREATE_PERMISSION | method::CHANNEL_BIND
        ) {
            simple_error(out, m, &tid, code::BAD_REQUEST, fp);
            return;
        }
        if let Some(t) = msg.unknown_required(known_attribute) {
            let mut w = MessageWriter::new(out, m, Class::Error, &tid);
            w.error_code_only(code::UNKNOWN_ATTRIBUTE)
                .unknown_attributes(t);
            if fp {
                w.fingerprint();
            }
            return;
        }
        // Long-term credentials (RFC 8489 §9.2.4).
        let Some(key) = self.authenticate(ft, msg, now, out) else {
            return;
        };
        let id = self.by_tuple.get(ft).copied();
        match m {
            method::ALLOCATE => self.allocate(ft, msg, id, key, now, out, binder),
            method::REFRESH => self.refresh(msg, id, key, now, out),
            method::CREATE_PERMISSION => self.create_permission(msg, id, key, now, out),
            method::CHANNEL_BIND => self.channel_bind(msg, id, key, now, out),
            _ => unreachable!("checked above"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate<B: RelayBinder<Handle = H, Reserved = R>>(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
        binder: &mut B,
    ) {
        let tid = *msg.transaction_id();
        let fp = msg.has_fingerprint();
        let err = |out: &mut Vec<u8>, code: u16| Answer::to(msg, key).error(out, code);
        if let Some(id) = id {
            let a = self.get(id).expect("indexed allocation exists");
            if a.created_tid == tid {
                // A retransmission: answer as before.
                let (relayed, remaining) =
                    (a.relayed, a.expires.saturating_duration_since(now.mono));
                self.allocate_success(ft, &tid, relayed, remaining, None, &key, fp, out);
            } else {
                err(out, code::ALLOCATION_MISMATCH);
            }
            return;
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return err(out, code::BAD_REQUEST),
            Some(v) if v.len() != 4 => return err(out, code::BAD_REQUEST),
            Some(v) if v[0] != 17 => return err(out, code::UNSUPPORTED_TRANSPORT_PROTOCOL),
            Some(_) => {}
        }
        let family = match msg.get(attr::REQUESTED_ADDRESS_FAMILY) {
            None => Family::V4,
            Some([1, ..]) => Family::V4,
            Some([2, ..]) => Family::V6,
            Some(_) => return err(out, code::ADDRESS_FAMILY_NOT_SUPPORTED),
        };
        let Some(advertised) = self
            .cfg
            .advertised
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
        else {
            return err(out, code::ADDRESS_FAMILY_NOT_SUPPORTED);
        };
        let username = msg.username().expect("authenticated").to_string();
        let user = quota_user(&username).to_string();
        let class = quota_class(&user).to_string();
        let held = |m: &HashMap<String, usize>, k: &str| m.get(k).copied().unwrap_or(0);
        if self.count >= self.cfg.max_allocations
            || held(&self.per_user, &user) >= self.cfg.max_allocations_per_user
            || held(&self.per_class, &class) >= self.cfg.max_allocations_per_class
            || self.per_ip.get(&ft.client.ip()).copied().unwrap_or(0)
                >= self.cfg.max_allocations_per_ip
        {
            self.stats.quota_rejections += 1;
            return err(out, code::ALLOCATION_QUOTA_REACHED);
        }
        let even = msg.get(attr::EVEN_PORT);
        let token = msg.get(attr::RESERVATION_TOKEN);
        let reservation = match (even, token) {
            (Some(_), Some(_)) => return err(out, code::BAD_REQUEST),
            (None, Some(t)) => {
                let Ok(t) = <[u8; 8]>::try_from(t) else {
                    return err(out, code::BAD_REQUEST);
                };
                match self.reservations.remove(&t) {
                    Some(r) if r.expires > now.mono && r.family == family => Some(r),
                    _ => return err(out, code::INSUFFICIENT_CAPACITY),
                }
            }
            _ => None,
        };
        let port_request = match even {
            None => PortRequest::Any,
            Some([b, ..]) if b & 0x80 != 0 => {
                if self.reservations.len() >= self.cfg.max_allocations {
                    return err(out, code::INSUFFICIENT_CAPACITY);
                }
                PortRequest::EvenReserveNext
            }
            Some(_) => PortRequest::Even,
        };
        let lifetime = self.lifetime(msg);
        // Reserve a slot, then bind.
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    alloc: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let new_id = AllocId {
            index,
            gen: self.slots[index as usize].gen,
        };
        let bound = match reservation {
            Some(r) => binder
                .bind_reserved(new_id, r.reserved)
                .map(|h| (r.port, h, None)),
            None => binder.bind(new_id, family, port_request),
        };
        let (port, handle, reserved) = match bound {
            Ok(x) => x,
            Err(_) => {
                self.free.push(index);
                return err(out, code::INSUFFICIENT_CAPACITY);
            }
        };
        let new_token = reserved.map(|reserved| {
            let t = self.reservation_token();
            self.reservations.insert(
                t,
                Reservation {
                    reserved,
                    port: port.wrapping_add(1),
                    family,
                    expires: now.mono + RESERVATION_LIFETIME,
                },
            );
            t
        });
        let relayed = SocketAddr::new(advertised, port);
        self.slots[index as usize].alloc = Some(Allocation {
            five_tuple: *ft,
            handle,
            relayed,
            family,
            username,
            user: user.clone(),
            class: class.clone(),
            key,
            created_tid: tid,
            expires: now.mono + lifetime,
            permissions: Vec::new(),
            channels: Vec::new(),
            tokens: self.cfg.bandwidth_bytes_per_sec.max(16 * 1024),
            refilled: now.mono,
            seq: 0,
        });
        self.by_tuple.insert(*ft, new_id);
        self.by_relayed.insert(relayed, new_id);
        bump(&mut self.per_user, user, true);
        bump(&mut self.per_class, class, true);
        bump(&mut self.per_ip, ft.client.ip(), true);
        *self.live_ports.entry(port).or_insert(0) += 1;
        self.count += 1;
        self.stats.allocations_total += 1;
        self.allocate_success(ft, &tid, relayed, lifetime, new_token, &key, fp, out);
    }

    /// An unguessable reservation token.
    fn reservation_token(&mut self) -> [u8; 8] {
        self.reservation_seq += 1;
        let mut mac =
            <Hmac<Sha1> as KeyInit>::new_from_slice(&self.nonce_key).expect("any key length");
        mac.update(b"reservation");
        mac.update(&self.reservation_seq.to_be_bytes());
        mac.finalize().into_bytes()[..8]
            .try_into()
            .expect("8 bytes")
    }

    #[allow(clippy::too_many_arguments)]
    fn allocate_success(
        &self,
        ft: &FiveTuple,
        tid: &[u8; 12],
        relayed: SocketAddr,
        lifetime: Duration,
        token: Option<[u8; 8]>,
        key: &[u8; 16],
        fp: bool,
        out: &mut Vec<u8>,
    ) {
        let mut w = MessageWriter::new(out, method::ALLOCATE, Class::Success, tid);
        w.xor_address(attr::XOR_RELAYED_ADDRESS, &relayed)
            .u32_attr(attr::LIFETIME, lifetime.as_secs() as u32)
            .xor_address(attr::XOR_MAPPED_ADDRESS, &ft.client);
        if let Some(t) = token {
            w.attr(attr::RESERVATION_TOKEN, &t);
        }
        w.attr(attr::SOFTWARE, self.cfg.software.as_bytes())
            .integrity(key);
        if fp {
            w.fingerprint();
        }
    }

    fn lifetime(&self, msg: &Message<'_>) -> Duration {
        let max = self.cfg.max_lifetime;
        match msg.u32_attr(attr::LIFETIME) {
            Some(s) => Duration::from_secs(s as u64).min(max),
            None => self.cfg.default_lifetime.min(max),
        }
    }

    fn refresh(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, code::ALLOCATION_MISMATCH);
        };
        let lifetime = self.lifetime(msg);
        let family = self.get(id).expect("exists").family;
        let requested = match msg.get(attr::REQUESTED_ADDRESS_FAMILY) {
            Some([1, ..]) => Some(Family::V4),
            Some([2, ..]) => Some(Family::V6),
            Some(_) => return answer.error(out, code::ADDRESS_FAMILY_NOT_SUPPORTED),
            None => None,
        };
        if requested.is_some_and(|f| f != family) {
            return answer.error(out, code::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        if lifetime.is_zero() {
            drop(self.remove(id));
        } else if let Some(a) = self.get_mut(id) {
            a.expires = now.mono + lifetime;
        }
        answer.success(out, |w| {
            w.u32_attr(attr::LIFETIME, lifetime.as_secs() as u32);
        });
    }

    /// Checks a peer for a new permission or channel: `Ok(restricted)` or the error code.
    fn check_peer(
        &mut self,
        family: Family,
        peer: SocketAddr,
        need_port: bool,
    ) -> Result<bool, u16> {
        if Family::of(peer.ip()) != family {
            return Err(code::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        match self.cfg.filter.verdict(peer.ip()) {
            Verdict::Allow => Ok(false),
            Verdict::Restricted
                if !need_port
                    || self
                        .cfg
                        .filter
                        .restricted_port_allowed(peer, |p| self.live_ports.contains_key(&p)) =>
            {
                Ok(true)
            }
            _ => {
                self.stats.denied_peers += 1;
                Err(code::FORBIDDEN)
            }
        }
    }

    fn create_permission(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, code::ALLOCATION_MISMATCH);
        };
        let family = self.get(id).expect("exists").family;
        let mut peers: [(IpAddr, bool); 8] = [(IpAddr::from([0, 0, 0, 0]), false); 8];
        let mut n = 0;
        for p in msg.xor_peer_addresses() {
            let Some(p) = p else {
                return answer.error(out, code::BAD_REQUEST);
            };
            if n == peers.len() {
                return answer.error(out, code::INSUFFICIENT_CAPACITY);
            }
            match self.check_peer(family, p, false) {
                Ok(restricted) => peers[n] = (p.ip(), restricted),
                Err(code) => return answer.error(out, code),
            }
            n += 1;
        }
        if n == 0 {
            return answer.error(out, code::BAD_REQUEST);
        }
        let max = self.cfg.max_permissions_per_allocation;
        let expires = now.mono + self.cfg.permission_lifetime;
        let a = self.get_mut(id).expect("exists");
        let new = peers[..n]
            .iter()
            .filter(|(ip, _)| {
                !a.permissions
                    .iter()
                    .any(|p| p.ip == *ip && p.expires > now.mono)
            })
            .count();
        let live = a
            .permissions
            .iter()
            .filter(|p| p.expires > now.mono)
            .count();
        if live + new > max {
            return answer.error(out, code::INSUFFICIENT_CAPACITY);
        }
        for &(ip, restricted) in &peers[..n] {
            install_permission(&mut a.permissions, ip, restricted, expires, now.mono);
        }
        answer.success(out, |_| {});
    }

    fn channel_bind(
        &mut self,
        msg: &Message<'_>,
        id: Option<AllocId>,
        key: [u8; 16],
        now: Now,
        out: &mut Vec<u8>,
    ) {
        let answer = Answer::to(msg, key);
        let Some(id) = id else {
            return answer.error(out, code::ALLOCATION_MISMATCH);
        };
        let number = match msg.u32_attr(attr::CHANNEL_NUMBER) {
            Some(v) => (v >> 16) as u16,
            None => return answer.error(out, code::BAD_REQUEST),
        };
        if !(0x4000..=0x7FFF).contains(&number) {
            return answer.error(out, code::BAD_REQUEST);
        }
        let Some(peer) = msg.xor_address(attr::XOR_PEER_ADDRESS) else {
            return answer.error(out, code::BAD_REQUEST);
        };
        let family = self.get(id).expect("exists").family;
        let restricted = match self.check_peer(family, peer, true) {
            Ok(restricted) => restricted,
            Err(code) => return answer.error(out, code),
        };
        let max_ch = self.cfg.max_channels_per_allocation;
        let max_perm = self.cfg.max_permissions_per_allocation;
        let ch_expires = now.mono + self.cfg.channel_lifetime;
        let perm_expires = now.mono + self.cfg.permission_lifetime;
        let a = self.get_mut(id).expect("exists");
        let by_number = a.channels.iter().position(|c| c.number == number);
        let by_peer = a.channels.iter().position(|c| c.peer == peer);
        match (by_number, by_peer) {
            (Some(i), Some(j)) if i == j => a.channels[i].expires = ch_expires,
            (None, None) => {
                a.channels.retain(|c| c.expires > now.mono);
                let has_perm = a
                    .permissions
                    .iter()
                    .any(|p| p.ip == peer.ip() && p.expires > now.mono);
                let live_perms = a
                    .permissions
                    .iter()
                    .filter(|p| p.expires > now.mono)
                    .count();
                if a.channels.len() >= max_ch || (!has_perm && live_perms >= max_perm) {
                    return answer.error(out, code::INSUFFICIENT_CAPACITY);
                }
                a.channels.push(Channel {
                    number,
                    peer,
                    expires: ch_expires,
                });
            }
            _ => return answer.error(out, code::BAD_REQUEST),
        }
        install_permission(
            &mut a.permissions,
            peer.ip(),
            restricted,
            perm_expires,
            now.mono,
        );
        answer.success(out, |_| {});
    }
}

/// An unauthenticated error response: no reason phrase, to keep it small (amplification).
pub(super) fn simple_error(out: &mut Vec<u8>, m: u16, tid: &[u8; 12], code: u16, fp: bool) {
    out.clear();
    let mut w = MessageWriter::new(out, m, Class::Error, tid);
    w.error_code_only(code);
    if fp {
        w.fingerprint();
    }
}

/// The answer to one authenticated request: its method and transaction id, the key of its
/// MESSAGE-INTEGRITY, and whether it carried a FINGERPRINT (the answer then carries one too).
#[derive(Clone, Copy)]
struct Answer {
    method: u16,
    tid: [u8; 12],
    key: [u8; 16],
    fingerprint: bool,
}

impl Answer {
    fn to(msg: &Message<'_>, key: [u8; 16]) -> Answer {
        Answer {
            method: msg.method(),
            tid: *msg.transaction_id(),
            key,
            fingerprint: msg.has_fingerprint(),
        }
    }

    /// An error response with `code`, replacing whatever `out` holds.
    fn error(&self, out: &mut Vec<u8>, code: u16) {
        out.clear();
        let mut w = MessageWriter::new(out, self.method, Class::Error, &self.tid);
        w.error(code).integrity(&self.key);
        if self.fingerprint {
            w.fingerprint();
        }
    }

    /// A success response with the attributes `attrs` writes, then integrity and fingerprint.
    fn success(&self, out: &mut Vec<u8>, attrs: impl FnOnce(&mut MessageWriter<'_>)) {
        let mut w = MessageWriter::new(out, self.method, Class::Success, &self.tid);
        attrs(&mut w);
        w.integrity(&self.key);
        if self.fingerprint {
            w.fingerprint();
        }
    }
}
