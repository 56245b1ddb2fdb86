//! The synthetic VP8 frames a publisher sends: a valid VP8 payload header (keyframes marked),
//! then a stamp — a magic, the frame number, the send time and the frame length — and a filler
//! derived from the frame number, so a subscriber can tell a whole, uncorrupted frame from a
//! broken one and measure the end-to-end latency.

const MAGIC: &[u8; 4] = b"AULA";
/// Bytes of the stamp after the VP8 header: magic, frame number, send time (µs), length.
const STAMP: usize = 4 + 4 + 8 + 4;

/// Builds a synthetic VP8 frame: a VP8 payload header (RFC 6386 §9.1: frame tag, and for
/// keyframes the start code and dimensions), then the stamp and the filler.
pub fn vp8_frame(index: u32, keyframe: bool, len: usize, sent_us: u64) -> Vec<u8> {
    let header = if keyframe { 10 } else { 3 };
    let len = len.max(header + STAMP);
    let mut f = Vec::with_capacity(len);
    let first_part = ((len - header) as u32).min(0x7_ffff);
    // Frame tag: bit 0 = 0 for a keyframe, version 0, show_frame = 1, 19-bit first partition size.
    let tag = u32::from(!keyframe) | (1 << 4) | (first_part << 5);
    f.extend_from_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        f.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        f.extend_from_slice(&1280u16.to_le_bytes());
        f.extend_from_slice(&720u16.to_le_bytes());
    }
    f.extend_from_slice(MAGIC);
    f.extend_from_slice(&index.to_be_bytes());
    f.extend_from_slice(&sent_us.to_be_bytes());
    f.extend_from_slice(&(len as u32).to_be_bytes());
    f.resize(len, index as u8);
    f
}

/// Checks a frame built by [`vp8_frame`]: returns (frame number, send time µs, keyframe).
pub fn check_vp8_frame(f: &[u8]) -> Option<(u32, u64, bool)> {
    let keyframe = f.first()? & 1 == 0;
    let header = if keyframe { 10 } else { 3 };
    let s = f.get(header..header + STAMP)?;
    if &s[..4] != MAGIC || (keyframe && f[3..6] != [0x9d, 0x01, 0x2a]) {
        return None;
    }
    let index = u32::from_be_bytes(s[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(s[8..16].try_into().ok()?);
    let len = u32::from_be_bytes(s[16..20].try_into().ok()?) as usize;
    if len != f.len() || f[header + STAMP..].iter().any(|b| *b != index as u8) {
        return None;
    }
    Some((index, sent, keyframe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_frames_round_trip_and_detect_corruption() {
        let k = vp8_frame(7, true, 4000, 123_456);
        assert_eq!(k.len(), 4000);
        assert_eq!(k[0] & 1, 0, "keyframe bit");
        assert_eq!(check_vp8_frame(&k), Some((7, 123_456, true)));
        let d = vp8_frame(8, false, 100, 9);
        assert_eq!(d[0] & 1, 1);
        assert_eq!(check_vp8_frame(&d), Some((8, 9, false)));
        let mut broken = d.clone();
        broken[60] ^= 1;
        assert_eq!(check_vp8_frame(&broken), None);
        assert_eq!(check_vp8_frame(&d[..99]), None);
    }
}
