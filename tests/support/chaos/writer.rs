//! The chaos run's writer: steady appends to many streams, retried through
//! database restarts with idempotency keys so a lost reply never doubles an
//! append.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::{AppendOptions, EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use serde_json::json;
use uuid::Uuid;

/// What the writer was told: every acknowledged event's position.
#[derive(Debug, Default)]
pub struct Acks {
    /// Positions the store acknowledged.
    pub positions: Vec<i64>,
    /// Append attempts that failed and were retried.
    pub retries: u64,
}

/// Appends until `stop`, one to three events at a time, round-robin over
/// `streams`, pausing `pause` between appends.
pub fn spawn(
    store: EventStore,
    streams: Vec<Uuid>,
    pause: Duration,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Acks>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seq = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let stream = streams[(seq as usize) % streams.len()];
            let batch: Vec<NewEvent> = (0..1 + seq % 3)
                .map(|n| NewEvent::new("Tick", json!({ "seq": seq, "n": n })))
                .collect();
            let options = AppendOptions {
                idempotency_key: Some(format!("chaos-{seq}")),
                ..AppendOptions::default()
            };
            loop {
                match store
                    .append(stream, ExpectedVersion::Any, &batch, &options)
                    .await
                {
                    Ok(result) => {
                        acks.lock()
                            .expect("acks lock")
                            .positions
                            .extend(result.positions);
                        break;
                    }
                    Err(_) if !stop.load(Ordering::SeqCst) => {
                        acks.lock().expect("acks lock").retries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    // Stopping with an append in doubt: it was never
                    // acknowledged, so the check does not count on it.
                    Err(_) => return,
                }
            }
            seq += 1;
            tokio::time::sleep(pause).await;
        }
    })
}
