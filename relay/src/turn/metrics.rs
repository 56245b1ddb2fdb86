//! The TURN server's metrics: the one place that names them, and their export through the
//! `metrics` facade.
//!
//! The core counts in plain integers on the hot path; once a second the server exports the
//! differences, so relaying a packet never touches the metrics registry.

use super::core::Stats;
use metrics::{counter, describe_counter, describe_gauge, gauge};

/// Gauge: live allocations.
pub const ALLOCATIONS: &str = "aula_turn_allocations";
/// Counter: allocations created.
pub const ALLOCATIONS_TOTAL: &str = "aula_turn_allocations_total";
/// Counter: payload bytes relayed, labelled `direction`.
pub const RELAYED_BYTES_TOTAL: &str = "aula_turn_relayed_bytes_total";
/// Counter: packets relayed, labelled `direction`.
pub const RELAYED_PACKETS_TOTAL: &str = "aula_turn_relayed_packets_total";
/// Counter: requests refused for their credentials, labelled `reason`.
pub const AUTH_FAILURES_TOTAL: &str = "aula_turn_auth_failures_total";
/// Counter: requests without credentials, answered with a 401 challenge.
pub const CHALLENGES_TOTAL: &str = "aula_turn_challenges_total";
/// Counter: peers refused by the filter, and packets to a relay-host port without allocation.
pub const DENIED_PEERS_TOTAL: &str = "aula_turn_denied_peers_total";
/// Counter: allocations refused by a quota.
pub const QUOTA_REJECTIONS_TOTAL: &str = "aula_turn_quota_rejections_total";
/// Counter: relayed packets dropped, labelled `reason`.
pub const DROPPED_PACKETS_TOTAL: &str = "aula_turn_dropped_packets_total";
/// Gauge: open TCP/TLS connections.
pub const CONNECTIONS: &str = "aula_turn_connections";

pub(crate) fn describe() {
    describe_gauge!(ALLOCATIONS, "Live TURN allocations");
    describe_counter!(ALLOCATIONS_TOTAL, "TURN allocations created");
    describe_counter!(
        RELAYED_BYTES_TOTAL,
        "Payload bytes relayed, by direction (client_to_peer, peer_to_client)"
    );
    describe_counter!(
        RELAYED_PACKETS_TOTAL,
        "Packets relayed, by direction (client_to_peer, peer_to_client)"
    );
    describe_counter!(
        AUTH_FAILURES_TOTAL,
        "TURN requests refused for credentials, by reason"
    );
    describe_counter!(
        CHALLENGES_TOTAL,
        "TURN requests without credentials answered with a 401 challenge"
    );
    describe_counter!(
        DENIED_PEERS_TOTAL,
        "Permissions or channels refused by the peer-address filter (403), and packets dropped \
         because they went to a port of the relay's own host that holds no allocation"
    );
    describe_counter!(
        QUOTA_REJECTIONS_TOTAL,
        "Allocations refused by a quota (486)"
    );
    describe_counter!(
        DROPPED_PACKETS_TOTAL,
        "Relayed packets dropped, by reason (bandwidth, no_permission)"
    );
    describe_gauge!(CONNECTIONS, "Open TURN TCP/TLS connections");
}

/// Exports `now - prev` and the allocation gauge.
pub(crate) fn publish(prev: &Stats, now: &Stats, allocations: usize, connections: usize) {
    gauge!(ALLOCATIONS).set(allocations as f64);
    gauge!(CONNECTIONS).set(connections as f64);
    if prev == now {
        return;
    }
    let d = |a: u64, b: u64| b.saturating_sub(a);
    let c = |name: &'static str, v: u64| {
        if v > 0 {
            counter!(name).increment(v);
        }
    };
    c(
        ALLOCATIONS_TOTAL,
        d(prev.allocations_total, now.allocations_total),
    );
    c(DENIED_PEERS_TOTAL, d(prev.denied_peers, now.denied_peers));
    c(
        QUOTA_REJECTIONS_TOTAL,
        d(prev.quota_rejections, now.quota_rejections),
    );
    c(CHALLENGES_TOTAL, d(prev.auth_missing, now.auth_missing));
    for (dir, b0, b1, p0, p1) in [
        (
            "client_to_peer",
            prev.bytes_client_to_peer,
            now.bytes_client_to_peer,
            prev.packets_client_to_peer,
            now.packets_client_to_peer,
        ),
        (
            "peer_to_client",
            prev.bytes_peer_to_client,
            now.bytes_peer_to_client,
            prev.packets_peer_to_client,
            now.packets_peer_to_client,
        ),
    ] {
        if b1 > b0 {
            counter!(RELAYED_BYTES_TOTAL, "direction" => dir).increment(b1 - b0);
        }
        if p1 > p0 {
            counter!(RELAYED_PACKETS_TOTAL, "direction" => dir).increment(p1 - p0);
        }
    }
    for (reason, a, b) in [
        ("expired", prev.auth_expired, now.auth_expired),
        (
            "expiry_too_far",
            prev.auth_too_far_ahead,
            now.auth_too_far_ahead,
        ),
        (
            "bad_integrity",
            prev.auth_bad_integrity,
            now.auth_bad_integrity,
        ),
        (
            "bad_username",
            prev.auth_bad_username,
            now.auth_bad_username,
        ),
        ("stale_nonce", prev.auth_stale_nonce, now.auth_stale_nonce),
        (
            "wrong_credentials",
            prev.auth_wrong_credentials,
            now.auth_wrong_credentials,
        ),
    ] {
        if b > a {
            counter!(AUTH_FAILURES_TOTAL, "reason" => reason).increment(b - a);
        }
    }
    for (reason, a, b) in [
        ("bandwidth", prev.bandwidth_drops, now.bandwidth_drops),
        (
            "no_permission",
            prev.no_permission_drops,
            now.no_permission_drops,
        ),
    ] {
        if b > a {
            counter!(DROPPED_PACKETS_TOTAL, "reason" => reason).increment(b - a);
        }
    }
}
