//! The allocation table: slots with generations, the indexes by five-tuple, user, class, client
//! IP and relay port that quotas and the peer filter read, lifetimes, and port reservations.

use super::{AllocId, Core, Family, FiveTuple};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long a reserved port waits for its Allocate (RFC 8656 §7.2: about 30 s).
pub(super) const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(super) struct Reservation<R> {
    pub(super) reserved: R,
    pub(super) port: u16,
    pub(super) family: Family,
    pub(super) expires: Instant,
}

#[derive(Debug)]
pub(super) struct Permission {
    pub(super) ip: IpAddr,
    pub(super) expires: Instant,
    /// A [`Verdict::Restricted`] address: only live relay ports and exact allowances.
    pub(super) restricted: bool,
}

#[derive(Debug)]
pub(super) struct Channel {
    pub(super) number: u16,
    pub(super) peer: SocketAddr,
    pub(super) expires: Instant,
}

#[derive(Debug)]
pub(super) struct Allocation<H> {
    pub(super) five_tuple: FiveTuple,
    pub(super) handle: H,
    pub(super) relayed: SocketAddr,
    pub(super) family: Family,
    pub(super) username: String,
    pub(super) user: String,
    pub(super) class: String,
    pub(super) key: [u8; 16],
    pub(super) created_tid: [u8; 12],
    pub(super) expires: Instant,
    pub(super) permissions: Vec<Permission>,
    pub(super) channels: Vec<Channel>,
    pub(super) tokens: u64,
    pub(super) refilled: Instant,
    pub(super) seq: u64,
}

pub(super) struct Slot<H> {
    pub(super) gen: u32,
    pub(super) alloc: Option<Allocation<H>>,
}

/// The part of a REST username quotas count: the identity after `expiry:`.
pub(super) fn quota_user(username: &str) -> &str {
    match username.split_once(':') {
        Some((_, id)) => id,
        None => username,
    }
}

/// The class of an identity `class/peer` (signaling mints these); an identity without `/` is
/// its own class.
pub(super) fn quota_class(user: &str) -> &str {
    match user.split_once('/') {
        Some((class, _)) => class,
        None => user,
    }
}

/// Adds `delta` (±1) to a count, removing the entry at zero.
pub(super) fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K, up: bool) {
    use std::collections::hash_map::Entry;
    match map.entry(key) {
        Entry::Occupied(mut e) => {
            if up {
                *e.get_mut() += 1;
            } else if *e.get() <= 1 {
                e.remove();
            } else {
                *e.get_mut() -= 1;
            }
        }
        Entry::Vacant(e) => {
            if up {
                e.insert(1);
            }
        }
    }
}

impl<H, R> Core<H, R> {
    /// Live allocations.
    pub fn allocation_count(&self) -> usize {
        self.count
    }
    /// The allocation of a five-tuple, if any.
    pub fn allocation_of(&self, ft: &FiveTuple) -> Option<AllocId> {
        self.by_tuple.get(ft).copied()
    }
    /// The live allocation whose relayed (advertised) address is `addr`, if any: data a client
    /// sends there is relay-to-relay data the I/O layer may hand over without a socket.
    pub fn allocation_at(&self, addr: SocketAddr) -> Option<AllocId> {
        self.by_relayed.get(&addr).copied()
    }
    /// The relayed address of an allocation.
    pub fn relayed_address(&self, id: AllocId) -> Option<SocketAddr> {
        self.get(id).map(|a| a.relayed)
    }

    /// The I/O handle of a live allocation (`None` for an id that names none any more).
    pub fn handle(&self, id: AllocId) -> Option<&H> {
        self.get(id).map(|a| &a.handle)
    }

    pub(super) fn get(&self, id: AllocId) -> Option<&Allocation<H>> {
        let s = self.slots.get(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.alloc.as_ref()
    }
    pub(super) fn get_mut(&mut self, id: AllocId) -> Option<&mut Allocation<H>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.gen != id.gen {
            return None;
        }
        s.alloc.as_mut()
    }

    /// Removes an allocation (e.g. its TCP connection closed); returns its handle.
    pub fn remove(&mut self, id: AllocId) -> Option<H> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        let a = slot.alloc.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(id.index);
        self.by_tuple.remove(&a.five_tuple);
        self.by_relayed.remove(&a.relayed);
        bump(&mut self.per_user, a.user, false);
        bump(&mut self.per_class, a.class, false);
        bump(&mut self.per_ip, a.five_tuple.client.ip(), false);
        if let std::collections::hash_map::Entry::Occupied(mut e) =
            self.live_ports.entry(a.relayed.port())
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        self.count -= 1;
        Some(a.handle)
    }

    /// Removes the allocation of a five-tuple, if any.
    pub fn remove_five_tuple(&mut self, ft: &FiveTuple) -> Option<H> {
        let id = self.allocation_of(ft)?;
        self.remove(id)
    }

    /// Expires allocations, permissions and channels; returns the handles of removed
    /// allocations (drop them to close their sockets).
    pub fn tick(&mut self, now: Instant) -> Vec<H> {
        self.reservations.retain(|_, r| r.expires > now);
        let mut expired = Vec::new();
        for i in 0..self.slots.len() {
            let gen = self.slots[i].gen;
            let Some(a) = self.slots[i].alloc.as_mut() else {
                continue;
            };
            if a.expires <= now {
                expired.push(AllocId {
                    index: i as u32,
                    gen,
                });
                continue;
            }
            a.permissions.retain(|p| p.expires > now);
            a.channels.retain(|c| c.expires > now);
        }
        expired
            .into_iter()
            .filter_map(|id| self.remove(id))
            .collect()
    }
}

pub(super) fn install_permission(
    perms: &mut Vec<Permission>,
    ip: IpAddr,
    restricted: bool,
    expires: Instant,
    now: Instant,
) {
    if let Some(p) = perms.iter_mut().find(|p| p.ip == ip) {
        p.expires = expires;
        p.restricted = restricted;
    } else {
        perms.retain(|p| p.expires > now);
        perms.push(Permission {
            ip,
            expires,
            restricted,
        });
    }
}
