//! `rillflow events tail [--from TOKEN|POS] [--on-divergence fail|rewind] [--once] [--with-archived]`

use rillflow_core::tenant::TenantOperation;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use rillflow_adapters::log_history::{read_all_tagged, token_of};
use rillflow_adapters::replica::retry_conflicts;
use rillflow_adapters::{EventStore, RecordedEvent};
use serde::Serialize;

use crate::cli::TailArgs;
use crate::commands::{read_source, signals};

use super::resume;

/// One output line: the event and the token to resume after it.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    event: &'a RecordedEvent,
    cursor: String,
}

pub async fn run(args: TailArgs) -> Result<()> {
    let shutdown = signals::shutdown()?;
    tokio::pin!(shutdown);
    // A stop while connecting (to a server that does not answer, say)
    // needs no connection.
    let scoped = tokio::select! {
        biased;
        _ = &mut shutdown => return Ok(()),
        scoped = read_source::open_for_reading(&args.db, &args.read, TenantOperation::WholeLog) => scoped?,
    };
    let mut store = EventStore::new(scoped.pool);
    if args.with_archived {
        store = store.with_archived();
    }
    let mut cursor = resume::start(&store, args.from, args.on_divergence).await?;
    let mut out = std::io::stdout().lock();
    loop {
        let (batch, timeline) = tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(()),
            // A standby may cancel a read for its replay: read again.
            batch = retry_conflicts(|| read_all_tagged(&store, cursor, args.batch_size), || {}) => batch?,
        };
        for event in &batch.events {
            let cursor = token_of(event, timeline).to_string();
            serde_json::to_writer(&mut out, &Line { event, cursor })?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        cursor = batch.next;
        if !batch.events.is_empty() {
            continue;
        }
        if args.once {
            return Ok(());
        }
        tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(args.poll_ms)) => {}
        }
    }
}
