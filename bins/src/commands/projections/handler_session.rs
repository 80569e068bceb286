//! Where a daemon runs its batches: on the store's own connections, or on
//! a handler role's (`--handler-database-url`).

use std::sync::Arc;

use anyhow::{Context, Result};
use rillflow_adapters::projection::{HandlerRoles, Projection};
use rillflow_adapters::PoolConfig;
use sqlx::PgPool;

/// The pool batches of `projections` run on. With a handler URL, its role
/// must have been given every one of them; their setup SQL then runs as
/// that role too, so their read models are its own.
pub async fn batch_pool(
    store: &PgPool,
    handler_url: Option<&str>,
    config: &PoolConfig,
    projections: &[Arc<dyn Projection>],
) -> Result<PgPool> {
    let Some(url) = handler_url else {
        return Ok(store.clone());
    };
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let (pool, role) = HandlerRoles::new(store.clone())
        .connect(url, config, &names)
        .await
        .context("cannot run the handlers as their own role")?;
    tracing::info!(role = %role.role, read_models = %role.read_models, "handlers run as their own role");
    Ok(pool)
}
