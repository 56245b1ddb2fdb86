//! The byte mutations every fuzz test applies to valid inputs (a STUN message, an SDP, a JSON
//! frame): bit flips, byte writes, truncation, insertion and duplicated ranges. Each fuzz test
//! wraps [`ByteMutation`] in its own enum with the edits that know its format.

use proptest::prelude::*;

/// One edit of a byte string. Positions are taken modulo the length, so any value applies to
/// any input; an edit that needs a byte does nothing to an empty input.
#[derive(Debug, Clone)]
pub enum ByteMutation {
    /// (position, bit): flips one bit of a byte.
    Flip(usize, u8),
    /// (position, value): overwrites a byte.
    Set(usize, u8),
    /// (position): cuts the input there.
    Truncate(usize),
    /// (position, bytes): inserts bytes there.
    Insert(usize, Vec<u8>),
    /// (position, length): repeats the range starting there right after it.
    Duplicate(usize, usize),
}

/// How many kinds [`byte_mutation`] chooses from with equal weight: a fuzz test that adds its
/// own kinds gives this weight to [`byte_mutation`] and 1 to each of its own, so every kind is
/// equally likely.
pub const BYTE_MUTATION_KINDS: u32 = 5;

/// Any [`ByteMutation`], each kind equally likely.
pub fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| ByteMutation::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| ByteMutation::Set(p, v)),
        any::<usize>().prop_map(ByteMutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(p, v)| ByteMutation::Insert(p, v)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| ByteMutation::Duplicate(p, n)),
    ]
}

impl ByteMutation {
    /// Applies the edit to `b`.
    pub fn apply(&self, b: &mut Vec<u8>) {
        let n = b.len().max(1);
        match self {
            ByteMutation::Flip(p, bit) if !b.is_empty() => b[p % n] ^= 1 << bit,
            ByteMutation::Set(p, v) if !b.is_empty() => b[p % n] = *v,
            ByteMutation::Truncate(p) => b.truncate(p % (n + 1)),
            ByteMutation::Insert(p, v) => {
                let at = p % (b.len() + 1);
                b.splice(at..at, v.iter().copied());
            }
            ByteMutation::Duplicate(p, len) if !b.is_empty() => {
                let at = p % n;
                let end = (at + len).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(end..end, chunk);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(m: ByteMutation, input: &[u8]) -> Vec<u8> {
        let mut b = input.to_vec();
        m.apply(&mut b);
        b
    }

    #[test]
    fn each_edit_does_what_it_says_with_positions_wrapped() {
        assert_eq!(applied(ByteMutation::Flip(4, 0), b"abc"), b"acc");
        assert_eq!(applied(ByteMutation::Set(1, b'x'), b"abc"), b"axc");
        assert_eq!(applied(ByteMutation::Truncate(6), b"abc"), b"ab");
        assert_eq!(
            applied(ByteMutation::Insert(5, b"XY".to_vec()), b"abc"),
            b"aXYbc"
        );
        assert_eq!(applied(ByteMutation::Duplicate(1, 9), b"abc"), b"abcbc");
    }

    #[test]
    fn an_empty_input_takes_only_the_edits_that_need_no_byte() {
        for m in [
            ByteMutation::Flip(3, 1),
            ByteMutation::Set(0, 1),
            ByteMutation::Truncate(9),
            ByteMutation::Duplicate(0, 4),
        ] {
            assert_eq!(applied(m, b""), b"");
        }
        assert_eq!(applied(ByteMutation::Insert(7, vec![1]), b""), [1]);
    }
}
