//! Handler roles: declared projections whose batches run on a connection
//! logged in as a role that may write its read models and its own
//! bookkeeping, and nothing else (sql/0012).
//!
//! A per-transaction `SET ROLE` would be no boundary: the handler's own SQL
//! could `RESET ROLE`. So the whole batch (effects and checkpoint, one
//! transaction as PROJ-1 wants) runs on the role's own login, and the
//! rights a batch needs are granted to it table by table and column by
//! column; row security keeps it to its own projections' rows.

use rillflow_core::Identifier;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::pool::{connect_with, PoolConfig};

/// What the role may change on its checkpoint rows: a batch's progress,
/// retry state, errors and carried layers. Not the row's identity.
const CHECKPOINT_COLUMNS: &str = "tx_id, position, processed_total, errors_total, \
     dead_lettered_total, last_processed_at, last_error, last_error_at, owner_epoch, \
     owner_node, retry_position, retry_attempts, retry_not_before, carry, updated_at";

/// What the role may change on its projection rows: the stop policy's
/// pause and the switch of a rebuilt read-model version.
const PROJECTION_COLUMNS: &str =
    "paused, stopped_reason, active_version, building_version, updated_at";

/// The log a batch reads (whichever of them this store has).
const LOG_TABLES: &[&str] = &["events", "events_archive", "rf_streams"];

/// Schemas a role must never be given CREATE on.
const SYSTEM_SCHEMAS: &[&str] = &["public", "information_schema"];

/// A role and the projections it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerRole {
    /// The login role.
    pub role: String,
    /// The schema it keeps its read models in.
    pub read_models: String,
    /// Its projections, by name.
    pub projections: Vec<String>,
}

/// Why a role cannot be given projections, or a daemon cannot run them.
#[derive(Debug, thiserror::Error)]
pub enum HandlerRoleError {
    /// sql/0012 is missing.
    #[error("handler roles need migration 0012: run `rillflow migrate` first")]
    NotMigrated,
    /// The role could act as more than a handler.
    #[error("role {role} {why}: it cannot confine handlers")]
    Unconfined {
        /// The role.
        role: String,
        /// What it may do.
        why: &'static str,
    },
    /// A projection already runs as another role.
    #[error("projection {projection} already runs as role {role}")]
    Taken {
        /// The projection.
        projection: String,
        /// Its role.
        role: String,
    },
    /// A role keeps all its read models in one schema.
    #[error("role {role} keeps its read models in schema {schema}; give --read-models {schema}")]
    OtherSchema {
        /// The role.
        role: String,
        /// Its schema.
        schema: String,
    },
    /// The read-model schema would open something else up.
    #[error("schema {schema} {why}; choose another --read-models")]
    BadSchema {
        /// The schema.
        schema: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The daemon was given a role that does not run these projections.
    #[error("role {role} does not run {missing}: give it them with `rillflow projections handler-role create {role} --projection NAME`")]
    NotAssigned {
        /// The role.
        role: String,
        /// The projections, comma separated.
        missing: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The handler roles of one store (the base schema or a schema tenant's).
#[derive(Debug, Clone)]
pub struct HandlerRoles {
    pool: PgPool,
}

impl HandlerRoles {
    /// The handler roles of the store `pool` is scoped to.
    pub fn new(pool: PgPool) -> Self {
        HandlerRoles { pool }
    }

    /// Gives `projections` to `role`, creating it (LOGIN, no password)
    /// when missing, and grants it what their batches need: reading the
    /// log, its own rows of the bookkeeping tables, and CREATE on
    /// `read_models`, which is created when missing. One transaction:
    /// a refusal changes nothing.
    pub async fn assign(
        &self,
        role: &Identifier,
        read_models: &Identifier,
        projections: &[String],
    ) -> Result<HandlerRole, HandlerRoleError> {
        let mut tx = self.pool.begin().await?;
        let store = migrated_store(&mut tx).await?;
        check_schema(&mut tx, read_models, &store).await?;
        ensure_confinable(&mut tx, role, &store).await?;
        let taken = sqlx::query(
            "SELECT projection, role_name::text AS role_name, read_models::text AS read_models
             FROM rf_handler_roles WHERE projection = ANY($1) OR role_name = $2",
        )
        .bind(projections)
        .bind(role.as_str())
        .fetch_all(&mut *tx)
        .await?;
        for row in &taken {
            let holder: String = row.try_get("role_name")?;
            let schema: String = row.try_get("read_models")?;
            if holder != role.as_str() {
                return Err(HandlerRoleError::Taken {
                    projection: row.try_get("projection")?,
                    role: holder,
                });
            }
            if schema != read_models.as_str() {
                return Err(HandlerRoleError::OtherSchema {
                    role: holder,
                    schema,
                });
            }
        }
        grant(&mut tx, role, read_models, &store).await?;
        sqlx::query(
            "INSERT INTO rf_handler_roles (projection, role_name, read_models)
             SELECT p, $2, $3 FROM unnest($1::text[]) AS p
             ON CONFLICT (projection) DO NOTHING",
        )
        .bind(projections)
        .bind(role.as_str())
        .bind(read_models.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|r| r.role == role.as_str())
            .expect("the role was just given its projections"))
    }

    /// Every handler role with its projections, by role name.
    pub async fn list(&self) -> Result<Vec<HandlerRole>, HandlerRoleError> {
        let mut conn = self.pool.acquire().await?;
        let present: bool =
            sqlx::query_scalar("SELECT to_regclass('rf_handler_roles') IS NOT NULL")
                .fetch_one(&mut *conn)
                .await?;
        if !present {
            return Err(HandlerRoleError::NotMigrated);
        }
        let rows = sqlx::query(
            "SELECT role_name::text AS role_name, read_models::text AS read_models,
                    array_agg(projection ORDER BY projection) AS projections
             FROM rf_handler_roles GROUP BY role_name, read_models ORDER BY role_name",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HandlerRole {
                    role: row.try_get("role_name")?,
                    read_models: row.try_get("read_models")?,
                    projections: row.try_get("projections")?,
                })
            })
            .collect()
    }

    /// A pool logged in through `url` for the batches of `projections`:
    /// its role must have been given all of them, and must not be able to
    /// step around the grants (superuser, BYPASSRLS, the store's owner).
    /// Its `search_path` is its read-model schema, then the store's.
    pub async fn connect(
        &self,
        url: &str,
        config: &PoolConfig,
        projections: &[&str],
    ) -> Result<(PgPool, HandlerRole), HandlerRoleError> {
        let store: String = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&self.pool)
            .await?;
        // Who the URL logs in as (PGUSER and the like may decide it).
        let probe = connect_with(
            config.connect_options_on(url, &quote_ident(&store))?,
            config,
        )
        .await?;
        let login: String = sqlx::query_scalar("SELECT session_user::text")
            .fetch_one(&probe)
            .await?;
        probe.close().await;
        let role = Identifier::parse(&login).map_err(|_| HandlerRoleError::Unconfined {
            role: login.clone(),
            why: "is not a name `handler-role create` makes",
        })?;
        let mut tx = self.pool.begin().await?;
        migrated_store(&mut tx).await?;
        ensure_confinable(&mut tx, &role, &store).await?;
        tx.rollback().await?;
        let assigned = self
            .list()
            .await?
            .into_iter()
            .find(|r| r.role == login)
            .unwrap_or(HandlerRole {
                role: login.clone(),
                read_models: String::new(),
                projections: Vec::new(),
            });
        let missing: Vec<&str> = projections
            .iter()
            .copied()
            .filter(|p| !assigned.projections.iter().any(|a| a == p))
            .collect();
        if !missing.is_empty() {
            return Err(HandlerRoleError::NotAssigned {
                role: login,
                missing: missing.join(", "),
            });
        }
        let path = format!(
            "{},{}",
            quote_ident(&assigned.read_models),
            quote_ident(&store)
        );
        let pool = connect_with(config.connect_options_on(url, &path)?, config).await?;
        Ok((pool, assigned))
    }
}

/// The store's schema, once sql/0012 is there.
async fn migrated_store(tx: &mut Transaction<'_, Postgres>) -> Result<String, HandlerRoleError> {
    let row = sqlx::query(
        "SELECT current_schema()::text AS store, to_regclass('rf_handler_roles') IS NOT NULL AS ok",
    )
    .fetch_one(&mut **tx)
    .await?;
    if !row.try_get::<bool, _>("ok")? {
        return Err(HandlerRoleError::NotMigrated);
    }
    Ok(row.try_get("store")?)
}

/// Refuses a read-model schema that holds a store or is shared by all.
async fn check_schema(
    tx: &mut Transaction<'_, Postgres>,
    schema: &Identifier,
    store: &str,
) -> Result<(), HandlerRoleError> {
    let bad = |why| HandlerRoleError::BadSchema {
        schema: schema.to_string(),
        why,
    };
    if schema.as_str() == store {
        return Err(bad("holds the event store"));
    }
    if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
        return Err(bad("is shared by every role of the database"));
    }
    // CREATE there would let the role shadow another store's tables.
    let holds_store: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = $1 AND c.relname = 'rf_checkpoints')",
    )
    .bind(schema.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if holds_store {
        return Err(bad("holds an event store (a tenant's?)"));
    }
    Ok(())
}

/// Creates `role` when missing; refuses one that could step around grants
/// and row security.
async fn ensure_confinable(
    tx: &mut Transaction<'_, Postgres>,
    role: &Identifier,
    store: &str,
) -> Result<(), HandlerRoleError> {
    let unconfined = |why| HandlerRoleError::Unconfined {
        role: role.to_string(),
        why,
    };
    let row = sqlx::query(
        "SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole,
                pg_has_role(r.oid, c.relowner, 'MEMBER') AS owns_store,
                r.rolname = current_user AS is_me
         FROM pg_roles r,
              (SELECT relowner FROM pg_class WHERE oid = to_regclass(quote_ident($2) || '.rf_checkpoints')) c
         WHERE r.rolname = $1",
    )
    .bind(role.as_str())
    .bind(store)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        sqlx::query(&format!("CREATE ROLE {} LOGIN", role.quoted()))
            .execute(&mut **tx)
            .await?;
        return Ok(());
    };
    if row.try_get::<bool, _>("rolsuper")? {
        return Err(unconfined("is a superuser"));
    }
    if row.try_get::<bool, _>("rolbypassrls")? {
        return Err(unconfined("bypasses row security"));
    }
    if row.try_get::<bool, _>("rolcreaterole")? {
        // Before PostgreSQL 16 it may grant itself any other role.
        return Err(unconfined("may create and grant roles"));
    }
    if row.try_get::<bool, _>("is_me")? || row.try_get::<bool, _>("owns_store")? {
        return Err(unconfined("has the rights of the store's owner"));
    }
    Ok(())
}

/// The rights a batch of the role's projections needs, and no more.
async fn grant(
    tx: &mut Transaction<'_, Postgres>,
    role: &Identifier,
    read_models: &Identifier,
    store: &str,
) -> Result<(), HandlerRoleError> {
    let r = role.quoted();
    let rm = read_models.quoted();
    let s = quote_ident(store);
    let mut statements = vec![
        format!("CREATE SCHEMA IF NOT EXISTS {rm}"),
        format!("GRANT USAGE, CREATE ON SCHEMA {rm} TO {r}"),
        format!("GRANT USAGE ON SCHEMA {s} TO {r}"),
        format!("GRANT SELECT, UPDATE ({CHECKPOINT_COLUMNS}) ON {s}.rf_checkpoints TO {r}"),
        // A rebuild beside the live version adds its checkpoints.
        format!(
            "GRANT INSERT (projection, partition_key, model_version) ON {s}.rf_checkpoints TO {r}"
        ),
        format!("GRANT SELECT, UPDATE ({PROJECTION_COLUMNS}) ON {s}.rf_projections TO {r}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.rf_projection_dlq TO {r}"),
    ];
    for table in LOG_TABLES {
        let present: bool = sqlx::query_scalar(
            "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL",
        )
        .bind(store)
        .bind(table)
        .fetch_one(&mut **tx)
        .await?;
        if present {
            statements.push(format!("GRANT SELECT ON {s}.{table} TO {r}"));
        }
    }
    let sequence: Option<String> = sqlx::query_scalar(
        "SELECT pg_get_serial_sequence(quote_ident($1) || '.rf_projection_dlq', 'id')",
    )
    .bind(store)
    .fetch_one(&mut **tx)
    .await?;
    if let Some(sequence) = sequence {
        // Already quoted by Postgres.
        statements.push(format!("GRANT USAGE ON SEQUENCE {sequence} TO {r}"));
    }
    for sql in statements {
        sqlx::query(&sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// `name` as a quoted identifier. The store's schema comes from the
/// database (`current_schema()`), not from a validated [`Identifier`].
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
