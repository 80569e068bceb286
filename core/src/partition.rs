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

/// The share of the event log one static worker processes: streams whose
/// hash is `key` modulo `total` (PROJ-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionSpec {
    key: u32,
    total: u32,
}

/// A partition key and count that do not describe a partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionSpecError {
    /// There must be at least one partition.
    #[error("total partitions must be at least 1 (got {0})")]
    NoPartitions(i64),
    /// Keys run from 0 to total − 1.
    #[error("partition key {key} is out of range: with {total} partitions the key must be 0..={max}", max = .total - 1)]
    KeyOutOfRange {
        /// The key given.
        key: i64,
        /// The partition count given.
        total: i64,
    },
    /// A count this large cannot be stored or hashed into.
    #[error("total partitions {0} is too large (at most {max})", max = PartitionSpec::MAX_TOTAL)]
    TooMany(i64),
}

impl PartitionSpec {
    /// Largest partition count accepted.
    pub const MAX_TOTAL: u32 = 1024;

    /// Everything in one partition.
    pub const WHOLE: PartitionSpec = PartitionSpec { key: 0, total: 1 };

    /// Validates a key and a count as given by an operator (signed, so a
    /// negative value gets a clear error rather than a parse failure).
    pub fn new(key: i64, total: i64) -> Result<Self, PartitionSpecError> {
        if total < 1 {
            return Err(PartitionSpecError::NoPartitions(total));
        }
        if total > i64::from(Self::MAX_TOTAL) {
            return Err(PartitionSpecError::TooMany(total));
        }
        if key < 0 || key >= total {
            return Err(PartitionSpecError::KeyOutOfRange { key, total });
        }
        Ok(PartitionSpec {
            key: key as u32,
            total: total as u32,
        })
    }

    /// This worker's key.
    pub fn key(&self) -> u32 {
        self.key
    }

    /// The number of partitions.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Whether events of a stream with `hash` belong to this partition.
    pub fn owns(&self, hash: i32) -> bool {
        partition_of(hash, self.total) == self.key
    }
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

    #[test]
    fn partition_specs_reject_impossible_keys() {
        assert!(PartitionSpec::new(0, 1).is_ok());
        assert!(PartitionSpec::new(3, 4).is_ok());
        assert_eq!(
            PartitionSpec::new(4, 4),
            Err(PartitionSpecError::KeyOutOfRange { key: 4, total: 4 })
        );
        assert_eq!(
            PartitionSpec::new(-1, 4),
            Err(PartitionSpecError::KeyOutOfRange { key: -1, total: 4 })
        );
        assert_eq!(
            PartitionSpec::new(0, 0),
            Err(PartitionSpecError::NoPartitions(0))
        );
        assert_eq!(
            PartitionSpec::new(0, 5000),
            Err(PartitionSpecError::TooMany(5000))
        );
        assert_eq!(
            PartitionSpec::new(4, 4).unwrap_err().to_string(),
            "partition key 4 is out of range: with 4 partitions the key must be 0..=3"
        );
    }

    proptest! {
        #[test]
        fn hash_is_non_negative_and_partition_in_range(bytes in any::<[u8; 16]>(), total in 1u32..64) {
            let h = partition_hash(Uuid::from_bytes(bytes));
            prop_assert!(h >= 0);
            prop_assert!(partition_of(h, total) < total);
        }

        #[test]
        fn every_stream_has_exactly_one_partition(bytes in any::<[u8; 16]>(), total in 1i64..64) {
            let h = partition_hash(Uuid::from_bytes(bytes));
            let owners = (0..total)
                .filter(|k| PartitionSpec::new(*k, total).unwrap().owns(h))
                .count();
            prop_assert_eq!(owners, 1);
        }
    }
}
