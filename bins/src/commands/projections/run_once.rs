//! `rillflow projections run-once|run-until-idle [--name N] --projections FILE`
//!
//! Runs declared projections in this process without a lease: the checkpoint
//! row lock keeps effects exactly once even if a daemon runs them too.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, Batches, PgBatches, ProjectionCatalog, ProjectionRunner,
};
use rillflow_adapters::replica::ReadReplica;
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenantOperation;
use rillflow_core::PartitionSpec;

use super::{declared, handler_session};
use crate::cli::{PartitionMode, RunOnceArgs};
use crate::commands::{database, read_source, Status};

/// `run-until-idle`'s exit status when a projection is paused or was
/// stopped by its error policy.
pub const STOPPED: u8 = 3;
/// `run-until-idle`'s exit status when committed events still wait behind
/// an open transaction that may append.
pub const HELD_BACK: u8 = 4;
/// How long `run-until-idle` keeps looking again at held-back events.
const HELD_BACK_PATIENCE: Duration = Duration::from_secs(1);

pub async fn run(args: RunOnceArgs, until_idle: bool) -> Result<()> {
    if args.source.partitions == PartitionMode::Auto {
        bail!("--partitions auto needs the daemon (projections run-loop): partitions are owned through leases that a one-shot run does not hold");
    }
    let partition = PartitionSpec::new(
        args.source.partition_key.unwrap_or(0),
        args.source.total_partitions,
    )
    .context("invalid partitioning")?;
    let Some(path) = &args.source.projections else {
        bail!("--projections FILE is required: it declares what to run");
    };
    let projections = declared::select(path, args.name.as_deref())?;
    let scoped = database::open(&args.db, TenantOperation::WholeLog).await?;
    let pool = scoped.pool.clone();
    let replica = read_source::replica(&args.source.read, &scoped, &PoolConfig::default()).await?;
    // Caught up means with the primary: what it had committed when this
    // command started must be readable on the standby before "idle" can
    // mean done.
    let replayed_to = match (&replica, until_idle) {
        (Some(_), true) => Some(ReadReplica::primary_position(&pool).await?),
        _ => None,
    };
    let batch_pool = handler_session::batch_pool(
        &pool,
        args.source.handler_database_url.as_deref(),
        &PoolConfig::default(),
        &projections,
    )
    .await?;
    let catalog = ProjectionCatalog::new(pool.clone());
    let setups = ProjectionCatalog::new(batch_pool.clone());
    for p in &projections {
        setups.setup(p.as_ref()).await?;
        catalog.register(p.name(), partition).await?;
    }
    if let (Some(replica), Some(target)) = (&replica, replayed_to) {
        let within = Duration::from_secs(args.replay_wait_secs);
        replica.wait_replayed(target, within).await?;
    }
    let mut incomplete = Incomplete::default();
    for p in projections {
        let mut runner = ProjectionRunner::new(p.clone(), partition, BatchOwner::default());
        if let Some(replica) = &replica {
            runner = runner.reading_from(replica.clone());
        }
        let work = PgBatches::new(runner, batch_pool.clone(), None);
        let tally = if until_idle {
            until_idle_run(&work).await?
        } else {
            once(&work).await?
        };
        let note = match tally.last {
            BatchOutcome::Paused => ", paused".to_owned(),
            BatchOutcome::Stopped => {
                ", stopped by its error policy (see `projections status`)".to_owned()
            }
            BatchOutcome::RetryIn(_) => ", an event is waiting to be retried".to_owned(),
            BatchOutcome::Idle | BatchOutcome::HeldBack => {
                held_back(&catalog, p.name(), partition).await?
            }
            BatchOutcome::Applied { .. } => String::new(),
        };
        let waited = if tally.retried > 0 {
            format!(", {} retry wait(s)", tally.retried)
        } else {
            String::new()
        };
        println!(
            "{}: {} batch(es), {} event(s) read, {} applied{waited}{note}",
            p.name(),
            tally.batches,
            tally.read,
            tally.applied
        );
        if until_idle {
            incomplete.note(p.name(), tally.last);
        }
    }
    incomplete.into_result()
}

/// What the batches of one projection did.
struct Tally {
    batches: usize,
    read: usize,
    applied: usize,
    /// Retry waits sat out.
    retried: usize,
    /// The outcome it stopped at.
    last: BatchOutcome,
}

/// One batch.
async fn once(work: &PgBatches) -> Result<Tally> {
    let last = work.run_batch(None).await?;
    let (read, applied) = match last {
        BatchOutcome::Applied { read, applied } => (read, applied),
        _ => (0, 0),
    };
    Ok(Tally {
        batches: 1,
        read,
        applied,
        retried: 0,
        last,
    })
}

/// Batches until nothing readable is left: a failed event's retries are
/// waited out (the retry policy bounds them: the event ends applied,
/// dead-lettered or stopping the projection), and events held back are
/// looked at again for [`HELD_BACK_PATIENCE`], since a read may stop once
/// in front of a transaction it then passes (sql/0016).
async fn until_idle_run(work: &PgBatches) -> Result<Tally> {
    let mut tally = Tally {
        batches: 0,
        read: 0,
        applied: 0,
        retried: 0,
        last: BatchOutcome::Idle,
    };
    let mut held_since: Option<Instant> = None;
    let mut pause = Duration::from_millis(20);
    loop {
        let outcome = work.run_batch(None).await?;
        tally.batches += 1;
        tally.last = outcome;
        match outcome {
            BatchOutcome::Applied { read, applied } => {
                tally.read += read;
                tally.applied += applied;
                held_since = None;
                pause = Duration::from_millis(20);
            }
            BatchOutcome::RetryIn(delay) => {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "waiting to retry a failed event"
                );
                tally.retried += 1;
                tokio::time::sleep(delay).await;
            }
            BatchOutcome::HeldBack => {
                let since = *held_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= HELD_BACK_PATIENCE {
                    return Ok(tally);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            BatchOutcome::Idle | BatchOutcome::Paused | BatchOutcome::Stopped => return Ok(tally),
        }
    }
}

/// Why `run-until-idle` left read models incomplete, if it did.
#[derive(Default)]
struct Incomplete {
    stopped: Vec<String>,
    held_back: Vec<String>,
}

impl Incomplete {
    fn note(&mut self, name: &str, last: BatchOutcome) {
        match last {
            BatchOutcome::Paused | BatchOutcome::Stopped => self.stopped.push(name.to_owned()),
            BatchOutcome::HeldBack => self.held_back.push(name.to_owned()),
            _ => {}
        }
    }

    /// A paused or stopped projection needs an operator, so it is the one
    /// reported when both happened.
    fn into_result(self) -> Result<()> {
        if !self.stopped.is_empty() {
            return Err(Status::new(
                STOPPED,
                format!(
                    "incomplete: {} paused or stopped (see `projections status`)",
                    self.stopped.join(", ")
                ),
            )
            .into());
        }
        if !self.held_back.is_empty() {
            return Err(Status::new(
                HELD_BACK,
                format!(
                    "incomplete: events for {} wait behind a transaction that may still append and is still open",
                    self.held_back.join(", ")
                ),
            )
            .into());
        }
        Ok(())
    }
}

/// Idle with events still ahead means they arrived after the last read, or
/// the gap-safe reader stopped in front of a transaction that is still open
/// (PROJ-2): say so, rather than let "idle" read as "caught up".
async fn held_back(
    catalog: &ProjectionCatalog,
    name: &str,
    partition: PartitionSpec,
) -> Result<String> {
    let status = catalog.status(name).await?;
    let lag = status
        .partitions
        .iter()
        .find(|p| p.partition == partition.key() as i32)
        .map_or(0, |p| p.lag);
    Ok(if lag > 0 {
        format!(
            ", {lag} event(s) not readable yet: written after the last read, or waiting behind \
             a transaction that is still open (the reader never skips one)"
        )
    } else {
        String::new()
    })
}
