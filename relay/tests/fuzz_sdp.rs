//! Fuzzing of the SDP checks of the SFU on the stable toolchain: proptest mutates valid offers
//! and answers (bit flips, byte writes, truncation, insertion, duplicated ranges, and SDP-aware
//! edits: lines dropped, duplicated or swapped, numbers replaced by extreme ones, attributes
//! spliced in) and hands them to the SFU core the way signaling does — a publisher's offer to
//! `SfuCore::publish` (str0m's parser and negotiation, `learn_tracks`, the fingerprint check), a
//! subscriber's answer to `SfuCore::accept_answer` — then runs the core's timers and a second
//! subscriber. A panic, or counters that disagree with the peers it holds, fails the test.
//!
//! `cargo test` runs a bounded number of cases (seconds); `AULA_FUZZ_CASES=N` runs N per
//! property (the figures of a long run are in docs/security.md, "Fuzzing").

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aula_relay::sfu::{Allowed, SfuConfig, SfuCore};
use aula_testkit::mutate::{byte_mutation, ByteMutation, BYTE_MUTATION_KINDS};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};
use str0m::{Candidate, Rtc};

fn cases() -> u32 {
    std::env::var("AULA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

const SFU: &str = "192.0.2.1:5000";

fn rtc() -> Rtc {
    let mut rtc = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    let addr: SocketAddr = "192.0.2.10:6000".parse().unwrap();
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    rtc
}

/// Valid publisher offers (simulcast video and audio; screen, camera and microphone) and a
/// valid answer to a subscriber offer of the SFU.
struct Seeds {
    offers: Vec<String>,
    answer: String,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut offers = Vec::new();
        let mut a = rtc();
        let mut api = a.sdp_api();
        let mut s = Simulcast::new();
        for rid in ["l", "h"] {
            s.add_send_layer(SimulcastLayer::new(rid));
        }
        api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(s));
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        offers.push(api.apply().unwrap().0.to_sdp_string());
        let mut b = rtc();
        let mut api = b.sdp_api();
        api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        offers.push(api.apply().unwrap().0.to_sdp_string());

        // The answer of a subscriber to an SFU that has a publisher.
        let mut core = core();
        let now = Instant::now();
        core.publish(now, "c", "t", &offers[0], Allowed::ALL)
            .unwrap();
        let offer = core.subscribe(now, "c", "s").unwrap();
        let mut sub = rtc();
        let answer = sub
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap()
            .to_sdp_string();
        core.accept_answer(now, "c", "s", &answer).unwrap();
        Seeds { offers, answer }
    })
}

fn core() -> SfuCore {
    SfuCore::new(SfuConfig::default(), SFU.parse().unwrap())
}

#[derive(Debug, Clone)]
enum Mutation {
    Bytes(ByteMutation),
    DropLine(usize),
    DupLine(usize),
    SwapLines(usize, usize),
    /// Replaces the number at or after a position with an extreme one.
    Number(usize, &'static str),
    /// Adds an attribute line after a line.
    Line(usize, &'static str),
}

const NUMBERS: [&str; 7] = [
    "0",
    "-1",
    "65536",
    "4294967296",
    "99999999999999999999999",
    "",
    "1e9",
];

const LINES: [&str; 14] = [
    "a=mid:",
    "a=mid:0",
    "a=sendonly",
    "a=rid:h send",
    "a=simulcast:send h;l;q",
    "a=fingerprint:sha-256 00",
    "a=fingerprint:",
    "a=setup:actpass",
    "a=ssrc-group:FID 1",
    "a=rtpmap:96 VP8/0",
    "a=extmap:99 urn:ietf:params:rtp-hdrext:sdes:mid",
    "m=video 0 UDP/TLS/RTP/SAVPF 96",
    "m=audio 9 UDP/TLS/RTP/SAVPF",
    "a=group:BUNDLE 0 1 2 3 4 5 6 7",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        BYTE_MUTATION_KINDS => byte_mutation().prop_map(Mutation::Bytes),
        1 => any::<usize>().prop_map(Mutation::DropLine),
        1 => any::<usize>().prop_map(Mutation::DupLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<usize>(), prop::sample::select(NUMBERS.to_vec()))
            .prop_map(|(p, n)| Mutation::Number(p, n)),
        1 => (any::<usize>(), prop::sample::select(LINES.to_vec()))
            .prop_map(|(p, l)| Mutation::Line(p, l)),
    ]
}

fn apply(sdp: &mut Vec<u8>, m: &Mutation) {
    let n = sdp.len().max(1);
    let lines = || -> Vec<Vec<u8>> { sdp.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
    match m {
        Mutation::Bytes(b) => b.apply(sdp),
        Mutation::DropLine(i) => {
            let mut l = lines();
            l.remove(i % l.len());
            *sdp = l.join(&b'\n');
        }
        Mutation::DupLine(i) => {
            let mut l = lines();
            let at = i % l.len();
            l.insert(at, l[at].clone());
            *sdp = l.join(&b'\n');
        }
        Mutation::SwapLines(a, b) => {
            let mut l = lines();
            let len = l.len();
            l.swap(a % len, b % len);
            *sdp = l.join(&b'\n');
        }
        Mutation::Number(p, num) => {
            let start = p % n;
            if let Some(s) = (start..sdp.len()).find(|&i| sdp[i].is_ascii_digit()) {
                let e = (s..sdp.len())
                    .find(|&i| !sdp[i].is_ascii_digit())
                    .unwrap_or(sdp.len());
                sdp.splice(s..e, num.bytes());
            }
        }
        Mutation::Line(i, line) => {
            let mut l = lines();
            let at = i % (l.len() + 1);
            l.insert(at, format!("{line}\r").into_bytes());
            *sdp = l.join(&b'\n');
        }
    }
}

fn mutate(seed: &str, muts: &[Mutation]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for m in muts {
        apply(&mut b, m);
    }
    // Signaling hands the SFU `String`s from JSON: always UTF-8.
    String::from_utf8_lossy(&b).into_owned()
}

/// The core's counters agree with what it answers for.
fn consistent(core: &mut SfuCore, now: Instant) {
    core.handle_timeout(now);
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
    let subscribers = core.stats().subscribers;
    assert!(subscribers <= 2, "{subscribers} subscribers");
    assert!(core.stats().publishers <= 1);
}

/// Panics str0m raised on SDP that passed the checks; the core caught them (see `guarded` in
/// `sfu/core.rs`). Counted, not printed, so a long run's output stays readable.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside_str0m = info.location().is_some_and(|l| l.file().contains("str0m"));
            if inside_str0m {
                CAUGHT.fetch_add(1, Ordering::Relaxed);
                if verbose() {
                    eprintln!("caught: {info}");
                }
            } else {
                default(info);
            }
        }));
    });
}

fn verbose() -> bool {
    std::env::var_os("AULA_FUZZ_VERBOSE").is_some()
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// A publisher's mutated offer; a subscriber then gets an offer and its answer is mutated too,
/// and the core keeps running.
#[test]
fn mutated_offers_and_answers() {
    count_panics();
    let strategy = (
        0usize..2,
        proptest::collection::vec(mutation(), 0..6),
        proptest::collection::vec(mutation(), 1..6),
    );
    let started = Instant::now();
    runner()
        .run(&strategy, |(seed, offer_muts, answer_muts)| {
            let seeds = seeds();
            let mut core = core();
            let t0 = Instant::now();
            let offer = mutate(&seeds.offers[seed], &offer_muts);
            let before = CAUGHT.load(Ordering::Relaxed);
            if let Ok(answer) = core.publish(t0, "c", "t", &offer, Allowed::ALL) {
                prop_assert!(answer.starts_with("v=0"));
            }
            // A renegotiation with the same text takes the other path of `publish`.
            let _ = core.publish(t0, "c", "t", &offer, Allowed::ALL);
            if verbose() && CAUGHT.load(Ordering::Relaxed) > before {
                let old: Vec<&str> = seeds.offers[seed].lines().collect();
                for l in offer.lines().filter(|l| !old.contains(l)) {
                    eprintln!("  caught on an offer with the line {l:?}");
                }
            }
            core.subscribe(t0, "c", "s")
                .expect("a subscriber is offered something");
            let answer = mutate(&seeds.answer, &answer_muts);
            let _ = core.accept_answer(t0, "c", "s", &answer);
            consistent(&mut core, t0 + Duration::from_millis(50));
            core.subscribe(t0, "c", "s2").expect("a second subscriber");
            consistent(&mut core, t0 + Duration::from_secs(11));
            prop_assert_eq!(
                core.stats().subscribers,
                0,
                "unconnected subscribers expired"
            );
            Ok(())
        })
        .unwrap();
    eprintln!(
        "fuzz_sdp: {} cases in {:?}, {} panics inside str0m caught by the core",
        cases(),
        started.elapsed(),
        CAUGHT.load(Ordering::Relaxed)
    );
}

/// Random text as an offer and as an answer.
#[test]
fn random_text() {
    count_panics();
    let strategy = (".{0,300}", ".{0,300}");
    runner()
        .run(&strategy, |(offer, answer)| {
            let mut core = core();
            let t0 = Instant::now();
            prop_assert!(core.publish(t0, "c", "t", &offer, Allowed::ALL).is_err());
            core.subscribe(t0, "c", "s").unwrap();
            let _ = core.accept_answer(t0, "c", "s", &answer);
            consistent(&mut core, t0 + Duration::from_millis(50));
            Ok(())
        })
        .unwrap();
}
