//! `rillflow demo`: the main job end to end on a throwaway database.
//!
//! Starts a local PostgreSQL (or a scratch database on `DATABASE_URL`),
//! migrates it, runs a three-node hot/cold cluster of child processes on a
//! declarative projection, appends events, kills the hot node and times
//! the takeover, archives some streams and moves them cold, then checks
//! that every acknowledged event was projected exactly once, prints the
//! figures and removes everything it started.

mod nodes;
mod report;
mod scratch;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::archive::{
    ArchiveMover, ArchiveStatus, MoveFilter, MoveLimits, StreamLifecycle,
};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_adapters::{EventStore, Migrations, NewEvent};
use rillflow_core::ExpectedVersion;
use serde_json::json;
use uuid::Uuid;

use self::nodes::{Nodes, CLUSTER};
use self::report::{Counts, Verification};
use self::scratch::Scratch;
use crate::cli::DemoArgs;
use crate::commands::signals;

const PROJECTION_FILE: &str = include_str!("projection.toml");
const WAIT: Duration = Duration::from_secs(60);

fn step(n: u32, text: &str) {
    eprintln!("[{n}/7] {text}");
}

pub async fn run(args: DemoArgs) -> Result<()> {
    if args.events < 10 || args.streams < 2 {
        bail!("--events must be at least 10 and --streams at least 2");
    }
    let shutdown = signals::shutdown()?;
    tokio::pin!(shutdown);
    step(1, "preparing a scratch database");
    let scratch = tokio::select! {
        biased;
        _ = &mut shutdown => bail!("interrupted before the demo started anything"),
        scratch = Scratch::create(args.database_url.as_deref()) => scratch?,
    };
    // Interrupted, the demo's future is dropped (its nodes stop with it)
    // and the scratch database goes as after a full run.
    let outcome = tokio::select! {
        biased;
        _ = &mut shutdown => Err(anyhow::anyhow!(
            "interrupted; everything the demo started was stopped"
        )),
        outcome = demo(&args, &scratch) => outcome,
    };
    step(7, "stopping everything the demo started");
    scratch.remove().await;
    let verification = outcome?;
    verification.print();
    if !verification.passed() {
        bail!("verification failed");
    }
    Ok(())
}

async fn demo(args: &DemoArgs, scratch: &Scratch) -> Result<Verification> {
    let pool = scratch.pool().await?;
    Migrations::apply(&pool).await?;
    let file = scratch.dir().join("projections.toml");
    std::fs::write(&file, PROJECTION_FILE).context("cannot write the demo projection")?;

    step(
        2,
        "starting a three-node hot/cold cluster (heartbeat 1 s, lease 3 s)",
    );
    let mut nodes = Nodes::start(scratch.url(), &file, scratch.dir())?;
    let leases = PgLeaseStore::new(pool.clone());
    let first_hot = hot_node(&leases, None).await?;
    eprintln!("      {first_hot} is hot; the other two stand by");

    step(
        3,
        &format!(
            "appending {} events over {} streams",
            args.events, args.streams
        ),
    );
    let store = EventStore::new(pool.clone());
    let streams: Vec<Uuid> = (0..args.streams)
        .map(|i| {
            Uuid::from_u128((i as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
        })
        .collect();
    let appended = Arc::new(AtomicI64::new(0));
    let half = args.events / 2;
    append(&store, &streams, half, &appended, true).await?;

    step(
        4,
        &format!("killing the hot node ({first_hot}) with SIGKILL while appending"),
    );
    let writer = {
        let (store, streams, appended) = (store.clone(), streams.clone(), appended.clone());
        let rest = args.events - half;
        tokio::spawn(async move { append(&store, &streams, rest, &appended, false).await })
    };
    nodes.kill(&first_hot)?;
    let killed = Instant::now();
    let new_hot = hot_node(&leases, Some(&first_hot)).await?;
    let failover = killed.elapsed();
    eprintln!(
        "      {new_hot} took over after {} ms",
        failover.as_millis()
    );
    nodes.restart(&first_hot)?;
    writer.await.context("the writer stopped")??;
    let appended = appended.load(Ordering::SeqCst);
    wait_projected(&pool, appended).await?;

    step(5, "archiving a quarter of the streams and moving them cold");
    let lifecycle = StreamLifecycle::new(pool.clone());
    let archived = &streams[..streams.len() / 4];
    for s in archived {
        lifecycle
            .mark(*s, "demo: closed accounts", "rillflow demo")
            .await?;
    }
    let moved = ArchiveMover::new(pool.clone())
        .run(
            MoveFilter {
                tenant: None,
                before: chrono::Utc::now() + chrono::Duration::minutes(1),
                stream: None,
            },
            MoveLimits {
                batch_size: 200,
                max_events_per_sec: None,
            },
            |_| {},
        )
        .await?;
    eprintln!(
        "      {} events moved in {} batches",
        moved.moved, moved.batches
    );
    let status = ArchiveStatus::load(&pool).await?;

    step(6, "verifying the read model against the store");
    let counts = Counts::load(&pool).await?;
    nodes.stop(Duration::from_secs(5));
    Ok(Verification {
        appended,
        stored: counts.stored,
        projected: counts.projected,
        missing: counts.missing,
        duplicates: counts.duplicates,
        failover_ms: failover.as_millis(),
        new_hot,
        events_hot: status.events_hot,
        events_cold: status.events_cold_partition + status.events_archive_table,
        streams_archived: status.streams_archived,
    })
}

/// Appends `count` events, one to three at a time, round-robin over
/// `streams`; counts what was acknowledged. Progress every 500 events.
async fn append(
    store: &EventStore,
    streams: &[Uuid],
    count: usize,
    acknowledged: &AtomicI64,
    progress: bool,
) -> Result<()> {
    let mut sent = 0;
    let mut i = 0;
    while sent < count {
        let n = (1 + i % 3).min(count - sent);
        let events: Vec<NewEvent> = (0..n)
            .map(|k| NewEvent::new("Deposited", json!({ "amount": 10 + (i + k) % 90 })))
            .collect();
        store
            .append(
                streams[i % streams.len()],
                ExpectedVersion::Any,
                &events,
                &Default::default(),
            )
            .await
            .context("append failed")?;
        sent += n;
        let total = acknowledged.fetch_add(n as i64, Ordering::SeqCst) + n as i64;
        if progress && total / 500 != (total - n as i64) / 500 {
            eprintln!("      {total} events appended");
        }
        i += 1;
    }
    Ok(())
}

/// The node holding a valid lease, other than `not`.
async fn hot_node(leases: &PgLeaseStore, not: Option<&str>) -> Result<String> {
    let start = Instant::now();
    loop {
        if let Some(view) = leases.cluster_view(CLUSTER).await? {
            if let Some(leader) = view.leader.clone() {
                if Some(leader.as_str()) != not && view.holds_valid_lease(&leader) {
                    return Ok(leader);
                }
            }
        }
        if start.elapsed() > WAIT {
            bail!("no node became hot within {WAIT:?}; see the node logs");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the read model caught up with `appended` events.
async fn wait_projected(pool: &sqlx::PgPool, appended: i64) -> Result<()> {
    let catalog = ProjectionCatalog::new(pool.clone());
    let start = Instant::now();
    loop {
        if let Ok(s) = catalog.status("demo_ledger").await {
            if s.lag() == 0 && s.processed_total() >= appended {
                return Ok(());
            }
        }
        if start.elapsed() > WAIT {
            bail!("the projection did not catch up within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
