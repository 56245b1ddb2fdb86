//! Publishes the core's counters through the `metrics` facade.
//!
//! The core counts in plain integers on the hot path; once a second the server exports the
//! differences, so relaying a packet never touches the metrics registry.

use super::core::Stats;
use metrics::{counter, describe_counter, describe_gauge, gauge};

pub(crate) fn describe() {
    describe_gauge!("aula_turn_allocations", "Live TURN allocations");
    describe_counter!("aula_turn_allocations_total", "TURN allocations created");
    describe_counter!(
        "aula_turn_relayed_bytes_total",
        "Payload bytes relayed, by direction (client_to_peer, peer_to_client)"
    );
    describe_counter!(
        "aula_turn_relayed_packets_total",
        "Packets relayed, by direction (client_to_peer, peer_to_client)"
    );
    describe_counter!(
        "aula_turn_auth_failures_total",
        "TURN requests refused for credentials, by reason"
    );
    describe_counter!(
        "aula_turn_challenges_total",
        "TURN requests without credentials answered with a 401 challenge"
    );
    describe_counter!(
        "aula_turn_denied_peers_total",
        "Permissions or channels refused by the peer-address filter (403), and packets dropped \
         because they went to a port of the relay's own host that holds no allocation"
    );
    describe_counter!(
        "aula_turn_quota_rejections_total",
        "Allocations refused by a quota (486)"
    );
    describe_counter!(
        "aula_turn_dropped_packets_total",
        "Relayed packets dropped, by reason (bandwidth, no_permission)"
    );
    describe_gauge!("aula_turn_connections", "Open TURN TCP/TLS connections");
}

/// Exports `now - prev` and the allocation gauge.
pub(crate) fn publish(prev: &Stats, now: &Stats, allocations: usize, connections: usize) {
    gauge!("aula_turn_allocations").set(allocations as f64);
    gauge!("aula_turn_connections").set(connections as f64);
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
        "aula_turn_allocations_total",
        d(prev.allocations_total, now.allocations_total),
    );
    c(
        "aula_turn_denied_peers_total",
        d(prev.denied_peers, now.denied_peers),
    );
    c(
        "aula_turn_quota_rejections_total",
        d(prev.quota_rejections, now.quota_rejections),
    );
    c(
        "aula_turn_challenges_total",
        d(prev.auth_missing, now.auth_missing),
    );
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
            counter!("aula_turn_relayed_bytes_total", "direction" => dir).increment(b1 - b0);
        }
        if p1 > p0 {
            counter!("aula_turn_relayed_packets_total", "direction" => dir).increment(p1 - p0);
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
            counter!("aula_turn_auth_failures_total", "reason" => reason).increment(b - a);
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
            counter!("aula_turn_dropped_packets_total", "reason" => reason).increment(b - a);
        }
    }
}
