//! `rillflow tenants ...`

use clap::{Args, Subcommand, ValueEnum};
use rillflow_core::tenant::{TenancyMode, TenantName};

use super::{DatabaseArgs, OutputFormat};

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Register a tenant; a schema tenant's schema is created and migrated,
    /// a database tenant's database migrated. Running it again brings that
    /// store to the latest migration.
    Add(TenantAddArgs),
    /// List registered tenants with their stream counts.
    List(TenantListArgs),
    /// Unregister a tenant that owns no streams (a tenant's events are
    /// never deleted). A schema tenant's schema stays unless --drop-schema;
    /// a database tenant's database always stays.
    Remove(TenantRemoveArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// Shared tables; the tenant's streams are tagged with its name.
    Conjoined,
    /// A schema of its own, named after the tenant.
    Schema,
    /// A database of its own, on this server or another (--url).
    Database,
}

impl From<ModeArg> for TenancyMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Conjoined => TenancyMode::Conjoined,
            ModeArg::Schema => TenancyMode::Schema,
            ModeArg::Database => TenancyMode::Database,
        }
    }
}

#[derive(Debug, Args)]
pub struct TenantAddArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The tenant's name: lowercase letters, digits and '_', up to 63 bytes.
    #[arg(value_name = "NAME")]
    pub name: TenantName,
    /// How its data is kept apart.
    #[arg(long, value_enum)]
    pub mode: ModeArg,
    /// With --mode database: the tenant database's URL, without a password
    /// (one is refused: rillflow stores the URL). The password comes from
    /// RILLFLOW_TENANT_<NAME>_PASSWORD, PGPASSWORD or a pgpass file.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct TenantListArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct TenantRemoveArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The tenant to remove.
    #[arg(value_name = "NAME")]
    pub name: TenantName,
    /// Also drop a schema tenant's schema, with everything in it (read-model
    /// tables included). Only an empty store can be removed at all.
    #[arg(long)]
    pub drop_schema: bool,
}
