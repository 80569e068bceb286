//! Hot or cold: the retention class of streams, rows and partitions.

use std::str::FromStr;

/// A retention class: a stream's (`rf_streams.retention_class`), an
/// event row's (`events.retention_class`), and the tier a partition
/// belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Retention {
    /// Hot storage (`events_hot`); for a stream, some of its events are
    /// still hot or it was never moved.
    Hot,
    /// Cold storage (`events_cold`); for a stream, the mover has taken all
    /// its hot events.
    Cold,
}

impl Retention {
    /// The value of `retention_class` and the middle of the table names.
    pub fn as_str(self) -> &'static str {
        match self {
            Retention::Hot => "hot",
            Retention::Cold => "cold",
        }
    }

    /// The tier's partitioned parent table.
    pub fn parent_table(self) -> &'static str {
        match self {
            Retention::Hot => "events_hot",
            Retention::Cold => "events_cold",
        }
    }

    /// The tier's default partition, which holds rows of months without
    /// their own partition.
    pub fn default_table(self) -> &'static str {
        match self {
            Retention::Hot => "events_hot_default",
            Retention::Cold => "events_cold_default",
        }
    }
}

impl FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hot" => Ok(Retention::Hot),
            "cold" => Ok(Retention::Cold),
            other => Err(format!("unknown retention {other:?} (hot or cold)")),
        }
    }
}
