//! The per-packet path: one publisher frame handed to every subscriber of its class on this
//! worker (and to the class's span workers, see `span.rs`), with simulcast layer switching on
//! keyframes and video (re)starting at a keyframe.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Rid};
use str0m::Input;
use tracing::debug;

use super::core::SfuCore;
use super::keyframe::{KeyframeReason, Want};
use super::peers::{PeerKey, PeerKind};
use super::span::Frame;
use super::stats::Counter;
use super::tracks::Source;

impl SfuCore {
    /// Every subscriber's video from publisher `index` waits for that publisher's next keyframe.
    pub(super) fn restart_video_of(&mut self, class: &str, index: usize) {
        self.restart_videos_of(class, index, None);
    }

    /// As [`Self::restart_video_of`], for only these of the publisher's video tracks (by their
    /// index among its videos) when `only` says so.
    pub(super) fn restart_videos_of(&mut self, class: &str, index: usize, only: Option<&[usize]>) {
        self.span_restart(class, index, only);
        let Some(c) = self.classes.get(class) else {
            return;
        };
        for s in &c.subscribers {
            if let Some(PeerKind::Subscriber(sub)) = self.peers.get_mut(s).map(|p| &mut p.kind) {
                for t in &mut sub.tracks_out {
                    if t.source.publisher == index
                        && t.source.kind == MediaKind::Video
                        && only.is_none_or(|o| o.contains(&t.source.index))
                    {
                        t.awaiting_keyframe = true;
                        t.layer = None;
                    }
                }
            }
        }
    }

    /// Hands one publisher frame to every subscriber of the class.
    pub(super) fn forward(&mut self, from: PeerKey, data: MediaData, now: Instant) {
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let PeerKind::Publisher(publishing) = &mut p.kind else {
            return;
        };
        let Some(track) = publishing.tracks_in.iter_mut().find(|t| t.mid == data.mid) else {
            return;
        };
        let class_id = p.class.clone();
        let kind = track.kind;
        if !publishing.allowed.track(kind, track.index) {
            return;
        }
        let source = Source {
            publisher: publishing.index,
            kind,
            index: track.index,
        };
        let frame = Frame {
            rid: data.rid,
            params: data.params,
            time: data.time,
            network_time: data.network_time,
            contiguous: data.contiguous,
            keyframe: data.is_keyframe(),
            data: data.data,
        };
        let rates_changed = match frame.rid {
            Some(rid) => track.count(rid, frame.data.len() as u64, now),
            None => false,
        };
        let ranked = track.ranked();
        if frame.keyframe {
            let min = self.config.keyframe_min_interval;
            track.limiter(frame.rid, min).clear_pending();
        }
        if !frame.contiguous && kind == MediaKind::Video {
            self.request_keyframe(
                &class_id,
                source,
                Want::Rid(frame.rid),
                KeyframeRequestKind::Pli,
                KeyframeReason::Loss,
                now,
            );
        }
        self.span_frame(&class_id, source, &frame);
        self.fan_out(&class_id, source, &frame, (&ranked, rates_changed), now);
    }

    /// Hands one frame of `source` to every subscriber of the class on this worker; `ranked`
    /// are the track's simulcast layers, lowest first, and `rates_changed` whether their
    /// bitrates were just measured anew.
    pub(super) fn fan_out(
        &mut self,
        class_id: &str,
        source: Source,
        frame: &Frame,
        (ranked, rates_changed): (&[Rid], bool),
        now: Instant,
    ) {
        let keyframe = frame.keyframe;
        let Some(class) = self.classes.get(class_id) else {
            return;
        };
        let subs = class.subscribers.clone();
        let mut switch_requests = Vec::new();
        for s in subs {
            let Some(sp) = self.peers.get_mut(&s) else {
                continue;
            };
            let PeerKind::Subscriber(sub) = &mut sp.kind else {
                continue;
            };
            if !sp.connected {
                continue;
            }
            let Some(out) = sub.tracks_out.iter_mut().find(|t| t.source == source) else {
                continue;
            };
            if let Some(rid) = frame.rid {
                // Simulcast: forward the subscriber's layer; move to the wanted one on its
                // keyframe (the old layer keeps flowing until then).
                let rank = out.chooser.target(ranked.len());
                if out.layer != Some(rid) {
                    if ranked[rank] != rid {
                        continue;
                    }
                    if !keyframe {
                        switch_requests.push(rank);
                        continue;
                    }
                    if out.layer.is_some() {
                        self.stats[Counter::LayerSwitches] += 1;
                    }
                    out.layer = Some(rid);
                    out.awaiting_keyframe = false;
                }
            }
            if out.awaiting_keyframe {
                if !keyframe {
                    continue;
                }
                out.awaiting_keyframe = false;
            }
            let mid = out.mid;
            let Some(writer) = sp.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(frame.params) else {
                continue;
            };
            let (network_time, time) = (frame.network_time, frame.time);
            if let Err(e) = writer.write(pt, network_time, time, frame.data.clone()) {
                debug!(class = sp.class, peer = sp.id, "SFU: write failed: {e}");
                continue;
            }
            self.stats.forwarded_frames += 1;
            // str0m packetizes written media on its next timeout: run it now, so the packets
            // leave in this pass instead of a later loop iteration.
            if let Err(e) = sp.rtc.handle_input(Input::Timeout(now)) {
                debug!(class = sp.class, peer = sp.id, "SFU: timeout failed: {e}");
            }
            self.enqueue(s);
        }
        if rates_changed {
            self.reshare_bandwidth(class_id, now);
        }
        switch_requests.sort_unstable();
        switch_requests.dedup();
        for rank in switch_requests {
            self.request_layer(class_id, source, rank, now);
        }
    }
}
