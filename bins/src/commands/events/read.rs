//! `rillflow events read --stream UUID [--from V] [--limit N] [--output json|table] [--with-archived]`

use anyhow::Result;
use rillflow_adapters::{EventStore, RecordedEvent};
use rillflow_core::tenant::TenantOperation;

use crate::cli::{OutputFormat, ReadArgs};
use crate::commands::read_source;

const PAGE: u64 = 1000;

pub async fn run(args: ReadArgs) -> Result<()> {
    let scoped =
        read_source::open_for_reading(&args.db, &args.read, TenantOperation::Events).await?;
    if let Some(tenant) = scoped.conjoined() {
        // A tenant reads its own streams only; another's reads as absent
        // would hide a mistake, so it is an error.
        let owner: Option<Option<String>> =
            sqlx::query_scalar("SELECT tenant_id FROM rf_streams WHERE stream_id = $1")
                .bind(args.stream)
                .fetch_optional(&scoped.pool)
                .await?;
        if let Some(owner) = owner {
            if owner.as_deref() != Some(tenant.as_str()) {
                anyhow::bail!("stream {} does not belong to tenant {tenant}", args.stream);
            }
        }
    }
    let mut store = EventStore::new(scoped.pool);
    if args.with_archived {
        store = store.with_archived();
    }
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut from = args.from.max(1);
    let limit = args.limit.unwrap_or(u64::MAX);
    while (events.len() as u64) < limit {
        let want = PAGE.min(limit - events.len() as u64);
        let page = store.read_stream(args.stream, from, want as i64).await?;
        let done = (page.len() as u64) < want;
        if let Some(last) = page.last() {
            from = last.version as u64 + 1;
        }
        events.extend(page);
        if done {
            break;
        }
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&events)?),
        OutputFormat::Table => print_table(&events),
    }
    Ok(())
}

fn print_table(events: &[RecordedEvent]) {
    if events.is_empty() {
        println!("(no events)");
        return;
    }
    println!(
        "{:>8}  {:>10}  {:<24}  {:<20}  DATA",
        "VERSION", "POSITION", "TYPE", "CREATED"
    );
    for e in events {
        let mut data = e.data.to_string();
        if data.chars().count() > 60 {
            data = data.chars().take(57).collect::<String>() + "...";
        }
        println!(
            "{:>8}  {:>10}  {:<24}  {:<20}  {}",
            e.version,
            e.position,
            e.event_type,
            e.created_at.format("%Y-%m-%d %H:%M:%S"),
            data
        );
    }
}
