//! The SFU on every core: [`Sfu::start`] runs [`SfuConfig::workers`] workers (one thread, one
//! [`super::SfuCore`], one UDP socket each; see [`super::server`]) and the [`SfuHandle`] the
//! signaling side uses routes each request to the worker that holds the class.
//!
//! A new class goes to the least-loaded live worker: the one that sent the fewest datagrams to
//! subscribers over the last second (ties: the one holding fewer classes, so classes created in
//! the same second spread). Its publishers always connect to that worker, its *origin*.
//!
//! A class larger than one worker spans workers: once its origin holds
//! [`SfuConfig::subscribers_per_worker`] of its subscribers (or is full), its next subscribers
//! go to a further worker (an existing span of the class with room, else the least-loaded other
//! worker), which the origin then hands every frame of the class in-process (see `span.rs`).
//!
//! The routing table is the only shared state and is touched per signaling request, never per
//! packet: a worker's socket, core and timers are its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::core::{Allowed, SfuEvent, SfuStats};
use super::server::{bind, SpanLinks, Worker, SPAN_QUEUE};
use super::{metrics, SfuConfig, SfuError};

/// Notices kept for slow [`SfuHandle::events`] receivers.
const EVENT_BACKLOG: usize = 1024;
/// How often the routing table is checked against what the workers hold.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// A route (or a subscriber's entry in it) untouched this long is dropped once no worker holds
/// its class (or subscriber) any more: long enough for any request in flight to have arrived.
const ROUTE_IDLE: Duration = Duration::from_secs(30);

/// Starts the SFU.
pub struct Sfu;

impl Sfu {
    /// Binds every worker's media socket and starts the workers, each on its own thread; a
    /// housekeeping task runs on the current tokio runtime. They run until `shutdown` is
    /// cancelled or every [`SfuHandle`] is dropped.
    ///
    /// Worker `i` listens on [`SfuConfig::listen`]'s port plus `i` (each an ephemeral port when
    /// that port is 0), so a firewall opens the range `port ..= port + workers - 1`.
    pub async fn start(
        config: SfuConfig,
        shutdown: CancellationToken,
    ) -> Result<SfuHandle, SfuError> {
        let count = config.worker_count();
        let mut sockets = Vec::with_capacity(count);
        for i in 0..count {
            let mut listen = config.listen;
            if listen.port() != 0 {
                let port = u16::try_from(usize::from(listen.port()) + i).map_err(|_| {
                    SfuError::Io(format!("no port for worker {i} above {}", config.listen))
                })?;
                listen.set_port(port);
            }
            let socket =
                bind(&config, listen).map_err(|e| SfuError::Io(format!("{listen}: {e}")))?;
            let local = socket
                .local_addr()
                .map_err(|e| SfuError::Io(e.to_string()))?;
            let ip = match config.public_ip {
                Some(ip) => ip,
                None if local.ip().is_unspecified() => {
                    return Err(SfuError::Io(
                        "listen address is unspecified: set a concrete address or public_ip".into(),
                    ))
                }
                None => local.ip(),
            };
            sockets.push((socket, SocketAddr::new(ip, local.port())));
        }
        metrics::describe();
        metrics::workers_down(0);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (span_tx, span_rx): (Vec<_>, Vec<_>) = (0..count)
            .map(|_| tokio::sync::mpsc::channel(SPAN_QUEUE))
            .unzip();
        let mut workers = Vec::with_capacity(count);
        for (i, ((socket, candidate), inbox)) in sockets.into_iter().zip(span_rx).enumerate() {
            let links = SpanLinks {
                inbox,
                to: span_tx.clone(),
            };
            let worker = Worker::spawn(
                i,
                config.clone(),
                socket,
                candidate,
                links,
                events.clone(),
                shutdown.clone(),
            )?;
            workers.push(worker);
        }
        let limits = Limits {
            share: config.subscribers_per_worker.max(1),
            per_worker: config.max_subscribers,
            per_class: config.max_subscribers_per_class,
        };
        info!(
            workers = count,
            subscribers_per_worker = limits.share,
            "SFU started"
        );
        let pool = Arc::new(Pool {
            workers,
            routes: Mutex::new(HashMap::new()),
            events,
            limits,
        });
        tokio::spawn(housekeeping(Arc::downgrade(&pool), shutdown));
        Ok(SfuHandle { pool })
    }
}

/// The signaling side's way into the SFU. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SfuHandle {
    pool: Arc<Pool>,
}

/// Where a class's media is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPlacement {
    /// The worker its publishers send to.
    pub origin: usize,
    /// Further workers serving a share of its subscribers, in the order they were added.
    pub spans: Vec<usize>,
}

/// One worker as [`SfuHandle::workers`] reports it (updated by the worker once a second).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    /// Its number (the `worker` label of its metrics).
    pub index: usize,
    /// The address peers on it send media to.
    pub addr: SocketAddr,
    /// False when its thread stopped unexpectedly (its classes lost their media).
    pub alive: bool,
    /// Datagrams sent to subscribers per second over the last second.
    pub load_pps: u64,
    /// Subscribers it serves.
    pub subscribers: usize,
    /// Publishers connected to it.
    pub publishers: usize,
    /// CPU time its thread has used.
    pub cpu: Duration,
    /// Classes routed to it.
    pub classes: usize,
}

#[derive(Debug)]
struct Pool {
    workers: Vec<Worker>,
    routes: Mutex<HashMap<String, ClassRoute>>,
    events: broadcast::Sender<SfuEvent>,
    limits: Limits,
}

/// The subscriber limits placement keeps to.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// [`SfuConfig::subscribers_per_worker`].
    share: usize,
    /// [`SfuConfig::max_subscribers`].
    per_worker: usize,
    /// [`SfuConfig::max_subscribers_per_class`].
    per_class: usize,
}

/// Where one class lives, and when the table last routed a request for it.
#[derive(Debug)]
struct ClassRoute {
    origin: usize,
    /// Workers serving a share of its subscribers besides the origin.
    spans: Vec<usize>,
    /// The worker of each subscriber the table routed, with when it last did.
    subscribers: HashMap<String, (usize, Instant)>,
    touched: Instant,
}

/// A worker's figures that placement compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub alive: bool,
    pub load_pps: u64,
    pub classes: usize,
}

/// The least-loaded live worker: fewest datagrams per second, then fewest classes, then the
/// lowest number. `None` when no worker is alive.
pub(super) fn least_loaded(candidates: &[Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.alive)
        .min_by_key(|(i, c)| (c.load_pps, c.classes, *i))
        .map(|(i, _)| i)
}

impl Pool {
    fn routes(&self) -> MutexGuard<'_, HashMap<String, ClassRoute>> {
        // A panic while holding this lock leaves the table consistent (plain inserts and
        // removals), so a poisoned lock is used as it is.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn alive(&self, worker: usize) -> bool {
        self.workers[worker].shared.alive.load(Ordering::Relaxed)
    }

    /// Classes routed to each worker (as origin or span).
    fn classes_per_worker(&self, routes: &HashMap<String, ClassRoute>) -> Vec<usize> {
        let mut n = vec![0; self.workers.len()];
        for r in routes.values() {
            n[r.origin] += 1;
            for &w in &r.spans {
                n[w] += 1;
            }
        }
        n
    }

    /// Subscribers routed to each worker, all classes together.
    fn subscribers_per_worker(&self, routes: &HashMap<String, ClassRoute>) -> Vec<usize> {
        let mut n = vec![0; self.workers.len()];
        for r in routes.values() {
            for (w, _) in r.subscribers.values() {
                n[*w] += 1;
            }
        }
        n
    }

    /// Every live worker's figures for placement.
    fn candidates(&self, routes: &HashMap<String, ClassRoute>) -> Vec<Candidate> {
        let classes = self.classes_per_worker(routes);
        self.workers
            .iter()
            .zip(classes)
            .map(|(w, classes)| Candidate {
                alive: w.shared.alive.load(Ordering::Relaxed),
                load_pps: w.shared.load_pps.load(Ordering::Relaxed),
                classes,
            })
            .collect()
    }

    /// The class's route, placing the class on the least-loaded worker when it has none (or
    /// its worker died).
    fn route<'a>(
        &self,
        routes: &'a mut HashMap<String, ClassRoute>,
        class: &str,
        now: Instant,
    ) -> Result<&'a mut ClassRoute, SfuError> {
        if let Some(r) = routes.get(class) {
            if !self.alive(r.origin) {
                warn!(
                    class,
                    worker = r.origin,
                    "SFU class moves off a stopped worker"
                );
                routes.remove(class);
            }
        }
        if !routes.contains_key(class) {
            let candidates = self.candidates(routes);
            let origin = least_loaded(&candidates).ok_or(SfuError::Stopped)?;
            let c = candidates[origin];
            info!(
                class,
                worker = origin,
                load_pps = c.load_pps,
                classes = c.classes,
                loads = ?candidates.iter().map(|c| c.load_pps).collect::<Vec<_>>(),
                "SFU class placed on the least-loaded worker"
            );
            metrics::placed(origin, "origin");
            routes.insert(
                class.to_owned(),
                ClassRoute {
                    origin,
                    spans: Vec::new(),
                    subscribers: HashMap::new(),
                    touched: now,
                },
            );
        }
        let r = routes.get_mut(class).ok_or(SfuError::Stopped)?;
        r.touched = now;
        Ok(r)
    }

    /// The worker holding the class's publishers (placing the class if new).
    fn origin(&self, class: &str) -> Result<&Worker, SfuError> {
        let mut routes = self.routes();
        let origin = self.route(&mut routes, class, Instant::now())?.origin;
        Ok(&self.workers[origin])
    }

    /// The worker of an existing route's origin, without placing anything.
    fn origin_if_routed(&self, class: &str) -> Option<&Worker> {
        let routes = self.routes();
        routes.get(class).map(|r| &self.workers[r.origin])
    }

    /// The worker holding `peer`'s subscription, else the class's origin.
    fn subscriber_worker(&self, class: &str, peer: &str) -> Option<&Worker> {
        let routes = self.routes();
        let r = routes.get(class)?;
        let w = r.subscribers.get(peer).map_or(r.origin, |(w, _)| *w);
        Some(&self.workers[w])
    }

    /// Chooses the worker for a new subscription of `peer` in a class of `members` members and
    /// records it: the class's origin, else a span of the class, while it holds fewer than
    /// [`Limits::share`] of the class's subscribers and is not full; else a new span on the
    /// least-loaded other live worker with room (returned second: the origin must be told).
    fn place_subscriber(
        &self,
        class: &str,
        peer: &str,
        members: usize,
    ) -> Result<(&Worker, Option<usize>), SfuError> {
        let now = Instant::now();
        let mut routes = self.routes();
        let on_worker = self.subscribers_per_worker(&routes);
        let mut candidates = self.candidates(&routes);
        let limits = self.limits;
        let r = self.route(&mut routes, class, now)?;
        if let Some((w, _)) = r.subscribers.get(peer) {
            // Already subscribed: that worker refuses a second subscription.
            return Ok((&self.workers[*w], None));
        }
        let held = r.subscribers.len();
        if held >= members.min(limits.per_class) {
            return Err(SfuError::ClassFull(held));
        }
        let mut of_class = vec![0; self.workers.len()];
        for (w, _) in r.subscribers.values() {
            of_class[*w] += 1;
        }
        let mine: Vec<usize> = std::iter::once(r.origin)
            .chain(r.spans.iter().copied())
            .collect();
        let room = |w: usize| {
            candidates[w].alive && of_class[w] < limits.share && on_worker[w] < limits.per_worker
        };
        let (worker, new_span) = match mine.iter().copied().find(|&w| room(w)) {
            Some(w) => (w, None),
            None => {
                for (w, c) in candidates.iter_mut().enumerate() {
                    c.alive &= !mine.contains(&w) && on_worker[w] < limits.per_worker;
                }
                match least_loaded(&candidates) {
                    Some(w) => {
                        let c = candidates[w];
                        info!(
                            class,
                            origin = r.origin,
                            worker = w,
                            load_pps = c.load_pps,
                            subscribers = held,
                            "SFU class spans another worker"
                        );
                        metrics::placed(w, "span");
                        r.spans.push(w);
                        (w, Some(w))
                    }
                    // Nowhere else to go: the class's emptiest worker refuses it if full.
                    None => {
                        let w = mine
                            .iter()
                            .copied()
                            .min_by_key(|&w| of_class[w])
                            .unwrap_or(r.origin);
                        (w, None)
                    }
                }
            }
        };
        r.subscribers.insert(peer.to_owned(), (worker, now));
        Ok((&self.workers[worker], new_span.map(|_| r.origin)))
    }

    /// Forgets the table's entry of `peer`'s subscription.
    fn forget_subscriber(&self, class: &str, peer: &str) {
        if let Some(r) = self.routes().get_mut(class) {
            r.subscribers.remove(peer);
        }
    }
}

impl SfuHandle {
    /// The address peers send media to on the first worker (each worker has its own: see
    /// [`SfuHandle::local_addrs`]).
    pub fn local_addr(&self) -> SocketAddr {
        self.pool.workers[0].shared.addr
    }

    /// The advertised media address of every worker, in worker order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.pool.workers.iter().map(|w| w.shared.addr).collect()
    }

    /// Each worker's figures (updated by the worker once a second).
    pub fn workers(&self) -> Vec<WorkerStatus> {
        let routes = self.pool.routes();
        let classes = self.pool.classes_per_worker(&routes);
        drop(routes);
        self.pool
            .workers
            .iter()
            .zip(classes)
            .map(|(w, classes)| {
                let s = &w.shared;
                WorkerStatus {
                    index: s.index,
                    addr: s.addr,
                    alive: s.alive.load(Ordering::Relaxed),
                    load_pps: s.load_pps.load(Ordering::Relaxed),
                    subscribers: s.subscribers.load(Ordering::Relaxed),
                    publishers: s.publishers.load(Ordering::Relaxed),
                    cpu: Duration::from_nanos(s.cpu_ns.load(Ordering::Relaxed)),
                    classes,
                }
            })
            .collect()
    }

    /// Whether every worker is running (a worker whose thread stopped unexpectedly makes the
    /// SFU unhealthy: its classes lost their media).
    pub fn healthy(&self) -> bool {
        (0..self.pool.workers.len()).all(|i| self.pool.alive(i))
    }

    /// Where a class is served, if it has been placed.
    pub fn placement(&self, class: &str) -> Option<ClassPlacement> {
        let routes = self.pool.routes();
        routes.get(class).map(|r| ClassPlacement {
            origin: r.origin,
            spans: r.spans.clone(),
        })
    }

    /// The worker holding `peer`'s subscription in `class`, if the SFU routed one.
    pub fn subscriber_placement(&self, class: &str, peer: &str) -> Option<usize> {
        let routes = self.pool.routes();
        routes.get(class)?.subscribers.get(peer).map(|(w, _)| *w)
    }

    /// A publisher (a teacher, or a student given the floor) sends its offer; returns the SFU's
    /// answer. `allowed` is what the SFU forwards of it (see [`super::SfuCore::publish`]).
    pub async fn publish(
        &self,
        class: &str,
        peer: &str,
        offer_sdp: &str,
        allowed: Allowed,
    ) -> Result<String, SfuError> {
        let worker = self.pool.origin(class)?;
        worker.publish(class, peer, offer_sdp, allowed).await
    }

    /// Changes what a publisher's media the SFU forwards. Returns whether it publishes.
    pub async fn set_allowed(
        &self,
        class: &str,
        peer: &str,
        allowed: Allowed,
    ) -> Result<bool, SfuError> {
        match self.pool.origin_if_routed(class) {
            Some(w) => w.set_allowed(class, peer, allowed).await,
            None => Ok(false),
        }
    }

    /// Ends a peer's publishing, keeping its subscription. Returns whether it published.
    pub async fn unpublish(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        match self.pool.origin_if_routed(class) {
            Some(w) => w.unpublish(class, peer).await,
            None => Ok(false),
        }
    }

    /// Ends a peer's subscription, keeping its publishing. Returns whether it subscribed.
    pub async fn unsubscribe(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let Some(worker) = self.pool.subscriber_worker(class, peer) else {
            return Ok(false);
        };
        let had = worker.unsubscribe(class, peer).await;
        self.pool.forget_subscriber(class, peer);
        had
    }

    /// Creates a subscriber; returns the SFU's offer, to be answered with
    /// [`SfuHandle::accept_answer`].
    pub async fn subscribe(&self, class: &str, peer: &str) -> Result<String, SfuError> {
        self.subscribe_bounded(class, peer, usize::MAX).await
    }

    /// [`SfuHandle::subscribe`] in a class of `members` members, which never holds more
    /// subscriptions than that (see [`super::SfuCore::subscribe_bounded`]).
    pub async fn subscribe_bounded(
        &self,
        class: &str,
        peer: &str,
        members: usize,
    ) -> Result<String, SfuError> {
        let (worker, origin) = self.pool.place_subscriber(class, peer, members)?;
        if let Some(origin) = origin {
            // The origin first sends the new span its publishers, which the span worker takes
            // before this request (see `server.rs`), so the offer already carries their media.
            self.pool.workers[origin]
                .add_span(class, worker.shared.index)
                .await?;
        }
        let offer = worker.subscribe_bounded(class, peer, members).await;
        if matches!(&offer, Err(e) if !matches!(e, SfuError::PeerExists(..))) {
            self.pool.forget_subscriber(class, peer);
        }
        offer
    }

    /// The subscriber's answer to the offer from [`SfuHandle::subscribe`].
    pub async fn accept_answer(
        &self,
        class: &str,
        peer: &str,
        answer_sdp: &str,
    ) -> Result<(), SfuError> {
        match self.pool.subscriber_worker(class, peer) {
            Some(w) => w.accept_answer(class, peer, answer_sdp).await,
            None => Err(SfuError::UnknownPeer(class.into(), peer.into())),
        }
    }

    /// Disconnects a peer: its publishing and its subscription. Returns whether it was known.
    pub async fn remove(&self, class: &str, peer: &str) -> Result<bool, SfuError> {
        let Some(origin) = self.pool.origin_if_routed(class) else {
            return Ok(false);
        };
        let subscriber = self.pool.subscriber_worker(class, peer);
        let mut known = origin.remove(class, peer).await?;
        if let Some(w) = subscriber.filter(|w| w.shared.index != origin.shared.index) {
            known |= w.remove(class, peer).await?;
        }
        self.pool.forget_subscriber(class, peer);
        Ok(known)
    }

    /// The counters of all workers together.
    pub async fn stats(&self) -> Result<SfuStats, SfuError> {
        let mut total = SfuStats::default();
        let mut any = false;
        for w in &self.pool.workers {
            if let Ok(s) = w.stats().await {
                total += &s;
                any = true;
            }
        }
        if any {
            Ok(total)
        } else {
            Err(SfuError::Stopped)
        }
    }

    /// One worker's counters.
    pub async fn worker_stats(&self, worker: usize) -> Result<SfuStats, SfuError> {
        let w = self.pool.workers.get(worker).ok_or(SfuError::Stopped)?;
        w.stats().await
    }

    /// Notices about peers (connected, dropped by the SFU) from now on, from every worker. A
    /// receiver that falls more than 1024 notices behind gets `RecvError::Lagged`.
    pub fn events(&self) -> broadcast::Receiver<SfuEvent> {
        self.pool.events.subscribe()
    }

    /// Resolves when every worker has stopped.
    pub async fn stopped(&self) {
        for w in &self.pool.workers {
            w.stopped().await;
        }
    }
}

/// Every [`SWEEP_INTERVAL`]: drops routes of classes no worker holds any more (a class whose
/// peers all left or were dropped by their worker), and reports stopped workers.
async fn housekeeping(pool: std::sync::Weak<Pool>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down_before = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let down = (0..pool.workers.len()).filter(|&i| !pool.alive(i)).count();
        if down != down_before {
            metrics::workers_down(down);
            down_before = down;
        }
        let mut held: Vec<Option<HashMap<String, Vec<String>>>> = Vec::new();
        for w in &pool.workers {
            let occupancy = w.occupancy().await.ok().map(|o| {
                o.into_iter()
                    .map(|c| (c.class, c.subscribers))
                    .collect::<HashMap<_, _>>()
            });
            held.push(occupancy);
        }
        let now = Instant::now();
        let mut ended = Vec::new();
        {
            let mut routes = pool.routes();
            routes.retain(|class, r| {
                // A stopped worker (None) holds nothing.
                let holds = |w: usize| held[w].as_ref().and_then(|h| h.get(class));
                r.subscribers.retain(|peer, (w, at)| {
                    now.duration_since(*at) < ROUTE_IDLE
                        || holds(*w).is_some_and(|s| s.contains(peer))
                });
                let keep = now.duration_since(r.touched) < ROUTE_IDLE
                    || std::iter::once(r.origin)
                        .chain(r.spans.iter().copied())
                        .any(|w| holds(w).is_some());
                if !keep {
                    info!(class, worker = r.origin, "SFU class left its worker");
                    if !r.spans.is_empty() {
                        ended.push((class.clone(), r.origin));
                    }
                }
                keep
            });
        }
        for (class, origin) in ended {
            pool.workers[origin].remove_spans(&class).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(load_pps: u64, classes: usize) -> Candidate {
        Candidate {
            alive: true,
            load_pps,
            classes,
        }
    }

    #[test]
    fn a_class_goes_to_the_worker_forwarding_the_fewest_packets_not_the_fewest_classes() {
        assert_eq!(least_loaded(&[c(9000, 1), c(200, 7)]), Some(1));
        assert_eq!(least_loaded(&[c(100, 3), c(9000, 0), c(5000, 0)]), Some(0));
    }

    #[test]
    fn equal_loads_spread_classes_and_stopped_workers_take_none() {
        assert_eq!(least_loaded(&[c(0, 1), c(0, 0)]), Some(1));
        assert_eq!(least_loaded(&[c(0, 0), c(0, 0)]), Some(0));
        let dead = Candidate {
            alive: false,
            ..c(0, 0)
        };
        assert_eq!(least_loaded(&[dead, c(50, 4)]), Some(1));
        assert_eq!(least_loaded(&[dead, dead]), None);
    }
}
