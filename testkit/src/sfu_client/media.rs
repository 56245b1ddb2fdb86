//! What the client puts into media and reads out of it: synthetic VP8 and Opus-sized frames
//! written through str0m's packetizer, and the checks and latency of the frames a subscriber
//! receives.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Rid};
use str0m::Event;

use super::frame::{check_vp8_frame, vp8_frame};
use super::{Client, PublisherOptions};

/// Latency samples kept per client.
const MAX_SAMPLES: usize = 200_000;

impl Client {
    pub(super) fn event(&mut self, e: Event, force_keyframe: &mut bool) {
        let s = &self.stats;
        match e {
            Event::Connected => s.connected.store(true, Relaxed),
            Event::KeyframeRequest(_) => {
                s.keyframe_requests.fetch_add(1, Relaxed);
                *force_keyframe = true;
            }
            Event::MediaData(d) => {
                if !d.contiguous {
                    s.gaps.fetch_add(1, Relaxed);
                }
                if d.params.spec().codec.is_audio() {
                    s.audio_frames.fetch_add(1, Relaxed);
                    return;
                }
                let Some((no, sent_us, key)) = check_vp8_frame(&d.data) else {
                    s.bad_frames.fetch_add(1, Relaxed);
                    return;
                };
                s.frames.fetch_add(1, Relaxed);
                let previous = s.last_frame.swap(u64::from(no), Relaxed);
                let same_layer = previous >> 24 == u64::from(no >> 24);
                if previous != u64::MAX && same_layer && u64::from(no) != previous + 1 {
                    s.frame_skips.fetch_add(1, Relaxed);
                }
                let layer = (no >> 24) as usize & 3;
                s.layer_frames[layer].fetch_add(1, Relaxed);
                s.last_layer.store(layer as u64, Relaxed);
                let now = Instant::now();
                if key {
                    s.keyframes.fetch_add(1, Relaxed);
                    let since = (now - self.created).as_micros() as u64;
                    let _ = s
                        .first_keyframe_us
                        .compare_exchange(u64::MAX, since, Relaxed, Relaxed);
                }
                let now_us = (now - self.epoch).as_micros() as u64;
                let lat = now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32;
                let mut l = s.latencies_us.lock().expect("latency lock");
                if l.len() < MAX_SAMPLES {
                    l.push(lat);
                }
            }
            Event::MediaIngressStats(st) => {
                s.nacks_sent.fetch_max(st.nacks, Relaxed);
            }
            Event::MediaEgressStats(st) => {
                s.nacks_received.fetch_max(st.nacks, Relaxed);
            }
            _ => {}
        }
    }

    pub(super) fn write_video(
        &mut self,
        mid: Mid,
        opts: &PublisherOptions,
        no: u32,
        key: bool,
        now: Instant,
    ) {
        let layers: Vec<(Option<Rid>, u64)> = if opts.simulcast.is_empty() {
            vec![(None, opts.video_bps)]
        } else {
            opts.simulcast
                .iter()
                .map(|(rid, bps)| (Some(Rid::from(rid.as_str())), *bps))
                .collect()
        };
        let sent_us = (now - self.epoch).as_micros() as u64;
        let time = MediaTime::new(
            u64::from(no) * 90_000 / u64::from(opts.fps),
            Frequency::NINETY_KHZ,
        );
        for (i, (rid, bps)) in layers.into_iter().enumerate() {
            let Some(mut writer) = self.rtc.writer(mid) else {
                return;
            };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
            else {
                return;
            };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            let size = (bps / 8 / u64::from(opts.fps)) as usize;
            let size = if key { size * 4 } else { size };
            let frame = vp8_frame(no & 0x00ff_ffff | (i as u32) << 24, key, size, sent_us);
            if writer.write(pt, now, time, frame).is_ok() && i == 0 {
                self.stats.frames_sent.fetch_add(1, Relaxed);
                self.stats.last_frame_sent.store(u64::from(no), Relaxed);
                if key {
                    self.stats.keyframes_sent.fetch_add(1, Relaxed);
                }
            }
        }
    }

    pub(super) fn write_audio(&mut self, mid: Mid, no: u64, now: Instant) {
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::new(no * 960, Frequency::FORTY_EIGHT_KHZ);
        let _ = writer.write(pt, now, time, vec![0xfc_u8; 80]);
    }
}
