//! `rillflow events append --stream UUID --type T --data JSON ...`, or
//! `--from-file FILE` (see `append_file`).

use anyhow::{Context, Result};
use rillflow_adapters::{AppendOptions, EventStore, NewEvent};
use rillflow_core::tenant::TenantOperation;

use crate::cli::AppendArgs;
use crate::commands::database;

pub async fn run(args: AppendArgs) -> Result<()> {
    if let Some(path) = &args.from_file {
        return super::append_file::run(path, &args.db).await;
    }
    // clap requires these three without --from-file.
    let stream = args.stream.context("--stream is required")?;
    let event_type = args.event_type.context("--type is required")?;
    let data = args.data.context("--data is required")?;
    let mut event = NewEvent::new(event_type, data).with_schema_version(args.schema_version);
    if let Some(headers) = args.headers {
        event = event.with_headers(headers);
    }
    if let Some(id) = args.event_id {
        event = event.with_id(id);
    }
    if let Some(id) = args.causation_id {
        event = event.caused_by(id);
    }
    if let Some(id) = args.correlation_id {
        event = event.correlated_with(id);
    }
    let scoped = database::open(&args.db, TenantOperation::Events).await?;
    let options = AppendOptions {
        idempotency_key: args.idempotency_key,
        tenant: scoped.conjoined().cloned(),
    };
    let store = EventStore::new(scoped.pool);
    let result = store
        .append(stream, args.expected_version, &[event], &options)
        .await?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
