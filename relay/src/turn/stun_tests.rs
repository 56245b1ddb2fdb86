//! Unit tests of the STUN codec, including the RFC 5769 test vectors.

use super::*;

#[test]
fn type_round_trip() {
    for m in [1u16, 3, 4, 6, 7, 8, 9, 0xFFF] {
        for c in [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ] {
            let t = message_type(m, c);
            assert_eq!(split_type(t), (m, c));
        }
    }
    assert_eq!(message_type(method::BINDING, Class::Request), 0x0001);
    assert_eq!(message_type(method::BINDING, Class::Success), 0x0101);
    assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
    assert_eq!(message_type(method::DATA, Class::Indication), 0x0017);
}

/// RFC 5769 §2.1 sample request (short-term, key = password).
#[test]
fn rfc5769_sample_request() {
    let hex = "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e20746573742063\
               6c69656e74002400046e0001ff80290008932ff9b151263b36000600096576\
               746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571\
               a280280004e57a3bcf";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.method(), method::BINDING);
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.username(), Some("evtj:h6vY"));
    assert!(m.has_fingerprint());
    assert!(m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBt"));
    assert!(!m.verify_integrity(b"wrong"));
}

/// RFC 5769 §2.2 sample IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853.
#[test]
fn rfc5769_sample_response() {
    let hex = "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f\
               7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53\
               f06be7d780280004c07d4c96";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.class(), Class::Success);
    assert_eq!(
        m.xor_address(attr::XOR_MAPPED_ADDRESS),
        Some("192.0.2.1:32853".parse().unwrap())
    );
    assert!(m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBt"));
}

#[test]
fn write_then_parse() {
    let tid = [7u8; 12];
    let mut buf = Vec::new();
    let key = long_term_key("u", "r", "p");
    let peer6: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
    MessageWriter::new(&mut buf, method::ALLOCATE, Class::Error, &tid)
        .error(code::ALLOCATION_QUOTA_REACHED)
        .xor_address(attr::XOR_PEER_ADDRESS, &peer6)
        .attr(attr::USERNAME, b"abcde")
        .integrity(&key)
        .fingerprint();
    let m = Message::parse(&buf).unwrap();
    assert_eq!(m.error_code(), Some(code::ALLOCATION_QUOTA_REACHED));
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(peer6));
    assert_eq!(m.username(), Some("abcde"));
    assert!(m.verify_integrity(&key));
    let mut bad = buf.clone();
    bad[HEADER_LEN + 5] ^= 1;
    assert_eq!(
        Message::parse(&bad).unwrap_err(),
        ParseError::BadFingerprint
    );
}

#[test]
fn framing_kinds() {
    assert_eq!(
        framing(&[0x40, 0x00, 0x00, 0x05]),
        Some(Framing::ChannelData(0x4000, 5))
    );
    assert_eq!(framing(&[0x00, 0x01, 0x00, 0x08]), Some(Framing::Stun(28)));
    assert_eq!(framing(&[0x80, 0, 0, 0]), Some(Framing::Invalid));
    assert_eq!(framing(&[0, 1]), None);
}
