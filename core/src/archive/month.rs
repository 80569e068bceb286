//! Monthly partitions of the partitioned backend: which month, which tier,
//! and the table name and bounds derived from them.

use std::fmt;
use std::str::FromStr;

use super::Retention;

/// The first day of a month, as `archive partition --month` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionMonth {
    year: u16,
    month: u8,
}

/// Why a `--month` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not `YYYY-MM-DD` with digits.
    #[error("month {0:?} is not a date in the form YYYY-MM-01")]
    Format(String),
    /// A month outside 1–12 or a year outside 1–9999.
    #[error("month {0:?} is not a valid date")]
    OutOfRange(String),
    /// A valid date that is not the first of its month: a partition bound
    /// mid-month would split the month between two partitions.
    #[error("month {0:?} is not on the first day of a month (use YYYY-MM-01)")]
    NotFirstDay(String),
}

impl PartitionMonth {
    /// A month from its year and number.
    pub fn new(year: u16, month: u8) -> Option<Self> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    /// Parses `YYYY-MM-01`.
    pub fn parse(text: &str) -> Result<Self, MonthError> {
        let format = || MonthError::Format(text.to_owned());
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(format());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u32, MonthError> {
            let part = &text[range];
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format());
            }
            part.parse().map_err(|_| format())
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let parsed = u16::try_from(year)
            .ok()
            .zip(u8::try_from(month).ok())
            .and_then(|(y, m)| Self::new(y, m))
            .ok_or_else(|| MonthError::OutOfRange(text.to_owned()))?;
        if day == 0 || day > parsed.days() {
            return Err(MonthError::OutOfRange(text.to_owned()));
        }
        if day != 1 {
            return Err(MonthError::NotFirstDay(text.to_owned()));
        }
        Ok(parsed)
    }

    fn days(self) -> u32 {
        match self.month {
            2 if self.is_leap_year() => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    fn is_leap_year(self) -> bool {
        let y = self.year;
        (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
    }

    /// The month after this one (the partition's exclusive upper bound).
    pub fn next(self) -> PartitionMonth {
        if self.month == 12 {
            PartitionMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            PartitionMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// `events_hot_YYYY_MM` or `events_cold_YYYY_MM`: only digits, letters
    /// and `_`, so the name needs no further validation to be quoted.
    pub fn table_name(self, retention: Retention) -> String {
        format!(
            "events_{}_{:04}_{:02}",
            retention.as_str(),
            self.year,
            self.month
        )
    }
}

impl fmt::Display for PartitionMonth {
    /// `YYYY-MM-01`, the inclusive lower bound as a date literal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-01", self.year, self.month)
    }
}

impl FromStr for PartitionMonth {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, MonthError> {
        Self::parse(s)
    }
}
