//! The client's I/O loop: moves datagrams between its socket and str0m (through the emulated
//! link), paces the publisher's frames, answers the SFU's re-offers, and says goodbye.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aula_relay::sfu::SfuError;
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};
use tokio_util::sync::CancellationToken;

use super::link::is_rtp;
use super::{next_offer, Client, Mode};

impl Client {
    pub(super) async fn run(mut self, mut mode: Mode, shutdown: CancellationToken) {
        let mut buf = vec![0u8; 2048];
        let far = Duration::from_secs(3600);
        let mut next_video = Instant::now() + far;
        let mut next_audio = Instant::now() + far;
        let mut last_keyframe: Option<Instant> = None;
        let mut force_keyframe = true;
        let mut frame_no: u32 = 0;
        let mut audio_no: u64 = 0;
        let mut started = false;
        loop {
            let bottleneck_due = self.drain_bottleneck();
            let timeout = match self.drain(&mut force_keyframe).await {
                Some(t) => t,
                None => return,
            };
            if let Mode::Publisher { opts, audio, .. } = &mode {
                if !started && self.stats.connected.load(Relaxed) {
                    started = true;
                    next_video = Instant::now();
                    if audio.is_some() && opts.audio {
                        next_audio = Instant::now();
                    }
                }
            }
            let mut wake = timeout.min(next_video).min(next_audio);
            if let Some(due) = bottleneck_due {
                wake = wake.min(due);
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.close().await;
                    return;
                }
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => self.receive(source, &buf[..n]),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                    Err(_) => return,
                },
                Some(offer) = next_offer(&mut self.renegotiation) => {
                    if self.answer_reoffer(&offer).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            if let Mode::Publisher { opts, video, audio } = &mut mode {
                if now >= next_video {
                    let due = opts
                        .keyframe_interval
                        .is_some_and(|i| last_keyframe.is_none_or(|t| now - t >= i));
                    let key = force_keyframe || due;
                    if key {
                        force_keyframe = false;
                        last_keyframe = Some(now);
                    }
                    self.write_video(*video, opts, frame_no, key, now);
                    frame_no += 1;
                    next_video += Duration::from_secs(1) / opts.fps;
                    if next_video < now {
                        next_video = now;
                    }
                }
                if let Some(a) = audio {
                    if now >= next_audio {
                        self.write_audio(*a, audio_no, now);
                        audio_no += 1;
                        next_audio += Duration::from_millis(20);
                        if next_audio < now {
                            next_audio = now;
                        }
                    }
                }
            }
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                return;
            }
        }
    }

    /// Answers an offer the SFU made on its own (more media sections to receive).
    async fn answer_reoffer(&mut self, offer: &str) -> Result<(), SfuError> {
        let answer = self.answer_offer(offer)?;
        let r = self
            .renegotiation
            .as_ref()
            .expect("an offer came through it");
        r.sfu.accept_answer(&r.class, &r.peer, &answer).await
    }

    /// Says goodbye (RTCP BYE, DTLS close_notify) so the SFU drops this peer at once.
    async fn close(&mut self) {
        if self.rtc.close().is_err() {
            return;
        }
        for _ in 0..32 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) => {
                    // Close output (BYE, close_notify) is produced on the next timeout.
                    if self
                        .rtc
                        .handle_input(Input::Timeout(Instant::now()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
            if !self.rtc.is_alive() {
                return;
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        if !is_rtp(data) {
            self.deliver(source, data);
            return;
        }
        match &mut self.bottleneck {
            Some(b) => b.enqueue(source, data),
            None => self.deliver_rtp(source, data),
        }
    }

    /// Hands the bottleneck's datagrams whose time has come to str0m; returns when the next
    /// one is due.
    fn drain_bottleneck(&mut self) -> Option<Instant> {
        let now = Instant::now();
        loop {
            match self.bottleneck.as_mut()?.pop_due(now) {
                Ok((source, data)) => self.deliver_rtp(source, &data),
                Err(next) => return next,
            }
        }
    }

    fn deliver_rtp(&mut self, source: SocketAddr, data: &[u8]) {
        if self.loss.as_mut().is_some_and(|l| l.drop_next()) {
            return;
        }
        self.stats.rtp_packets.fetch_add(1, Relaxed);
        if self.count_only {
            self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
            return;
        }
        self.deliver(source, data);
    }

    fn deliver(&mut self, source: SocketAddr, data: &[u8]) {
        self.stats.bytes.fetch_add(data.len() as u64, Relaxed);
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        let _ = self.rtc.handle_input(input);
    }

    /// Sends everything str0m has queued and handles its events; returns the next timeout, or
    /// `None` when the connection is gone.
    async fn drain(&mut self, force_keyframe: &mut bool) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                return None;
            }
            match self.rtc.poll_output().ok()? {
                Output::Timeout(t) => return Some(t),
                Output::Transmit(t) => {
                    if is_rtp(&t.contents) && self.loss.as_mut().is_some_and(|l| l.drop_next()) {
                        continue;
                    }
                    if is_rtp(&t.contents) {
                        self.stats.rtp_sent.fetch_add(1, Relaxed);
                    }
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(e) => self.event(e, force_keyframe),
            }
        }
    }
}
