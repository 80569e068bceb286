//! `rillflow events tail [--from POS] [--once] [--with-archived]`

use rillflow_core::tenant::TenantOperation;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use rillflow_adapters::replica::retry_conflicts;
use rillflow_adapters::EventStore;

use crate::cli::TailArgs;
use crate::commands::{read_source, signals};

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
    let mut cursor = store.cursor_at(args.from).await?;
    let mut out = std::io::stdout().lock();
    loop {
        let batch = tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(()),
            // A standby may cancel a read for its replay: read again.
            batch = retry_conflicts(|| store.read_all(cursor, args.batch_size), || {}) => batch?,
        };
        for event in &batch.events {
            serde_json::to_writer(&mut out, event)?;
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
