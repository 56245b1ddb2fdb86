//! Checks a client's SDP (a publisher's offer, a subscriber's answer) before str0m negotiates it.
//!
//! str0m parses any SDP safely but asserts, while matching codecs, that each payload type is
//! claimed once: an offer naming one payload type for two codecs, two retransmission formats for
//! one codec, or one codec configuration twice made it panic, which stopped the SFU for every
//! class (found by `relay/tests/fuzz_sdp.rs`). Browsers never send such SDP, so it is refused
//! here with a message naming the problem; whatever still breaks str0m is caught by the core (see
//! `SfuCore::publish`).

use std::collections::{HashMap, HashSet};

/// `Err` with what is wrong, for the first media section that breaks a rule:
///
/// - the payload types of an RTP `m=` line are numbers 0–127, each listed once;
/// - every `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` names a listed payload type, and a payload type
///   has at most one `a=rtpmap` and one `a=fmtp`;
/// - an `apt=` (retransmission of) names another listed payload type, and no two name the same;
/// - no two payload types carry the same codec (`a=rtpmap`) with the same parameters (`a=fmtp`);
/// - an `rtx` format has its `apt=`, an H264 format a valid `profile-level-id` (str0m tells
///   formats apart by them).
pub fn check(sdp: &str) -> Result<(), String> {
    for (i, section) in sdp.split("\nm=").enumerate().skip(1) {
        check_section(section).map_err(|e| format!("media section {i}: {e}"))?;
    }
    Ok(())
}

fn check_section(section: &str) -> Result<(), String> {
    let mut lines = section.lines();
    let fields: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    if fields.len() < 3 {
        return Err("malformed m= line".into());
    }
    if !fields[2].contains("RTP") {
        return Ok(()); // a data channel
    }
    let mut listed = HashSet::new();
    for f in &fields[3..] {
        let pt = payload_type(f)?;
        if !listed.insert(pt) {
            return Err(format!("payload type {pt} listed twice"));
        }
    }
    let mut rtpmap: HashMap<u8, String> = HashMap::new();
    let mut fmtp: HashMap<u8, String> = HashMap::new();
    for line in lines {
        let line = line.trim_end();
        for (prefix, seen) in [("a=rtpmap:", &mut rtpmap), ("a=fmtp:", &mut fmtp)] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
                let pt = listed_payload_type(pt, &listed)?;
                let value = value.trim().to_ascii_lowercase();
                if seen.insert(pt, value).is_some() {
                    return Err(format!("two {prefix} lines for payload type {pt}"));
                }
            }
        }
        if let Some(rest) = line.strip_prefix("a=rtcp-fb:") {
            let pt = rest.split(' ').next().unwrap_or("");
            if pt != "*" {
                listed_payload_type(pt, &listed)?;
            }
        }
    }
    let mut retransmitted = HashSet::new();
    for (pt, params) in &fmtp {
        for p in params.split(';') {
            if let Some(apt) = p.trim().strip_prefix("apt=") {
                let apt = listed_payload_type(apt, &listed)?;
                if apt == *pt {
                    return Err(format!("payload type {pt} retransmits itself"));
                }
                if !retransmitted.insert(apt) {
                    return Err(format!("payload type {apt} has two retransmission formats"));
                }
            }
        }
    }
    let mut configs = HashSet::new();
    for (pt, codec) in &rtpmap {
        let params = fmtp.get(pt).map_or("", String::as_str);
        // str0m tells formats apart by these parameters; without them (or unreadable) two
        // formats look alike to it and it asserts.
        if codec.starts_with("rtx/") && !params.contains("apt=") {
            return Err(format!("payload type {pt} (rtx) has no apt="));
        }
        if codec.starts_with("h264/") && !has_profile_level_id(params) {
            return Err(format!(
                "payload type {pt} (H264) has no valid profile-level-id"
            ));
        }
        if params.contains("apt=") {
            continue; // counted above
        }
        if !configs.insert((codec.as_str(), identity(codec, params))) {
            return Err(format!("codec {codec} configured twice alike"));
        }
    }
    Ok(())
}

/// What tells two formats of one codec apart, as str0m matches them: the profile of VP9, AV1
/// and H264 (with H264's packetization mode), defaults filled in; all parameters for others.
fn identity(codec: &str, params: &str) -> Vec<String> {
    let param = |name: &str, default: &str| {
        params
            .split(';')
            .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix('='))
            .unwrap_or(default)
            .to_owned()
    };
    match codec.split('/').next().unwrap_or("") {
        "vp9" => vec![param("profile-id", "0")],
        "av1" => vec![param("profile", "0")],
        "h264" => {
            let plid = param("profile-level-id", "42001f");
            vec![
                plid[..4.min(plid.len())].to_owned(),
                param("packetization-mode", "0"),
            ]
        }
        _ => {
            let mut all: Vec<String> = params.split(';').map(|p| p.trim().to_owned()).collect();
            all.sort_unstable();
            all
        }
    }
}

/// `profile-level-id=` with six hex digits among `a=fmtp` parameters.
fn has_profile_level_id(params: &str) -> bool {
    params.split(';').any(|p| {
        p.trim()
            .strip_prefix("profile-level-id=")
            .is_some_and(|v| v.len() == 6 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

fn payload_type(s: &str) -> Result<u8, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|pt| *pt < 128)
        .ok_or_else(|| format!("payload type {s:?} is not a number from 0 to 127"))
}

fn listed_payload_type(s: &str, listed: &HashSet<u8>) -> Result<u8, String> {
    let pt = payload_type(s)?;
    if listed.contains(&pt) {
        Ok(pt)
    } else {
        Err(format!("payload type {pt} is not in the m= line"))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    const VIDEO: &str = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:* transport-cc\r\n\
        a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\n\
        a=rtpmap:99 VP9/90000\r\na=fmtp:99 profile-id=2\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    #[test]
    fn a_browser_like_section_passes() {
        assert_eq!(check(VIDEO), Ok(()));
    }

    #[test]
    fn payload_type_clashes_are_refused() {
        let cases = [
            ("96 97 98 99", "96 97 98 96", "listed twice"),
            ("a=rtpmap:98 VP9", "a=rtpmap:96 VP9", "two a=rtpmap: lines"),
            (
                "a=fmtp:99 profile-id=2",
                "a=fmtp:98 profile-id=2",
                "two a=fmtp: lines",
            ),
            ("profile-id=2", "profile-id=0", "configured twice alike"),
            ("a=fmtp:97 apt=96", "a=fmtp:97 apt=97", "retransmits itself"),
            (
                "a=fmtp:97 apt=96",
                "a=fmtp:97 apt=100",
                "not in the m= line",
            ),
            (
                "a=rtcp-fb:96 nack",
                "a=rtcp-fb:5 nack",
                "not in the m= line",
            ),
            ("96 97 98 99", "96 97 98 300", "not a number from 0 to 127"),
        ];
        for (from, to, why) in cases {
            let sdp = VIDEO.replacen(from, to, 1);
            let err = check(&sdp).expect_err(to);
            assert!(err.contains(why), "{to}: {err}");
        }
        let two_rtx = VIDEO.replace("99\r\n", "99 100\r\n")
            + "a=rtpmap:100 rtx/90000\r\na=fmtp:100 apt=96\r\n";
        // (the extra lines land in the data channel section; put them in the video one)
        let two_rtx = two_rtx.replace("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "");
        assert!(check(&two_rtx)
            .unwrap_err()
            .contains("two retransmission formats"));
        let rtx_without_apt = VIDEO.replace("a=fmtp:97 apt=96\r\n", "");
        assert!(check(&rtx_without_apt).unwrap_err().contains("has no apt="));
        let h264 = VIDEO.replace(
            "VP9/90000\r\na=fmtp:98 profile-id=0",
            "H264/90000\r\na=fmtp:98 packetization-mode=1;profile-level-id=42e01f",
        );
        assert_eq!(check(&h264), Ok(()));
        let garbled = h264.replace("42e01f", "42e0zz");
        assert!(check(&garbled)
            .unwrap_err()
            .contains("no valid profile-level-id"));
    }
}
