//! The relay hot path: ChannelData and Send indications from clients to peers, and peer
//! datagrams framed in place (ChannelData or a Data indication) for the client. Per packet it
//! checks the permission and the bandwidth cap and counts; it never allocates.

use super::table::{Allocation, Permission};
use super::{AllocId, ClientAction, Core, FiveTuple, Stats, PEER_HEADROOM};
use crate::turn::filter::PeerFilter;
use crate::turn::stun::{self, attr, method, Class, Message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

/// Why data to a peer may not go.
enum Refusal {
    /// No live permission for the peer's address.
    NoPermission,
    /// A port of the relay's own host that holds no allocation.
    OwnHost,
}

impl<H, R> Core<H, R> {
    fn take_tokens(a: &mut Allocation<H>, rate: u64, n: usize, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let burst = rate.max(16 * 1024);
        let elapsed = now.saturating_duration_since(a.refilled);
        if !elapsed.is_zero() {
            let add = (elapsed.as_nanos().min(u64::MAX as u128) as u64 / 1000).saturating_mul(rate)
                / 1_000_000;
            if add > 0 {
                a.tokens = (a.tokens.saturating_add(add)).min(burst);
                a.refilled = now;
            }
        }
        if a.tokens >= n as u64 {
            a.tokens -= n as u64;
            true
        } else {
            false
        }
    }

    pub(super) fn channel_data(
        &mut self,
        ft: &FiveTuple,
        number: u16,
        payload: Range<usize>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let Some(&id) = self.by_tuple.get(ft) else {
            return ClientAction::None;
        };
        let Some(a) = self.slots[id.index as usize].alloc.as_ref() else {
            return ClientAction::None;
        };
        let Some(ch) = a
            .channels
            .iter()
            .find(|c| c.number == number && c.expires > now)
        else {
            self.stats.no_permission_drops += 1;
            return ClientAction::None;
        };
        let peer = ch.peer;
        self.relay_to_peer(id, peer, payload, now)
    }

    /// The common end of ChannelData and a Send indication: the peer must be permitted and the
    /// allocation within its bandwidth, then `payload` (a range of the client's packet) is relayed.
    fn relay_to_peer(
        &mut self,
        id: AllocId,
        peer: SocketAddr,
        payload: Range<usize>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let rate = self.cfg.bandwidth_bytes_per_sec;
        let Some(a) = self.slots[id.index as usize].alloc.as_mut() else {
            return ClientAction::None;
        };
        if let Err(why) = permitted(
            &a.permissions,
            peer,
            &self.cfg.filter,
            &self.live_ports,
            now,
        ) {
            count_refusal(&mut self.stats, why);
            return ClientAction::None;
        }
        if !Self::take_tokens(a, rate, payload.len(), now) {
            self.stats.bandwidth_drops += 1;
            return ClientAction::None;
        }
        self.stats.packets_client_to_peer += 1;
        self.stats.bytes_client_to_peer += payload.len() as u64;
        ClientAction::Relay {
            handle: &a.handle,
            peer,
            payload,
        }
    }

    pub(super) fn send_indication(
        &mut self,
        ft: &FiveTuple,
        msg: &Message<'_>,
        now: Instant,
    ) -> ClientAction<'_, H> {
        let Some(&id) = self.by_tuple.get(ft) else {
            return ClientAction::None;
        };
        let (Some(peer), Some(data)) =
            (msg.xor_address(attr::XOR_PEER_ADDRESS), msg.get(attr::DATA))
        else {
            return ClientAction::None;
        };
        let start = data.as_ptr() as usize - msg.bytes().as_ptr() as usize;
        self.relay_to_peer(id, peer, start..start + data.len(), now)
    }

    /// Handles a datagram from `peer` received on allocation `id`'s relay socket.
    ///
    /// The payload is `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, and `buf` has at least
    /// [`PEER_TAILROOM`](super::PEER_TAILROOM) bytes after it. On success the framed packet for the client
    /// (ChannelData or a Data indication) is written in place around the payload and its range
    /// returned; `None` means drop.
    pub fn handle_peer(
        &mut self,
        id: AllocId,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
        now: Instant,
    ) -> Option<Range<usize>> {
        let rate = self.cfg.bandwidth_bytes_per_sec;
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        let a = slot.alloc.as_mut()?;
        if let Err(why) = permitted(
            &a.permissions,
            peer,
            &self.cfg.filter,
            &self.live_ports,
            now,
        ) {
            count_refusal(&mut self.stats, why);
            return None;
        }
        if !Self::take_tokens(a, rate, len, now) {
            self.stats.bandwidth_drops += 1;
            return None;
        }
        let end = PEER_HEADROOM + len;
        let padded = PEER_HEADROOM + stun::pad4(len);
        if buf.len() < padded {
            return None;
        }
        self.stats.packets_peer_to_client += 1;
        self.stats.bytes_peer_to_client += len as u64;
        if let Some(ch) = a
            .channels
            .iter()
            .find(|c| c.peer == peer && c.expires > now)
        {
            let start = PEER_HEADROOM - 4;
            stun::write_channel_header(&mut buf[start..], ch.number, len);
            if a.five_tuple.transport.is_stream() {
                buf[end..padded].fill(0);
                return Some(start..padded);
            }
            return Some(start..end);
        }
        // Data indication: header, XOR-PEER-ADDRESS, DATA.
        let xl = stun::xor_address_attr_len(&peer);
        let start = PEER_HEADROOM - 4 - xl - stun::HEADER_LEN;
        a.seq = a.seq.wrapping_add(1);
        let tid: [u8; 12] = indication_tid(a.seq, len);
        let body = (xl + 4 + stun::pad4(len)) as u16;
        let h = &mut buf[start..];
        h[0..2].copy_from_slice(&stun::message_type(method::DATA, Class::Indication).to_be_bytes());
        h[2..4].copy_from_slice(&body.to_be_bytes());
        h[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
        h[8..20].copy_from_slice(&tid);
        stun::write_xor_address(&mut h[20..20 + xl], attr::XOR_PEER_ADDRESS, &peer, &tid);
        let d = 20 + xl;
        h[d..d + 2].copy_from_slice(&attr::DATA.to_be_bytes());
        h[d + 2..d + 4].copy_from_slice(&(len as u16).to_be_bytes());
        buf[end..padded].fill(0);
        Some(start..padded)
    }
}

/// A transaction id for an indication; it need not be unpredictable, only varied.
fn indication_tid(seq: u64, len: usize) -> [u8; 12] {
    let mut x = (seq ^ (len as u64).rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut t = [0u8; 12];
    for chunk in t.chunks_mut(4) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&(x as u32).to_be_bytes());
    }
    t
}

/// Whether data may go to (or come from) `peer`: a live permission for its address, and for a
/// restricted address (the relay's own host, exact allowances) an allowed port.
fn permitted(
    perms: &[Permission],
    peer: SocketAddr,
    filter: &PeerFilter,
    live_ports: &HashMap<u16, u32>,
    now: Instant,
) -> Result<(), Refusal> {
    let Some(p) = perms.iter().find(|p| p.ip == peer.ip() && p.expires > now) else {
        return Err(Refusal::NoPermission);
    };
    if p.restricted && !filter.restricted_port_allowed(peer, |port| live_ports.contains_key(&port))
    {
        return Err(Refusal::OwnHost);
    }
    Ok(())
}

fn count_refusal(stats: &mut Stats, why: Refusal) {
    match why {
        Refusal::NoPermission => stats.no_permission_drops += 1,
        Refusal::OwnHost => stats.denied_peers += 1,
    }
}
