//! `rillflow projections run-once|run-until-idle [--name N] --projections FILE`
//!
//! Runs declared projections in this process without a lease: the checkpoint
//! row lock keeps effects exactly once even if a daemon runs them too.

use anyhow::{bail, Context, Result};
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, Batches, PgBatches, ProjectionCatalog, ProjectionRunner,
};
use rillflow_adapters::PoolConfig;
use rillflow_core::tenant::TenantOperation;
use rillflow_core::PartitionSpec;

use super::{declared, handler_session};
use crate::cli::{PartitionMode, RunOnceArgs};
use crate::commands::database;

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
    let pool = database::open(&args.db, TenantOperation::WholeLog)
        .await?
        .pool;
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
    for p in projections {
        let runner = ProjectionRunner::new(p.clone(), partition, BatchOwner::default());
        let work = PgBatches::new(runner, batch_pool.clone(), None);
        let (mut read, mut applied, mut batches) = (0usize, 0usize, 0usize);
        let last = loop {
            let outcome = work.run_batch(None).await?;
            batches += 1;
            if let BatchOutcome::Applied {
                read: r,
                applied: a,
            } = outcome
            {
                read += r;
                applied += a;
                if until_idle {
                    continue;
                }
            }
            break outcome;
        };
        let note = match last {
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
        println!(
            "{}: {batches} batch(es), {read} event(s) read, {applied} applied{note}",
            p.name()
        );
    }
    Ok(())
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
