//! Which projection partition a stream belongs to.

use uuid::Uuid;

/// The stream's partition hash: its uuid's first 32 bits with the sign bit
/// cleared. SQL computes the same value in `rf_partition_hash`, stored on every
/// event, so workers can filter by partition inside the database.
pub fn partition_hash(stream: Uuid) -> i32 {
    let b = stream.as_bytes();
    let raw = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (raw & 0x7fff_ffff) as i32
}

/// The partition (0..total) a hash belongs to; `total` must be at least 1.
pub fn partition_of(hash: i32, total: u32) -> u32 {
    assert!(total >= 1, "a partitioning has at least one partition");
    (hash as u32) % total
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_match_sql() {
        // Values computed by rf_partition_hash in Postgres.
        let u = Uuid::parse_str("ffffffff-0000-0000-0000-000000000000").unwrap();
        assert_eq!(partition_hash(u), 0x7fff_ffff);
        let u = Uuid::parse_str("0000002a-ffff-ffff-ffff-ffffffffffff").unwrap();
        assert_eq!(partition_hash(u), 42);
    }

    proptest! {
        #[test]
        fn hash_is_non_negative_and_partition_in_range(bytes in any::<[u8; 16]>(), total in 1u32..64) {
            let h = partition_hash(Uuid::from_bytes(bytes));
            prop_assert!(h >= 0);
            prop_assert!(partition_of(h, total) < total);
        }
    }
}
