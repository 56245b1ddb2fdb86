//! Publishes the SFU core's counters through the `metrics` facade.
//!
//! Like the TURN server, the core counts in plain integers on the hot path and the I/O layer
//! exports the differences about once a second, so forwarding a packet never touches the
//! metrics registry.

use super::core::SfuStats;
use super::keyframe::KeyframeReason;
use metrics::{counter, describe_counter, describe_gauge, gauge};

pub(crate) fn describe() {
    describe_gauge!("aula_sfu_publishers", "Publishers connected to the SFU");
    describe_gauge!("aula_sfu_subscribers", "Subscribers connected to the SFU");
    describe_counter!(
        "aula_sfu_forwarded_packets_total",
        "Datagrams (RTP, RTX, RTCP) the SFU sent to subscribers"
    );
    describe_counter!(
        "aula_sfu_forwarded_bytes_total",
        "Bytes of the datagrams the SFU sent to subscribers"
    );
    describe_counter!(
        "aula_sfu_keyframe_requests_total",
        "Keyframe requests (PLI/FIR) sent to publishers, by reason (subscriber, new_subscriber, loss, layer_switch)"
    );
    describe_counter!(
        "aula_sfu_nacks_total",
        "NACKs, by direction (from_subscriber: answered with RTX; to_publisher: gaps in a publisher's stream)"
    );
    describe_counter!(
        "aula_sfu_layer_switches_total",
        "Simulcast layer switches for subscribers"
    );
    describe_counter!(
        "aula_sfu_layer_downgrades_total",
        "Times a subscriber's wanted simulcast layer was lowered, by cause (loss, bandwidth)"
    );
    describe_counter!(
        "aula_sfu_bandwidth_reprobes_total",
        "Times the link of a subscriber held below its best layers by its bandwidth estimate was probed again"
    );
    describe_counter!(
        "aula_sfu_expired_total",
        "Peers dropped because they did not connect within sfu.offer_timeout_secs (mostly unanswered subscriber offers)"
    );
}

/// Exports `now - prev` and the gauges.
pub(crate) fn publish(prev: &SfuStats, now: &SfuStats) {
    gauge!("aula_sfu_publishers").set(now.publishers as f64);
    gauge!("aula_sfu_subscribers").set(now.subscribers as f64);
    let d = |a: u64, b: u64| b.saturating_sub(a);
    let inc = |v: u64, c: metrics::Counter| {
        if v > 0 {
            c.increment(v);
        }
    };
    inc(
        d(prev.forwarded_packets, now.forwarded_packets),
        counter!("aula_sfu_forwarded_packets_total"),
    );
    inc(
        d(prev.forwarded_bytes, now.forwarded_bytes),
        counter!("aula_sfu_forwarded_bytes_total"),
    );
    let reasons = [
        KeyframeReason::Subscriber,
        KeyframeReason::NewSubscriber,
        KeyframeReason::Loss,
        KeyframeReason::LayerSwitch,
    ];
    for (i, r) in reasons.into_iter().enumerate() {
        inc(
            d(prev.keyframe_requests[i], now.keyframe_requests[i]),
            counter!("aula_sfu_keyframe_requests_total", "reason" => r.label()),
        );
    }
    inc(
        d(prev.nacks_from_subscribers, now.nacks_from_subscribers),
        counter!("aula_sfu_nacks_total", "direction" => "from_subscriber"),
    );
    inc(
        d(prev.nacks_to_publishers, now.nacks_to_publishers),
        counter!("aula_sfu_nacks_total", "direction" => "to_publisher"),
    );
    // Incremented even by 0, so dashboards see the series before the first switch.
    counter!("aula_sfu_layer_switches_total").increment(d(prev.layer_switches, now.layer_switches));
    for (i, cause) in ["loss", "bandwidth"].into_iter().enumerate() {
        counter!("aula_sfu_layer_downgrades_total", "cause" => cause)
            .increment(d(prev.layer_downgrades[i], now.layer_downgrades[i]));
    }
    counter!("aula_sfu_bandwidth_reprobes_total")
        .increment(d(prev.bandwidth_reprobes, now.bandwidth_reprobes));
    counter!("aula_sfu_expired_total").increment(d(prev.expired, now.expired));
}
