//! Publishes each SFU worker's counters through the `metrics` facade, labelled `worker`.
//!
//! Like the TURN server, the core counts in plain integers on the hot path and each worker
//! exports the differences about once a second, so forwarding a packet never touches the
//! metrics registry. Names, labels and descriptions come from [`Counter`].

use std::time::Duration;

use super::stats::{Counter, SfuStats};
use metrics::{counter, describe_counter, describe_gauge, gauge};

pub(crate) fn describe() {
    describe_gauge!(
        "aula_sfu_publishers",
        "Publishers connected to the SFU, per worker"
    );
    describe_gauge!(
        "aula_sfu_subscribers",
        "Subscribers connected to the SFU, per worker"
    );
    describe_gauge!(
        "aula_sfu_worker_load_packets_per_second",
        "Datagrams an SFU worker sent to subscribers per second over the last second (the load classes are placed by)"
    );
    describe_gauge!(
        "aula_sfu_worker_cpu_seconds",
        "CPU time an SFU worker's thread has used since it started, seconds"
    );
    describe_gauge!(
        "aula_sfu_worker_cpu_utilization",
        "Share of one core an SFU worker's thread used over the last second (0 to 1)"
    );
    describe_counter!(
        "aula_sfu_class_placements_total",
        "Classes placed on an SFU worker, by worker and kind (origin: the class's first worker; span: a further worker carrying its share of a large class's subscribers)"
    );
    describe_gauge!(
        "aula_sfu_workers_down",
        "SFU workers whose thread stopped unexpectedly (their classes lost their media)"
    );
    for &c in Counter::ALL {
        describe_counter!(c.name(), c.help());
    }
}

/// What a worker measured of itself over the last export interval.
pub(crate) struct WorkerLoad {
    /// Datagrams sent to subscribers per second.
    pub pps: u64,
    /// CPU time its thread used in all.
    pub cpu_total: Duration,
    /// Share of one core it used over the interval.
    pub utilization: f64,
}

/// Exports worker `worker`'s `now - prev`, its gauges and its load.
pub(crate) fn publish(worker: usize, prev: &SfuStats, now: &SfuStats, load: &WorkerLoad) {
    let w = worker.to_string();
    gauge!("aula_sfu_publishers", "worker" => w.clone()).set(now.publishers as f64);
    gauge!("aula_sfu_subscribers", "worker" => w.clone()).set(now.subscribers as f64);
    gauge!("aula_sfu_worker_load_packets_per_second", "worker" => w.clone()).set(load.pps as f64);
    gauge!("aula_sfu_worker_cpu_seconds", "worker" => w.clone()).set(load.cpu_total.as_secs_f64());
    gauge!("aula_sfu_worker_cpu_utilization", "worker" => w.clone()).set(load.utilization);
    for &c in Counter::ALL {
        let counter = match c.label() {
            Some((key, value)) => counter!(c.name(), key => value, "worker" => w.clone()),
            None => counter!(c.name(), "worker" => w.clone()),
        };
        // Incremented even by 0, so dashboards see every series before its first event.
        counter.increment(now[c].saturating_sub(prev[c]));
    }
}

/// Counts a class placed on `worker` (`kind`: "origin" or "span").
pub(crate) fn placed(worker: usize, kind: &'static str) {
    counter!("aula_sfu_class_placements_total", "worker" => worker.to_string(), "kind" => kind)
        .increment(1);
}

/// Sets how many workers have stopped unexpectedly.
pub(crate) fn workers_down(n: usize) {
    gauge!("aula_sfu_workers_down").set(n as f64);
}
