//! A class larger than one worker spans workers (the idea of mediasoup's `pipeToRouter`): its
//! publishers' media enters its origin worker, which hands every frame it receives to the class's
//! span workers in-process; each of those serves its own share of the class's subscribers with
//! the same forwarding rules (layer choice, starting at keyframes). Keyframe requests of a span
//! worker's subscribers go back to the origin, which rate-limits them like its own.
//!
//! mediasoup pipes a producer to a router of another worker process through a pair of
//! `PipeTransport`s (RTP over a loopback UDP socket pair); Aula's workers are threads of one
//! process, so a bounded channel carries the depacketized frames instead: no socket, no second
//! encryption and no extra packetization on the way.
//!
//! Sans-IO like the rest of the core: the origin queues [`SpanMessage`]s addressed to workers
//! ([`SfuCore::poll_span`]); the I/O layer carries them over bounded channels and feeds them to
//! the addressee ([`SfuCore::handle_span`]). A message a full channel refused is reported back
//! ([`SfuCore::span_lost`]) so the next frame to that worker says its stream had a gap, and the
//! span worker asks for a keyframe as a worker does after loss.

use std::sync::Arc;
use std::time::Instant;

use str0m::format::PayloadParams;
use str0m::media::{KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid};
use tracing::{debug, info};

use super::core::SfuCore;
use super::keyframe::{KeyframeReason, Want};
use super::peers::ClassPublisher;
use super::stats::Counter;
use super::tracks::{add_track_in, Source};

/// One publisher frame as the forwarding path needs it, from a publisher's connection or from
/// the class's origin worker.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The simulcast layer it belongs to (`None`: no simulcast).
    pub(super) rid: Option<Rid>,
    pub(super) params: PayloadParams,
    pub(super) time: MediaTime,
    pub(super) network_time: Instant,
    /// False after a gap in the stream (lost packets, or frames a full span channel dropped).
    pub(super) contiguous: bool,
    pub(super) keyframe: bool,
    pub(super) data: Arc<[u8]>,
}

/// The class's publishers as its origin worker sees them, in their order (a subscriber's media
/// sections name publishers by that index): each one's name, and its tracks while connected.
pub type PublisherList = Vec<(String, Option<Vec<(Mid, MediaKind)>>)>;

/// What one worker hands another about a spanning class.
#[derive(Debug)]
pub enum SpanMessage {
    /// Origin to span: the class's publishers now (sent when they change).
    Publishers {
        /// The class.
        class: String,
        /// The origin worker (where keyframe requests go).
        origin: usize,
        /// The publishers.
        publishers: PublisherList,
    },
    /// Origin to span: one frame of a publisher track.
    Frame {
        /// The class.
        class: String,
        /// The publisher's index in the class.
        publisher: usize,
        /// The track's kind.
        kind: MediaKind,
        /// The track's index among its publisher's tracks of the kind.
        index: usize,
        /// The frame.
        frame: Frame,
    },
    /// Origin to span: subscribers' video from this publisher (only these of its video tracks,
    /// when given) waits for its next keyframe (its video was allowed again).
    Restart {
        /// The class.
        class: String,
        /// The publisher's index in the class.
        publisher: usize,
        /// Its video tracks concerned (by index among its videos), or all.
        videos: Option<Vec<usize>>,
    },
    /// Span to origin: a subscriber there wants a keyframe of this layer.
    KeyframeRequest {
        /// The class.
        class: String,
        /// The publisher's index in the class.
        publisher: usize,
        /// The video track's index among its publisher's videos.
        index: usize,
        /// The layer.
        rid: Option<Rid>,
        /// PLI or FIR.
        kind: KeyframeRequestKind,
        /// Why.
        reason: KeyframeReason,
    },
}

impl SpanMessage {
    /// The class it is about.
    pub fn class(&self) -> &str {
        match self {
            SpanMessage::Publishers { class, .. }
            | SpanMessage::Frame { class, .. }
            | SpanMessage::Restart { class, .. }
            | SpanMessage::KeyframeRequest { class, .. } => class,
        }
    }
}

/// The span workers of one class this worker is the origin of.
#[derive(Debug, Default)]
pub(super) struct Spans {
    pub(super) workers: Vec<usize>,
    /// Workers that missed a frame (a full channel): their next frame is marked as after a gap.
    pub(super) gaps: Vec<usize>,
}

impl SfuCore {
    /// This worker (the origin of `class`) hands the class's media to `worker` from now on.
    /// Returns false when it already did.
    pub fn add_span(&mut self, class: &str, worker: usize) -> bool {
        if worker == self.worker {
            return false;
        }
        let spans = self.spans.entry(class.to_owned()).or_default();
        if spans.workers.contains(&worker) {
            return false;
        }
        spans.workers.push(worker);
        info!(
            class,
            from = self.worker,
            to = worker,
            "SFU class spans another worker"
        );
        let publishers = self.publisher_list(class);
        self.span_out.push_back((
            worker,
            SpanMessage::Publishers {
                class: class.to_owned(),
                origin: self.worker,
                publishers,
            },
        ));
        true
    }

    /// Stops handing `class`'s media to other workers.
    pub fn remove_spans(&mut self, class: &str) {
        self.spans.remove(class);
    }

    /// The next message for another worker: (its number, the message).
    pub fn poll_span(&mut self) -> Option<(usize, SpanMessage)> {
        self.span_out.pop_front()
    }

    /// `message` for `worker` was dropped (its channel was full): the next frame of the class
    /// to that worker is marked as following a gap.
    pub fn span_lost(&mut self, worker: usize, message: &SpanMessage) {
        self.stats[Counter::SpanMessagesDropped] += 1;
        if let Some(spans) = self.spans.get_mut(message.class()) {
            if !spans.gaps.contains(&worker) {
                spans.gaps.push(worker);
            }
        }
    }

    /// The publishers of `class` as a [`PublisherList`].
    fn publisher_list(&self, class: &str) -> PublisherList {
        let Some(c) = self.classes.get(class) else {
            return Vec::new();
        };
        c.publishers
            .iter()
            .map(|cp| {
                let tracks = cp
                    .session
                    .and_then(|k| self.peers.get(&k)?.publishing())
                    .map(|p| p.tracks_in.iter().map(|t| (t.mid, t.kind)).collect());
                (cp.name.clone(), tracks)
            })
            .collect()
    }

    /// Tells the class's span workers about its publishers (they changed).
    pub(super) fn sync_spans(&mut self, class: &str) {
        let Some(spans) = self.spans.get(class) else {
            return;
        };
        let workers = spans.workers.clone();
        let publishers = self.publisher_list(class);
        for w in workers {
            self.span_out.push_back((
                w,
                SpanMessage::Publishers {
                    class: class.to_owned(),
                    origin: self.worker,
                    publishers: publishers.clone(),
                },
            ));
        }
    }

    /// Hands a frame of `source` to the class's span workers.
    pub(super) fn span_frame(&mut self, class: &str, source: Source, frame: &Frame) {
        let Some(spans) = self.spans.get_mut(class) else {
            return;
        };
        for &w in &spans.workers {
            let mut frame = frame.clone();
            if let Some(i) = spans.gaps.iter().position(|g| *g == w) {
                spans.gaps.swap_remove(i);
                frame.contiguous = false;
            }
            self.span_out.push_back((
                w,
                SpanMessage::Frame {
                    class: class.to_owned(),
                    publisher: source.publisher,
                    kind: source.kind,
                    index: source.index,
                    frame,
                },
            ));
        }
    }

    /// Tells the span workers that video of publisher `index` restarts at a keyframe.
    pub(super) fn span_restart(&mut self, class: &str, index: usize, only: Option<&[usize]>) {
        let Some(spans) = self.spans.get(class) else {
            return;
        };
        for &w in &spans.workers {
            self.span_out.push_back((
                w,
                SpanMessage::Restart {
                    class: class.to_owned(),
                    publisher: index,
                    videos: only.map(<[usize]>::to_vec),
                },
            ));
        }
    }

    /// A keyframe request of a subscriber on this span worker goes to the class's origin.
    /// Returns false when `class` is not relayed here.
    pub(super) fn request_keyframe_from_origin(
        &mut self,
        class: &str,
        source: Source,
        want: Want,
        kind: KeyframeRequestKind,
        reason: KeyframeReason,
    ) -> bool {
        let Some(c) = self.classes.get(class) else {
            return false;
        };
        let Some(origin) = c.origin else {
            return false;
        };
        let Some(track) = c
            .publishers
            .get(source.publisher)
            .and_then(|p| p.relayed.as_ref())
            .and_then(|t| {
                t.iter()
                    .find(|t| t.kind == MediaKind::Video && t.index == source.index)
            })
        else {
            return true;
        };
        let rid = match want {
            Want::Rid(rid) => rid,
            Want::Rank(r) => {
                let ranked = track.ranked();
                if ranked.is_empty() {
                    None
                } else {
                    Some(ranked[r.min(ranked.len() - 1)])
                }
            }
        };
        self.span_out.push_back((
            origin,
            SpanMessage::KeyframeRequest {
                class: class.to_owned(),
                publisher: source.publisher,
                index: source.index,
                rid,
                kind,
                reason,
            },
        ));
        true
    }

    /// A message from another worker.
    pub fn handle_span(&mut self, now: Instant, message: SpanMessage) {
        match message {
            SpanMessage::Publishers {
                class,
                origin,
                publishers,
            } => self.relayed_publishers(now, &class, origin, publishers),
            SpanMessage::Frame {
                class,
                publisher,
                kind,
                index,
                frame,
            } => self.relayed_frame(
                now,
                &class,
                Source {
                    publisher,
                    kind,
                    index,
                },
                frame,
            ),
            SpanMessage::Restart {
                class,
                publisher,
                videos,
            } => self.restart_videos_of(&class, publisher, videos.as_deref()),
            SpanMessage::KeyframeRequest {
                class,
                publisher,
                index,
                rid,
                kind,
                reason,
            } => {
                let source = Source {
                    publisher,
                    kind: MediaKind::Video,
                    index,
                };
                self.request_keyframe(&class, source, Want::Rid(rid), kind, reason, now);
            }
        }
        self.run(now);
    }

    /// The origin's publishers of a class this worker serves a share of.
    fn relayed_publishers(
        &mut self,
        now: Instant,
        class: &str,
        origin: usize,
        publishers: PublisherList,
    ) {
        let c = self.classes.entry(class.to_owned()).or_default();
        c.origin = Some(origin);
        let mut gone = Vec::new();
        let mut added = false;
        for (i, (name, tracks)) in publishers.into_iter().enumerate() {
            if c.publishers.len() <= i {
                c.publishers.push(ClassPublisher {
                    name: name.clone(),
                    session: None,
                    relayed: None,
                });
            }
            let cp = &mut c.publishers[i];
            cp.name = name;
            match (tracks, &mut cp.relayed) {
                (None, None) => {}
                (None, relayed @ Some(_)) => {
                    *relayed = None;
                    gone.push(i);
                }
                (Some(list), relayed) => {
                    let mine = relayed.get_or_insert_with(Vec::new);
                    for (mid, kind) in list {
                        added |= add_track_in(mine, mid, kind);
                    }
                }
            }
        }
        let empty = c.is_empty();
        for i in gone {
            // Its next session starts at a keyframe for everyone, as on the origin.
            self.restart_video_of(class, i);
        }
        if empty {
            self.classes.remove(class);
            debug!(class, "SFU span class ended");
            return;
        }
        if added {
            self.renegotiate(class);
        }
        self.run(now);
    }

    /// A frame from the origin for this worker's subscribers of the class.
    fn relayed_frame(&mut self, now: Instant, class: &str, source: Source, frame: Frame) {
        let Some(track) = self
            .classes
            .get_mut(class)
            .and_then(|c| c.publishers.get_mut(source.publisher))
            .and_then(|p| p.relayed.as_mut())
            .and_then(|t| {
                t.iter_mut()
                    .find(|t| t.kind == source.kind && t.index == source.index)
            })
        else {
            return;
        };
        let rates_changed = match frame.rid {
            Some(rid) => track.count(rid, frame.data.len() as u64, now),
            None => false,
        };
        let ranked = track.ranked();
        if !frame.contiguous && source.kind == MediaKind::Video {
            let want = Want::Rid(frame.rid);
            let (kind, reason) = (KeyframeRequestKind::Pli, KeyframeReason::Loss);
            self.request_keyframe(class, source, want, kind, reason, now);
        }
        self.fan_out(class, source, &frame, (&ranked, rates_changed), now);
    }
}
