//! Where a command reads events: the standby `--read-database-url` names,
//! scoped like the command's own database, or that database itself.

use anyhow::{Context, Result};
use rillflow_adapters::replica::{ReadReplica, ReplicaLag};
use rillflow_adapters::tenant::schema_pool;
use rillflow_adapters::{connect, PoolConfig};
use rillflow_core::tenant::{TenancyMode, TenantOperation};
use serde_json::{json, Value};

use crate::cli::{DatabaseArgs, ReadDatabaseArgs};
use crate::commands::database::{self, Scoped};

/// The standby to read events from, for a command that writes through
/// `scoped`: on the same schema as `scoped` (a schema tenant's), and
/// checked to be a copy of its server. None without `--read-database-url`.
pub async fn replica(
    read: &ReadDatabaseArgs,
    scoped: &Scoped,
    config: &PoolConfig,
) -> Result<Option<ReadReplica>> {
    let Some(url) = &read.read_database_url else {
        return Ok(None);
    };
    let config = PoolConfig {
        application_name: format!("{} (reads)", config.application_name),
        ..config.clone()
    };
    let base = connect(url, &config)
        .await
        .context("--read-database-url: cannot connect to the database")?;
    let pool = match &scoped.tenant {
        Some(t) if t.mode == TenancyMode::Schema => schema_pool(&base, &t.name).await?,
        _ => base,
    };
    Ok(Some(ReadReplica::open(pool, &scoped.pool).await?))
}

/// The database a command that only reads events (`events read`,
/// `events tail`) talks to: the standby when `--read-database-url` is
/// given, else its own. Without a tenant the standby is all it needs;
/// given both URLs, the standby is first checked to be a copy of the
/// other, so a mistyped URL cannot pass for the log. A tenant is looked
/// up where the registry is written (the base database), and the standby
/// must then be one of the server its store is on.
pub async fn open_for_reading(
    db: &DatabaseArgs,
    read: &ReadDatabaseArgs,
    operation: TenantOperation,
) -> Result<Scoped> {
    let Some(url) = &read.read_database_url else {
        return database::open(db, operation).await;
    };
    if db.tenant.is_some() {
        let scoped = database::open(db, operation).await?;
        let replica = replica(read, &scoped, &PoolConfig::default())
            .await?
            .expect("a read URL was given");
        return Ok(Scoped {
            pool: replica.pool().clone(),
            tenant: scoped.tenant,
        });
    }
    let on_standby = DatabaseArgs {
        database_url: Some(url.clone()),
        tenant: None,
    };
    let scoped = database::open(&on_standby, operation)
        .await
        .context("--read-database-url")?;
    if let Some(primary_url) = &db.database_url {
        let primary = connect(primary_url, &PoolConfig::default())
            .await
            .context("cannot connect to the database")?;
        ReadReplica::open(scoped.pool.clone(), &primary).await?;
        primary.close().await;
    }
    Ok(scoped)
}

/// The standby's lag behind `scoped`'s server, for status commands: None
/// without `--read-database-url`; a standby that cannot be measured is
/// reported, not fatal, since the rest of the status still stands.
pub async fn lag(read: &ReadDatabaseArgs, scoped: &Scoped) -> Option<Result<ReplicaLag, String>> {
    read.read_database_url.as_ref()?;
    let measured = async {
        let replica = replica(read, scoped, &PoolConfig::default())
            .await?
            .expect("a read URL was given");
        let lag = replica.lag(&scoped.pool).await?;
        replica.pool().close().await;
        anyhow::Ok(lag)
    };
    Some(measured.await.map_err(|e| format!("{e:#}")))
}

/// The `read_replica` member of a status document.
pub fn lag_json(lag: &Result<ReplicaLag, String>) -> Value {
    match lag {
        Ok(l) => json!({
            "standby": l.standby,
            "lag_bytes": l.bytes,
            "lag_seconds": l.seconds,
            "replay_paused": l.paused,
        }),
        Err(e) => json!({ "error": e }),
    }
}

/// The line a status table shows for the standby.
pub fn lag_line(lag: &Result<ReplicaLag, String>) -> String {
    match lag {
        Ok(l) => format!("read standby: lag {l}"),
        Err(e) => format!("read standby: cannot measure its lag: {e}"),
    }
}
