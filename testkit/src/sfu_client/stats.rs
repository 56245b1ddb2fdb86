//! The counters a synthetic client keeps, shared with the test or benchmark that reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Counters of one synthetic client, shared with the test or benchmark.
#[derive(Debug)]
pub struct ClientStats {
    /// ICE and DTLS are up.
    pub connected: AtomicBool,
    /// RTP datagrams received.
    pub rtp_packets: AtomicU64,
    /// RTP datagrams sent.
    pub rtp_sent: AtomicU64,
    /// Bytes of all datagrams received.
    pub bytes: AtomicU64,
    /// Whole video frames received whose stamp and filler check out.
    pub frames: AtomicU64,
    /// Of those, keyframes.
    pub keyframes: AtomicU64,
    /// Video frames that failed the check.
    pub bad_frames: AtomicU64,
    /// Video frames str0m marked as not contiguous (a gap before them).
    pub gaps: AtomicU64,
    /// Video frames whose number was not the previous frame's plus one on the same layer: a
    /// frame missing (or out of order) since the first one received.
    pub frame_skips: AtomicU64,
    /// The number of the last video frame received (`u64::MAX`: none yet).
    pub last_frame: AtomicU64,
    /// Audio frames received.
    pub audio_frames: AtomicU64,
    /// Video frames received per simulcast layer (the top byte of the frame number).
    pub layer_frames: [AtomicU64; 4],
    /// The layer of the last video frame received.
    pub last_layer: AtomicU64,
    /// Microseconds from the client's creation to its first keyframe (`u64::MAX`: none yet).
    pub first_keyframe_us: AtomicU64,
    /// Video frames sent (publisher).
    pub frames_sent: AtomicU64,
    /// The number of the last video frame sent (publisher; `u64::MAX`: none yet).
    pub last_frame_sent: AtomicU64,
    /// Keyframes sent (publisher).
    pub keyframes_sent: AtomicU64,
    /// Keyframe requests received (publisher).
    pub keyframe_requests: AtomicU64,
    /// NACKs this client sent (cumulative, from str0m's ingress stats).
    pub nacks_sent: AtomicU64,
    /// NACKs this client received (cumulative, from str0m's egress stats).
    pub nacks_received: AtomicU64,
    /// End-to-end frame latency samples in microseconds (publisher write → subscriber frame).
    pub latencies_us: Mutex<Vec<u32>>,
}

impl ClientStats {
    pub(super) fn new() -> Self {
        ClientStats {
            connected: AtomicBool::new(false),
            rtp_packets: AtomicU64::new(0),
            rtp_sent: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            frame_skips: AtomicU64::new(0),
            last_frame: AtomicU64::new(u64::MAX),
            audio_frames: AtomicU64::new(0),
            layer_frames: Default::default(),
            last_layer: AtomicU64::new(0),
            first_keyframe_us: AtomicU64::new(u64::MAX),
            frames_sent: AtomicU64::new(0),
            last_frame_sent: AtomicU64::new(u64::MAX),
            keyframes_sent: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            nacks_sent: AtomicU64::new(0),
            nacks_received: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
        }
    }

    /// Time from the client's creation to its first keyframe.
    pub fn first_keyframe(&self) -> Option<Duration> {
        match self.first_keyframe_us.load(Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}
