//! Sets keyed by packet identifier (the incoming QoS 2 exchanges; the
//! outbound window indexes its ring by id instead).
//!
//! The ids of one connection are few and mostly consecutive, so a
//! multiplicative hash spreads them well at a fraction of SipHash's cost, and
//! its zero-sized builder keeps each set four words (the connection's size
//! matters: it is paid once per idle client).

use std::{
    collections::HashSet,
    hash::{BuildHasherDefault, Hasher},
};

/// A set of packet identifiers.
pub(crate) type IdSet = HashSet<u16, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing: the odd multiplier makes the low bits (the bucket) a
/// bijection of the id's low bits and mixes every bit into the high ones
/// (the tag hashbrown compares first).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher of [`IdSet`].
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u16 keys (they call write_u16); correct for any key.
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(K);
        }
    }

    fn write_u16(&mut self, id: u16) {
        self.0 = (self.0 ^ u64::from(id)).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn consecutive_ids_fill_distinct_buckets_and_tags() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=128u16).map(|id| build.hash_one(id)).collect();
        let buckets: IdSet = hashes.iter().map(|h| (h & 127) as u16).collect();
        assert_eq!(buckets.len(), 128, "128 ids, 128 buckets of 128");
        let tags: IdSet = hashes.iter().map(|h| (h >> 57) as u16).collect();
        assert!(tags.len() > 64, "tags spread: {}", tags.len());
    }

    #[test]
    fn a_set_is_four_words() {
        assert_eq!(
            std::mem::size_of::<IdSet>(),
            4 * std::mem::size_of::<usize>()
        );
    }
}
