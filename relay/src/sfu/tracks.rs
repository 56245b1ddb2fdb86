//! Publisher and subscriber tracks as the SFU core sees them, and the SDP facts it reads.
//!
//! A publisher's media section is a [`TrackIn`] (with its simulcast [`Layer`]s and their measured
//! bitrates); the class names it by a [`Source`]; each subscriber has a [`TrackOut`] per source it
//! receives. [`Allowed`] is what a publisher may send on. The core (`core.rs`) holds these in its
//! peers and moves media between them.

use std::time::Instant;

use str0m::change::SdpApi;
use str0m::media::{Direction, MediaKind, Mid, Rid};

use super::keyframe::KeyframeLimiter;
use super::layers::LayerChooser;

/// What a publisher may send on to its class: the signaling side's grants (a teacher sends
/// everything; a student what the teacher allowed), enforced here by not forwarding the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// Microphone.
    pub audio: bool,
    /// Camera (the publisher's video 1).
    pub camera: bool,
    /// Screen (the publisher's video 0).
    pub screen: bool,
}

impl Allowed {
    /// Everything (a teacher).
    pub const ALL: Allowed = Allowed {
        audio: true,
        camera: true,
        screen: true,
    };

    /// Whether anything may be sent on.
    pub fn any(self) -> bool {
        self.audio || self.camera || self.screen
    }

    /// Whether the publisher's track of `kind` with this index among its tracks of the kind may
    /// be sent on (video 0 = screen, video 1 = camera, audio 0 = microphone, audio 1 = the shared
    /// screen's sound, which goes with the screen; any further track needs every right it could be).
    pub(super) fn track(self, kind: MediaKind, index: usize) -> bool {
        match (kind, index) {
            (MediaKind::Audio, 0) => self.audio,
            (MediaKind::Audio, 1) => self.screen,
            (MediaKind::Audio, _) => self.audio && self.screen,
            (MediaKind::Video, 0) => self.screen,
            (MediaKind::Video, 1) => self.camera,
            (MediaKind::Video, _) => self.screen && self.camera,
        }
    }
}

/// A publisher's track as the class sees it: the publisher (its index in the class's list of
/// publishers in the core), the kind, and the track's index among that publisher's tracks of the
/// kind (the browser sends video 0 = screen, video 1 = camera, audio 0 = microphone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Source {
    pub publisher: usize,
    pub kind: MediaKind,
    pub index: usize,
}

/// A media section the publisher sends on.
#[derive(Debug)]
pub(super) struct TrackIn {
    pub mid: Mid,
    pub kind: MediaKind,
    /// Index among this publisher's tracks of the same kind.
    pub index: usize,
    /// Simulcast layers seen so far (empty without simulcast).
    pub layers: Vec<Layer>,
    /// Start of the current bitrate measurement window of the layers.
    pub window_start: Option<Instant>,
    /// Frames received on all layers together so far.
    pub frames: u64,
    /// One keyframe-request limiter per layer (`None`: no simulcast).
    pub limiters: Vec<(Option<Rid>, KeyframeLimiter)>,
}

/// One simulcast layer of a publisher track, with what it carries.
#[derive(Debug)]
pub(super) struct Layer {
    pub rid: Rid,
    /// Bytes received on it so far: ranks the layers (more bytes, higher layer).
    pub bytes: u64,
    /// Bytes in the current measurement window.
    pub window_bytes: u64,
    /// Bitrate over the last whole window, bits per second.
    pub rate_bps: u64,
    /// The track's frame count ([`TrackIn::frames`]) at this layer's last frame.
    pub last_frame: u64,
}

/// A layer that has carried nothing while the track's other layers carried this many frames
/// has stopped: a browser stops its top layers when its uplink narrows or its CPU is short, and
/// sends them again when it can. A stopped layer is left out of the ranking (it comes back with
/// its next frame), so no subscriber waits for it: one that did stayed black (a late joiner) or
/// frozen (one on that layer) for as long as the layer was stopped. 30 frames are 1–2 s of the
/// other layers, far more than the gap between two frames of a layer sent at a lower frame rate,
/// and the layers of a screen that is not changing pause together (none of them counts frames).
const STOPPED_AFTER_FRAMES: u64 = 30;

/// How long a layer's bitrate is measured over.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

impl TrackIn {
    /// The layers being sent, from the lowest to the highest bitrate.
    pub fn ranked(&self) -> Vec<Rid> {
        self.ranked_layers().into_iter().map(|l| l.rid).collect()
    }

    /// The layers being sent (not stopped: see [`STOPPED_AFTER_FRAMES`]), from the lowest to the
    /// highest bitrate.
    pub fn ranked_layers(&self) -> Vec<&Layer> {
        let mut l: Vec<&Layer> = self
            .layers
            .iter()
            .filter(|l| self.frames - l.last_frame <= STOPPED_AFTER_FRAMES)
            .collect();
        l.sort_by_key(|l| l.bytes);
        l
    }

    /// Counts a frame of layer `rid`; closes the measurement window when it is over. Returns
    /// whether it did (the layers' bitrates are new).
    pub fn count(&mut self, rid: Rid, bytes: u64, now: Instant) -> bool {
        self.frames += 1;
        match self.layers.iter_mut().find(|l| l.rid == rid) {
            Some(l) => {
                l.bytes += bytes;
                l.window_bytes += bytes;
                l.last_frame = self.frames;
            }
            None => self.layers.push(Layer {
                rid,
                bytes,
                window_bytes: bytes,
                rate_bps: 0,
                last_frame: self.frames,
            }),
        }
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            for l in &mut self.layers {
                l.rate_bps = (l.window_bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
                l.window_bytes = 0;
            }
            self.window_start = Some(now);
            return true;
        }
        false
    }

    pub fn limiter(
        &mut self,
        rid: Option<Rid>,
        min_interval: std::time::Duration,
    ) -> &mut KeyframeLimiter {
        let i = match self.limiters.iter().position(|(r, _)| *r == rid) {
            Some(i) => i,
            None => {
                self.limiters
                    .push((rid, KeyframeLimiter::new(min_interval)));
                self.limiters.len() - 1
            }
        };
        &mut self.limiters[i].1
    }
}

/// A send-only media section towards a subscriber, carrying one publisher track.
#[derive(Debug)]
pub(super) struct TrackOut {
    pub mid: Mid,
    pub source: Source,
    /// Video is held back until a keyframe so the subscriber's decoder starts cleanly.
    pub awaiting_keyframe: bool,
    /// The simulcast layer being forwarded (`None`: none yet, or no simulcast).
    pub layer: Option<Rid>,
    /// Which layer this subscriber should get.
    pub chooser: LayerChooser,
    /// The send stream's retransmission buffer has been sized (once str0m created the stream).
    pub send_buffer_sized: bool,
}

/// Adds a send-only media section per source to an offer being built; each names its publisher
/// in the stream id (`aula.<peer>`), which the browser reads to tell whose media it is.
pub(super) fn add_send_media(api: &mut SdpApi<'_>, sources: &[(Source, String)]) -> Vec<TrackOut> {
    sources
        .iter()
        .map(|(source, publisher)| {
            let stream = Some(stream_id(publisher));
            let mid = api.add_media(source.kind, Direction::SendOnly, stream, None, None);
            TrackOut {
                mid,
                source: *source,
                awaiting_keyframe: source.kind == MediaKind::Video,
                layer: None,
                chooser: LayerChooser::default(),
                send_buffer_sized: false,
            }
        })
        .collect()
}

/// The msid stream id naming a publisher: `aula.` and its peer id, reduced to the characters an
/// msid allows (RFC 8830 token characters, at most 64).
pub fn stream_id(peer: &str) -> String {
    let token = |c: &char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`{|}~".contains(*c);
    format!("aula.{peer}")
        .chars()
        .filter(token)
        .take(64)
        .collect()
}

/// Adds a publisher track for `mid` unless known; returns whether it was new.
pub(super) fn add_track_in(tracks: &mut Vec<TrackIn>, mid: Mid, kind: MediaKind) -> bool {
    if tracks.iter().any(|t| t.mid == mid) {
        return false;
    }
    let index = tracks.iter().filter(|t| t.kind == kind).count();
    tracks.push(TrackIn {
        mid,
        kind,
        index,
        layers: Vec::new(),
        window_start: None,
        frames: 0,
        limiters: Vec::new(),
    });
    true
}

/// Learns a publisher's tracks from its (accepted) offer: every audio or video section it
/// sends on, in SDP order. str0m announces them too (`Event::MediaAdded`), but only once the
/// connection is up; knowing them now lets subscribers that arrive meanwhile get them in their
/// first offer instead of a renegotiation.
pub(super) fn learn_tracks(tracks: &mut Vec<TrackIn>, offer_sdp: &str) {
    for section in offer_sdp.split("\nm=").skip(1) {
        let kind = if section.starts_with("video") {
            MediaKind::Video
        } else if section.starts_with("audio") {
            MediaKind::Audio
        } else {
            continue;
        };
        let attr = |name: &str| {
            section
                .lines()
                .find_map(|l| l.trim_end().strip_prefix(name))
                .map(str::to_owned)
        };
        let sends = section.lines().any(|l| {
            let l = l.trim_end();
            l == "a=sendonly" || l == "a=sendrecv"
        });
        let rejected = section.split(' ').nth(1) == Some("0");
        if let (Some(mid), true, false) = (attr("a=mid:"), sends, rejected) {
            add_track_in(tracks, Mid::from(mid.as_str()), kind);
        }
    }
}

/// The `a=fingerprint:` value of an SDP (session or first media level).
pub(super) fn sdp_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=fingerprint:"))
        .map(|v| v.trim().to_owned())
}

#[cfg(test)]
mod allowed_tests {
    use super::*;

    #[test]
    fn the_screens_sound_goes_with_the_screen_right_not_the_microphone() {
        let screen_only = Allowed {
            audio: false,
            camera: false,
            screen: true,
        };
        assert!(!screen_only.track(MediaKind::Audio, 0), "no microphone");
        assert!(
            screen_only.track(MediaKind::Audio, 1),
            "the shared tab's sound"
        );
        assert!(screen_only.track(MediaKind::Video, 0));
        assert!(!screen_only.track(MediaKind::Video, 1));
        let speak_only = Allowed {
            audio: true,
            camera: false,
            screen: false,
        };
        assert!(speak_only.track(MediaKind::Audio, 0));
        assert!(!speak_only.track(MediaKind::Audio, 1));
        assert!(!speak_only.track(MediaKind::Audio, 2));
        assert!(Allowed::ALL.track(MediaKind::Audio, 2));
    }
}
