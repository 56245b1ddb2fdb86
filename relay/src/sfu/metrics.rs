//! Publishes the SFU core's counters through the `metrics` facade.
//!
//! Like the TURN server, the core counts in plain integers on the hot path and the I/O layer
//! exports the differences about once a second, so forwarding a packet never touches the
//! metrics registry. Names, labels and descriptions come from [`Counter`].

use super::stats::{Counter, SfuStats};
use metrics::{counter, describe_counter, describe_gauge, gauge};

pub(crate) fn describe() {
    describe_gauge!("aula_sfu_publishers", "Publishers connected to the SFU");
    describe_gauge!("aula_sfu_subscribers", "Subscribers connected to the SFU");
    for &c in Counter::ALL {
        describe_counter!(c.name(), c.help());
    }
}

/// Exports `now - prev` and the gauges.
pub(crate) fn publish(prev: &SfuStats, now: &SfuStats) {
    gauge!("aula_sfu_publishers").set(now.publishers as f64);
    gauge!("aula_sfu_subscribers").set(now.subscribers as f64);
    for &c in Counter::ALL {
        let counter = match c.label() {
            Some((key, value)) => counter!(c.name(), key => value),
            None => counter!(c.name()),
        };
        // Incremented even by 0, so dashboards see every series before its first event.
        counter.increment(now[c].saturating_sub(prev[c]));
    }
}
