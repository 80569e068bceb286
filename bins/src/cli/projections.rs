//! `rillflow projections ...`: the daemon, cluster operations and projection
//! operations.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use uuid::Uuid;

use super::{parse_bind, parse_diag_token, DatabaseArgs, OutputFormat, ReadDatabaseArgs};

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Run the daemon until SIGINT/SIGTERM.
    RunLoop(RunLoopArgs),
    /// Show every cluster's nodes, leases and health as the database sees them.
    ClusterStatus(ClusterStatusArgs),
    /// Move the lease to a standby.
    Promote(PromoteArgs),
    /// Make the hot node (or a given node) give the lease up.
    Demote(DemoteArgs),
    /// List projections with their checkpoints, lag and state.
    List(ListArgs),
    /// Show one projection partition by partition.
    Status(StatusArgs),
    /// Stop applying events to a projection (its workers keep running).
    Pause(NameArgs),
    /// Apply events again; an event waiting to be retried is tried at once.
    Resume(NameArgs),
    /// Move every checkpoint of a projection to just after a global position.
    ResetCheckpoint(ResetCheckpointArgs),
    /// Rebuild a projection from the first event (beside the live version when versioned).
    Rebuild(RebuildArgs),
    /// Run one batch of each declared projection, then exit.
    RunOnce(RunOnceArgs),
    /// Run declared projections until they are caught up, then exit.
    ///
    /// Waits out pending retries (as long as the retry policy allows) until
    /// every readable event is applied or dead-lettered. Exit status: 0 the
    /// read models are complete; 3 a projection is paused or was stopped by
    /// its error policy; 4 committed events wait behind a transaction that
    /// may still append and is still open (after a second of looking
    /// again); 1 an error. One line on stderr says which.
    RunUntilIdle(RunOnceArgs),
    /// List a projection's dead-lettered events.
    DlqList(DlqListArgs),
    /// Mark a dead-lettered event to be applied once more.
    DlqRequeue(DlqIdArgs),
    /// Forget a dead-lettered event (the event stays in the log).
    DlqDelete(DlqIdArgs),
    /// Print a projection's metrics in the Prometheus text format.
    Metrics(NameArgs),
    /// Change a projection's partition count while its workers run.
    Repartition(RepartitionArgs),
    /// Show which live worker owns which partition (--partitions auto).
    Owners(NameOutputArgs),
    /// Run declared projections' SQL as a login role of their own.
    #[command(subcommand)]
    HandlerRole(HandlerRoleCommand),
}

#[derive(Debug, Subcommand)]
pub enum HandlerRoleCommand {
    /// Give projections to a role (created when missing) with just the rights their batches need.
    Create(HandlerRoleCreateArgs),
    /// List handler roles and their projections.
    List(HandlerRoleListArgs),
}

#[derive(Debug, Args)]
pub struct HandlerRoleCreateArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The login role (created without a password when missing).
    pub role: String,
    /// A projection the role runs (repeat for several).
    #[arg(long = "projection", value_name = "NAME", required = true)]
    pub projections: Vec<String>,
    /// The schema the role keeps its read models in [default: the role's name].
    #[arg(long, value_name = "SCHEMA")]
    pub read_models: Option<String>,
}

#[derive(Debug, Args)]
pub struct HandlerRoleListArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// How a worker finds its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionMode {
    /// This worker runs --partition-key of --total-partitions, fixed.
    Static,
    /// Workers share the partitions through leases and rebalance as they
    /// come and go; safe to autoscale.
    Auto,
}

#[derive(Debug, Args)]
pub struct RepartitionArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// The new partition count.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub partitions: i64,
    /// Seconds to wait for running batches before giving up.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub wait_secs: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Which projections to run and which partition of the log.
#[derive(Debug, Args)]
pub struct ProjectionSourceArgs {
    /// TOML file declaring SQL projections (see examples/projections.toml).
    #[arg(long, value_name = "FILE")]
    pub projections: Option<PathBuf>,
    /// static: run one fixed partition; auto: own partitions through
    /// leases shared with the projection's other workers.
    #[arg(long, env = "PARTITIONS", value_enum, default_value_t = PartitionMode::Static)]
    pub partitions: PartitionMode,
    /// This worker's partition, 0..total-partitions (static mode only)
    /// [default: 0].
    #[arg(
        long,
        env = "PARTITION_KEY",
        value_name = "K",
        allow_negative_numbers = true
    )]
    pub partition_key: Option<i64>,
    /// Number of partitions the projections are split into (in auto mode:
    /// the count a projection starts with; the recorded count wins after).
    #[arg(
        long,
        env = "TOTAL_PARTITIONS",
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub total_partitions: i64,
    /// Run the handlers' SQL on connections logged in through this URL, as
    /// a role given these projections with `projections handler-role
    /// create` [default: the store's own connection].
    #[arg(
        long,
        env = "RILLFLOW_HANDLER_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub handler_database_url: Option<String>,
    #[command(flatten)]
    pub read: ReadDatabaseArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NameOutputArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Also show how far this standby (the daemons' read database) lags.
    #[command(flatten)]
    pub read: ReadDatabaseArgs,
}

#[derive(Debug, Args)]
pub struct ResetCheckpointArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// Global position of the last event to treat as applied (0: none).
    #[arg(value_parser = clap::value_parser!(i64).range(0..))]
    pub position: i64,
}

#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// TOML file declaring it (its `reset` and `setup` SQL are run).
    #[arg(long, value_name = "FILE")]
    pub projections: PathBuf,
    /// Run its `reset` and `setup` SQL as its handler role, logged in
    /// through this URL [default: this command's own connection].
    #[arg(
        long,
        env = "RILLFLOW_HANDLER_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub handler_database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunOnceArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub source: ProjectionSourceArgs,
    /// Only this projection.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// run-until-idle with --read-database-url: longest wait, in seconds,
    /// for the standby to replay what the primary had committed when the
    /// command started; past it the command fails.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub replay_wait_secs: u64,
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// Most entries to print.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct DlqIdArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The projection.
    pub name: String,
    /// The dead letter's id (from dlq-list).
    #[arg(long, value_name = "ID")]
    pub id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMode {
    /// One process, no lease.
    Single,
    /// One hot node and cold standbys coordinated by leases in Postgres.
    Hotcold,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

#[derive(Debug, Args)]
pub struct RunLoopArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// single: no coordination; hotcold: one hot node, cold standbys.
    #[arg(long, value_enum, default_value_t = ClusterMode::Single)]
    pub cluster_mode: ClusterMode,
    /// Shared name of the nodes that form one cluster (required for hotcold).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// This node's name; a restart with the same name rejoins as a standby
    /// [default: the host name].
    #[arg(long, value_name = "N")]
    pub node_name: Option<String>,
    /// Reuse the node row of this daemon id (rolling restarts under a new name).
    #[arg(long, value_name = "UUID")]
    pub daemon_id: Option<Uuid>,
    /// Seconds between heartbeats and lease renewals.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,
    /// Lease length in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub lease_ttl_secs: u64,
    /// Seconds after a lease expires before another node may take it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub lease_grace_secs: u64,
    /// Standbys this cluster should have; reported by health and metrics.
    #[arg(long, default_value_t = 1)]
    pub min_cold_standbys: u32,
    /// on: bind leases (the hot node's, or dynamic partitions') to this
    /// process's database session as well as to their ttl, so a crash frees
    /// them at once; off: ttl only, for a transaction-pooling PgBouncer.
    #[arg(long, value_enum, default_value_t = Switch::On, value_name = "on|off")]
    pub session_leases: Switch,
    /// Serve JSON health on / and Prometheus metrics on /metrics here
    /// (ADDR or a bare port, which binds 127.0.0.1).
    #[arg(long, value_name = "ADDR", value_parser = parse_bind)]
    pub health_bind: Option<std::net::SocketAddr>,
    /// Also serve GET /diag/bundle there, to requests that send this token as
    /// `Authorization: Bearer TOKEN` (16 to 256 characters of letters, digits
    /// and `-._~+/=`). Prefer the environment variable: a command line is
    /// visible to every user of the machine. Without it the bundle is not
    /// served over HTTP.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "RILLFLOW_DIAG_TOKEN",
        hide_env_values = true,
        value_parser = parse_diag_token
    )]
    pub diag_token: Option<String>,
    #[command(flatten)]
    pub source: ProjectionSourceArgs,
    /// Longest wait for new events when the log's high-water mark cannot be read, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub poll_interval_ms: u64,
    /// Health reports unhealthy when a projection lags by more events.
    #[arg(long, default_value_t = 10_000)]
    pub max_lag: i64,
}

#[derive(Debug, Args)]
pub struct ClusterStatusArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Also show how far this standby (the daemons' read database) lags.
    #[command(flatten)]
    pub read: ReadDatabaseArgs,
    /// Only this cluster.
    #[arg(long, value_name = "C")]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The cluster.
    #[arg(long, value_name = "C")]
    pub cluster: String,
    /// The standby to make hot.
    #[arg(long, value_name = "N")]
    pub node: String,
    /// Promote even a node whose heartbeats lag.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the node to become hot.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}

#[derive(Debug, Args)]
pub struct DemoteArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The cluster.
    #[arg(long, value_name = "C")]
    pub cluster: String,
    /// The node to demote [default: the hot node].
    #[arg(long, value_name = "N")]
    pub node: Option<String>,
    /// Seconds to wait for the node to give the lease up.
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
}
