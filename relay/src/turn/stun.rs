//! A small, allocation-free STUN/TURN message codec (RFC 8489, RFC 8656).
//!
//! Only what a TURN server (and the tests' TURN client) needs: the message header, attribute
//! walking, XOR address encoding, ERROR-CODE, MESSAGE-INTEGRITY (HMAC-SHA1 with the long-term key
//! `MD5(username:realm:password)`), FINGERPRINT (CRC-32 xor `0x5354554E`) and ChannelData framing.
//!
//! Parsing borrows the input ([`Message`] is a view over `&[u8]`); writing appends to a caller's
//! `Vec<u8>` that is reused between packets, so the relaying fast path never allocates.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The STUN magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// STUN methods used by TURN.
pub mod method {
    pub const BINDING: u16 = 0x001;
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
    pub const SEND: u16 = 0x006;
    pub const DATA: u16 = 0x007;
    pub const CREATE_PERMISSION: u16 = 0x008;
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types.
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
}

/// ERROR-CODE values this server sends (RFC 8489 §14.8, RFC 8656 §19).
pub mod code {
    pub const TRY_ALTERNATE: u16 = 300;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const FORBIDDEN: u16 = 403;
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    pub const ALLOCATION_MISMATCH: u16 = 437;
    pub const STALE_NONCE: u16 = 438;
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    pub const WRONG_CREDENTIALS: u16 = 441;
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    pub const SERVER_ERROR: u16 = 500;
    pub const INSUFFICIENT_CAPACITY: u16 = 508;
}

/// Message classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
    fn from_bits(b: u16) -> Class {
        match b & 0b11 {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        }
    }
}

/// Encodes method and class into the 14-bit STUN message type.
pub fn message_type(method: u16, class: Class) -> u16 {
    let c = class.bits();
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 1) << 4)
        | ((c & 2) << 7)
}

fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = ((t >> 4) & 1) | ((t >> 7) & 2);
    (method, Class::from_bits(class))
}

/// Why a datagram is not a valid STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    TooShort,
    NotStun,
    BadLength,
    BadAttribute,
    BadFingerprint,
}

/// What the first bytes of a packet on a TURN client transport say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A STUN message of this total length.
    Stun(usize),
    /// ChannelData with this channel number and payload length (unpadded).
    ChannelData(u16, usize),
    /// Neither (first two bits are 0b10 or 0b11).
    Invalid,
}

/// Classifies a packet from its first four bytes (`None` if fewer than four).
pub fn framing(buf: &[u8]) -> Option<Framing> {
    if buf.len() < 4 {
        return None;
    }
    let first = buf[0] >> 6;
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    Some(match first {
        0 => Framing::Stun(HEADER_LEN + len),
        1 => Framing::ChannelData(u16::from_be_bytes([buf[0], buf[1]]), len),
        _ => Framing::Invalid,
    })
}

/// A parsed STUN message borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    buf: &'a [u8],
    method: u16,
    class: Class,
    /// Offset of the MESSAGE-INTEGRITY attribute header, if present.
    integrity: Option<usize>,
    /// Offset of the FINGERPRINT attribute header, if present.
    fingerprint: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses and validates a whole STUN message (header, attribute bounds, FINGERPRINT if
    /// present). `buf` must hold exactly one message.
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::TooShort);
        }
        let t = u16::from_be_bytes([buf[0], buf[1]]);
        if t & 0xC000 != 0 {
            return Err(ParseError::NotStun);
        }
        if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE {
            return Err(ParseError::NotStun);
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if !len.is_multiple_of(4) || HEADER_LEN + len != buf.len() {
            return Err(ParseError::BadLength);
        }
        let (method, class) = split_type(t);
        let mut integrity = None;
        let mut fingerprint = None;
        let mut off = HEADER_LEN;
        while off < buf.len() {
            if off + 4 > buf.len() {
                return Err(ParseError::BadAttribute);
            }
            let at = u16::from_be_bytes([buf[off], buf[off + 1]]);
            let al = u16::from_be_bytes([buf[off + 2], buf[off + 3]]) as usize;
            let end = off + 4 + al;
            let padded = off + 4 + pad4(al);
            if end > buf.len() || padded > buf.len() {
                return Err(ParseError::BadAttribute);
            }
            if fingerprint.is_some() {
                // Nothing may follow FINGERPRINT.
                return Err(ParseError::BadAttribute);
            }
            match at {
                attr::MESSAGE_INTEGRITY if integrity.is_none() => {
                    if al != 20 {
                        return Err(ParseError::BadAttribute);
                    }
                    integrity = Some(off);
                }
                attr::FINGERPRINT => {
                    if al != 4 {
                        return Err(ParseError::BadAttribute);
                    }
                    fingerprint = Some(off);
                }
                _ => {}
            }
            off = padded;
        }
        if let Some(fp) = fingerprint {
            let want = u32::from_be_bytes([buf[fp + 4], buf[fp + 5], buf[fp + 6], buf[fp + 7]]);
            if crc32fast::hash(&buf[..fp]) ^ FINGERPRINT_XOR != want {
                return Err(ParseError::BadFingerprint);
            }
        }
        Ok(Message {
            buf,
            method,
            class,
            integrity,
            fingerprint,
        })
    }

    pub fn method(&self) -> u16 {
        self.method
    }
    pub fn class(&self) -> Class {
        self.class
    }
    pub fn transaction_id(&self) -> &'a [u8; 12] {
        self.buf[8..20].try_into().expect("12 bytes")
    }
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }
    /// The raw message bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Iterates attributes covered by MESSAGE-INTEGRITY (those after it are ignored, RFC 8489
    /// §14.5), as `(type, value)`.
    pub fn attributes(&self) -> Attributes<'a> {
        let end = self
            .integrity
            .or(self.fingerprint)
            .unwrap_or(self.buf.len());
        Attributes {
            buf: &self.buf[..end],
            off: HEADER_LEN,
        }
    }

    /// The value of the first attribute of type `t`.
    pub fn get(&self, t: u16) -> Option<&'a [u8]> {
        self.attributes().find(|(at, _)| *at == t).map(|(_, v)| v)
    }

    /// First comprehension-required attribute type that `known` does not accept.
    pub fn unknown_required(&self, known: impl Fn(u16) -> bool) -> Option<u16> {
        self.attributes()
            .map(|(t, _)| t)
            .find(|&t| t < 0x8000 && !known(t))
    }

    pub fn username(&self) -> Option<&'a str> {
        self.get(attr::USERNAME)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    pub fn realm(&self) -> Option<&'a str> {
        self.get(attr::REALM)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.get(attr::NONCE)
    }
    pub fn u32_attr(&self, t: u16) -> Option<u32> {
        let v = self.get(t)?;
        (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }
    /// Decodes an XOR-*-ADDRESS attribute of type `t`.
    pub fn xor_address(&self, t: u16) -> Option<SocketAddr> {
        decode_xor_address(self.get(t)?, self.transaction_id())
    }
    /// All XOR-PEER-ADDRESS attributes (CreatePermission may carry several).
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = Option<SocketAddr>> + 'a {
        let tid = *self.transaction_id();
        self.attributes()
            .filter(|(t, _)| *t == attr::XOR_PEER_ADDRESS)
            .map(move |(_, v)| decode_xor_address(v, &tid))
    }
    /// The ERROR-CODE attribute's code (e.g. 401).
    pub fn error_code(&self) -> Option<u16> {
        let v = self.get(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        Some((v[2] & 0x7) as u16 * 100 + v[3] as u16)
    }

    /// Checks MESSAGE-INTEGRITY with `key` (false if absent or wrong).
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(mi) = self.integrity else {
            return false;
        };
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
        // The length field as if MESSAGE-INTEGRITY were the last attribute.
        let len = (mi + 4 + 20 - HEADER_LEN) as u16;
        mac.update(&self.buf[0..2]);
        mac.update(&len.to_be_bytes());
        mac.update(&self.buf[4..mi]);
        mac.verify_slice(&self.buf[mi + 4..mi + 24]).is_ok()
    }
}

/// Iterator over `(type, value)` attribute pairs.
pub struct Attributes<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.buf;
        let o = self.off;
        if o + 4 > b.len() {
            return None;
        }
        let t = u16::from_be_bytes([b[o], b[o + 1]]);
        let l = u16::from_be_bytes([b[o + 2], b[o + 3]]) as usize;
        let v = b.get(o + 4..o + 4 + l)?;
        self.off = o + 4 + pad4(l);
        Some((t, v))
    }
}

/// Rounds up to a multiple of four.
pub fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// The long-term credential key `MD5(username ":" realm ":" password)`.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

fn decode_xor_address(v: &[u8], tid: &[u8; 12]) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    match v[1] {
        0x01 if v.len() == 8 => {
            let a = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
        }
        0x02 if v.len() == 20 => {
            let mut a = [0u8; 16];
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(tid);
            for i in 0..16 {
                a[i] = v[4 + i] ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
}

/// Length in bytes of an XOR address attribute (header included) for `addr`.
pub fn xor_address_attr_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 12,
        SocketAddr::V6(_) => 24,
    }
}

/// Writes an XOR address attribute (header included) into `out`, which must be exactly
/// [`xor_address_attr_len`] bytes long.
pub fn write_xor_address(out: &mut [u8], t: u16, addr: &SocketAddr, tid: &[u8; 12]) {
    out[0..2].copy_from_slice(&t.to_be_bytes());
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[2..4].copy_from_slice(&8u16.to_be_bytes());
            out[4] = 0;
            out[5] = 1;
            out[6..8].copy_from_slice(&port.to_be_bytes());
            let a = u32::from(ip) ^ MAGIC_COOKIE;
            out[8..12].copy_from_slice(&a.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            out[2..4].copy_from_slice(&20u16.to_be_bytes());
            out[4] = 0;
            out[5] = 2;
            out[6..8].copy_from_slice(&port.to_be_bytes());
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(tid);
            let o = ip.octets();
            for i in 0..16 {
                out[8 + i] = o[i] ^ mask[i];
            }
        }
    }
}

/// Builds a STUN message into a reused buffer.
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message at the end of `buf` (usually cleared first).
    pub fn new(
        buf: &'b mut Vec<u8>,
        method: u16,
        class: Class,
        tid: &[u8; 12],
    ) -> MessageWriter<'b> {
        let start = buf.len();
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(tid);
        MessageWriter { buf, start }
    }

    fn tid(&self) -> [u8; 12] {
        self.buf[self.start + 8..self.start + 20]
            .try_into()
            .expect("12 bytes")
    }

    fn set_len(&mut self) {
        let len = (self.buf.len() - self.start - HEADER_LEN) as u16;
        self.buf[self.start + 2..self.start + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Appends a raw attribute (padded with zeros).
    pub fn attr(&mut self, t: u16, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(v);
        let pad = pad4(v.len()) - v.len();
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
        self.set_len();
        self
    }

    pub fn u32_attr(&mut self, t: u16, v: u32) -> &mut Self {
        self.attr(t, &v.to_be_bytes())
    }

    pub fn xor_address(&mut self, t: u16, addr: &SocketAddr) -> &mut Self {
        let tid = self.tid();
        let n = xor_address_attr_len(addr);
        let at = self.buf.len();
        self.buf.resize(at + n, 0);
        write_xor_address(&mut self.buf[at..at + n], t, addr, &tid);
        self.set_len();
        self
    }

    /// ERROR-CODE with its standard reason phrase.
    pub fn error(&mut self, code: u16) -> &mut Self {
        let reason = reason_phrase(code);
        let mut v = [0u8; 4 + 40];
        v[2] = (code / 100) as u8;
        v[3] = (code % 100) as u8;
        v[4..4 + reason.len()].copy_from_slice(reason.as_bytes());
        self.attr(attr::ERROR_CODE, &v[..4 + reason.len()])
    }

    /// ERROR-CODE with an empty reason phrase (allowed by RFC 8489 §14.8; the phrase is only
    /// for diagnostics), for unauthenticated answers that should be as small as possible.
    pub fn error_code_only(&mut self, code: u16) -> &mut Self {
        self.attr(
            attr::ERROR_CODE,
            &[0, 0, (code / 100) as u8, (code % 100) as u8],
        )
    }

    /// UNKNOWN-ATTRIBUTES listing `t`.
    pub fn unknown_attributes(&mut self, t: u16) -> &mut Self {
        self.attr(attr::UNKNOWN_ATTRIBUTES, &t.to_be_bytes())
    }

    /// Appends MESSAGE-INTEGRITY computed with `key`.
    pub fn integrity(&mut self, key: &[u8]) -> &mut Self {
        let at = self.buf.len();
        self.buf
            .extend_from_slice(&attr::MESSAGE_INTEGRITY.to_be_bytes());
        self.buf.extend_from_slice(&20u16.to_be_bytes());
        self.buf.extend_from_slice(&[0u8; 20]);
        self.set_len();
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
        mac.update(&self.buf[self.start..at]);
        let tag = mac.finalize().into_bytes();
        self.buf[at + 4..at + 24].copy_from_slice(&tag);
        self
    }

    /// Appends FINGERPRINT; must be last.
    pub fn fingerprint(&mut self) -> &mut Self {
        let at = self.buf.len();
        self.buf.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes());
        self.buf.extend_from_slice(&[0u8; 4]);
        self.set_len();
        let crc = crc32fast::hash(&self.buf[self.start..at]) ^ FINGERPRINT_XOR;
        self.buf[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        self
    }

    /// Total length of the message written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The reason phrase for the error codes this server sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        code::TRY_ALTERNATE => "Try Alternate",
        code::BAD_REQUEST => "Bad Request",
        code::UNAUTHORIZED => "Unauthorized",
        code::FORBIDDEN => "Forbidden",
        code::UNKNOWN_ATTRIBUTE => "Unknown Attribute",
        code::ALLOCATION_MISMATCH => "Allocation Mismatch",
        code::STALE_NONCE => "Stale Nonce",
        code::ADDRESS_FAMILY_NOT_SUPPORTED => "Address Family not Supported",
        code::WRONG_CREDENTIALS => "Wrong Credentials",
        code::UNSUPPORTED_TRANSPORT_PROTOCOL => "Unsupported Transport Protocol",
        code::PEER_ADDRESS_FAMILY_MISMATCH => "Peer Address Family Mismatch",
        code::ALLOCATION_QUOTA_REACHED => "Allocation Quota Reached",
        code::SERVER_ERROR => "Server Error",
        code::INSUFFICIENT_CAPACITY => "Insufficient Capacity",
        _ => "Error",
    }
}

/// Writes a ChannelData header for `len` payload bytes at `out[0..4]`.
pub fn write_channel_header(out: &mut [u8], channel: u16, len: usize) {
    out[0..2].copy_from_slice(&channel.to_be_bytes());
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
}

#[cfg(test)]
#[path = "stun_tests.rs"]
mod tests;
