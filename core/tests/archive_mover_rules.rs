//! The mover's pure parts: partition months, the rate limit and the pass.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use rillflow_core::archive::{
    BatchOutcome, MonthError, MovePass, PartitionMonth, Retention, TokenBucket,
};
use uuid::Uuid;

#[test]
fn months_parse_only_on_the_first_day() {
    let m = PartitionMonth::parse("2025-01-01").unwrap();
    assert_eq!(m.to_string(), "2025-01-01");
    assert_eq!(m.next().to_string(), "2025-02-01");
    assert_eq!(m.table_name(Retention::Hot), "events_hot_2025_01");
    assert_eq!(
        PartitionMonth::parse("2024-12-01")
            .unwrap()
            .next()
            .table_name(Retention::Cold),
        "events_cold_2025_01"
    );
    let cases = [
        ("2025-01-15", MonthError::NotFirstDay("2025-01-15".into())),
        ("2025-02-30", MonthError::OutOfRange("2025-02-30".into())),
        ("2025-13-01", MonthError::OutOfRange("2025-13-01".into())),
        ("0000-01-01", MonthError::OutOfRange("0000-01-01".into())),
        ("2025-1-01", MonthError::Format("2025-1-01".into())),
        ("2025-01-01T00", MonthError::Format("2025-01-01T00".into())),
        ("2025/01/01", MonthError::Format("2025/01/01".into())),
        ("+025-01-01", MonthError::Format("+025-01-01".into())),
        ("", MonthError::Format("".into())),
    ];
    for (text, want) in cases {
        assert_eq!(PartitionMonth::parse(text), Err(want), "{text}");
    }
    assert!(
        PartitionMonth::parse("2024-02-29").is_err(),
        "not the first"
    );
    assert_eq!(
        PartitionMonth::parse("2023-02-29"),
        Err(MonthError::OutOfRange("2023-02-29".into()))
    );
}

#[test]
fn retention_names_its_tables() {
    assert_eq!("hot".parse::<Retention>(), Ok(Retention::Hot));
    assert_eq!(Retention::Cold.parent_table(), "events_cold");
    assert_eq!(Retention::Cold.default_table(), "events_cold_default");
    assert!("warm".parse::<Retention>().is_err());
}

#[test]
fn token_bucket_spends_its_burst_then_paces() {
    let s = Duration::from_secs;
    let mut bucket = TokenBucket::new(s(0), 100.0, 100.0);
    assert_eq!(bucket.take(s(0), 100), Duration::ZERO);
    assert_eq!(bucket.take(s(0), 50), Duration::from_millis(500));
    // Half a second later the debt is paid; a second later 100 more are there.
    assert_eq!(
        bucket.take(Duration::from_millis(1500), 100),
        Duration::ZERO
    );
    // A clock stepping back mints nothing.
    assert_eq!(bucket.take(s(1), 10), Duration::from_millis(100));
}

/// A case the property test found: waits rounded down to the nanosecond
/// let 7,596 tokens through where 7,595.999999 were allowed.
#[test]
fn a_token_bucket_wait_is_never_a_nanosecond_short() {
    let rate = 2548.0;
    let mut now = Duration::ZERO;
    let mut bucket = TokenBucket::new(now, rate, rate);
    for n in [3045u64, 4551] {
        now += bucket.take(now, n);
    }
    assert!(7596.0 <= rate + rate * now.as_secs_f64());
}

proptest! {
    /// Over any run, events taken never exceed burst + rate × (elapsed +
    /// waits): the limit holds whatever the batch sizes and timing.
    #[test]
    fn token_bucket_never_exceeds_its_rate(
        rate in 1u32..10_000,
        batches in proptest::collection::vec((1u64..5_000, 0u64..2_000), 1..50),
    ) {
        let rate = f64::from(rate);
        let mut now = Duration::ZERO;
        let mut bucket = TokenBucket::new(now, rate, rate);
        let mut taken = 0u64;
        for (n, gap_ms) in batches {
            now += Duration::from_millis(gap_ms);
            now += bucket.take(now, n);
            taken += n;
            let allowed = rate + rate * now.as_secs_f64();
            prop_assert!(taken as f64 <= allowed + 1e-6, "{taken} > {allowed}");
        }
    }

    /// A pass over a model of the database moves every eligible event
    /// exactly once and ends, whatever the batch size and stream layout.
    #[test]
    fn a_pass_moves_everything_eligible_and_ends(
        streams in proptest::collection::btree_map(any::<u128>(), 0u64..40, 0..30),
        batch_size in 1u32..50,
    ) {
        let total: u64 = streams.values().sum();
        let mut hot: BTreeMap<Uuid, u64> =
            streams.into_iter().map(|(id, n)| (Uuid::from_u128(id), n)).collect();
        let mut pass = MovePass::new(batch_size);
        let mut rounds = 0;
        while let Some(req) = pass.next_batch() {
            rounds += 1;
            prop_assert!(rounds <= total + hot.len() as u64 + 2, "the pass must end");
            // The streams covering the next `max_events` eligible events.
            let mut covered = 0;
            let locked: Vec<Uuid> = hot
                .iter()
                .filter(|(id, n)| **n > 0 && req.from.is_none_or(|f| **id >= f))
                .take_while(|(_, n)| {
                    let take = covered < u64::from(req.max_events);
                    covered += **n;
                    take
                })
                .map(|(id, _)| *id)
                .collect();
            let mut budget = u64::from(req.max_events);
            let mut moved = 0;
            let mut last = None;
            for id in &locked {
                let n = hot.get_mut(id).unwrap();
                let take = (*n).min(budget);
                if take > 0 {
                    *n -= take;
                    budget -= take;
                    moved += take;
                    last = Some(*id);
                }
            }
            pass.handle(&BatchOutcome { locked, moved, last_moved_stream: last });
        }
        prop_assert_eq!(pass.moved(), total);
        prop_assert!(hot.values().all(|n| *n == 0));
    }
}

#[test]
fn a_pass_at_the_last_stream_id_ends() {
    let mut pass = MovePass::new(10);
    pass.handle(&BatchOutcome {
        locked: vec![Uuid::max()],
        moved: 3,
        last_moved_stream: Some(Uuid::max()),
    });
    assert!(pass.is_done());
    assert_eq!(pass.moved(), 3);
    assert_eq!(pass.batches(), 1);
}
