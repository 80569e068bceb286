//! The bank log that `examples/projections.toml` projects: accounts opened,
//! then deposits and withdrawals.

use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use serde_json::json;

use crate::bench_streams;

/// Appends `events` events over the 1,000 [`bench_streams`] as accounts:
/// each account's first event opens it, the rest deposit (three in four)
/// or withdraw. Appends hold 10 events and go round the accounts, so a
/// batch of 500 touches 50 accounts, 10 events each.
pub async fn fill_accounts(store: &EventStore, events: usize) {
    let streams = bench_streams();
    let mut appended = 0;
    let mut round = 0;
    while appended < events {
        for stream in &streams {
            if appended >= events {
                break;
            }
            let n = 10.min(events - appended);
            let batch: Vec<NewEvent> = (0..n)
                .map(|k| match (round, k) {
                    (0, 0) => {
                        NewEvent::new("AccountOpened", json!({ "owner": stream.to_string() }))
                    }
                    (_, k) if k % 4 == 3 => NewEvent::new("FundsWithdrawn", json!({ "amount": 3 })),
                    _ => NewEvent::new("FundsDeposited", json!({ "amount": 10 })),
                })
                .collect();
            store
                .append(*stream, ExpectedVersion::Any, &batch, &Default::default())
                .await
                .expect("append");
            appended += n;
        }
        round += 1;
    }
}
