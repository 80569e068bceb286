//! The command line, as clap types. Behaviour lives in `commands/`.

mod archive;
mod diag;
mod health;
pub mod input;
mod projections;
mod tenants;

pub use archive::*;
pub use diag::*;
pub use health::*;
pub use projections::*;
pub use tenants::*;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rillflow_core::tenant::TenantName;
use rillflow_core::{ExpectedVersion, LogToken};
use uuid::Uuid;

/// Event store, projection daemon and operations CLI for event-sourced read
/// models on PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "rillflow", version, about)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the schema migrations, or revert the last N with --down.
    Migrate(MigrateArgs),
    /// Append and read events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Manage the local throwaway database used when no URL is given.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run the projection daemon and operate hot/cold clusters.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Archive streams to cold storage and operate the hot and cold tiers.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Run the main job end to end on a throwaway database: a three-node
    /// hot/cold cluster, appends, a crash failover, archiving, and a check
    /// that every event was projected exactly once.
    Demo(DemoArgs),
    /// Collect diagnostics for support.
    #[command(subcommand)]
    Diag(DiagCommand),
    /// Judge the health of hot/cold clusters from the database.
    #[command(subcommand)]
    Health(HealthCommand),
    /// Register and list tenants (conjoined, schema- or database-per-tenant).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A server to run on (a scratch database is created and dropped; the
    /// role needs CREATEDB). Without it, a local PostgreSQL is started.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Events to append.
    #[arg(long, default_value_t = 3000)]
    pub events: usize,
    /// Streams to spread them over.
    #[arg(long, default_value_t = 40)]
    pub streams: usize,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Where the database is. Without a URL, the local cluster under `.rillflow/`
/// is started (and migrated) on demand.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL; defaults to the local database under .rillflow/.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Act for this registered tenant (`rillflow tenants`): a schema tenant's
    /// own schema, a database tenant's own database, or a conjoined tenant's
    /// streams.
    #[arg(long, value_name = "T", env = "RILLFLOW_TENANT")]
    pub tenant: Option<TenantName>,
}

/// Where events are read, when not where they are written.
#[derive(Debug, Clone, Args)]
pub struct ReadDatabaseArgs {
    /// Read events from this hot standby of --database-url (a streaming
    /// replica of the same cluster); checkpoints, leases, read models and
    /// appends stay on --database-url [default: read there too].
    #[arg(
        long,
        env = "READ_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub read_database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Revert the last N applied migrations instead of applying. Refused,
    /// naming what would be lost, when they would drop tables or columns
    /// that hold data, unless --force is given too.
    #[arg(long, value_name = "N")]
    pub down: Option<usize>,
    /// With --down: revert even though data is dropped with the schema.
    #[arg(long, requires = "down")]
    pub force: bool,
    /// Only list migrations and whether each is applied.
    #[arg(long, conflicts_with = "down")]
    pub status: bool,
    /// The base schema and then every schema and database tenant's store.
    #[arg(long, conflicts_with_all = ["down", "tenant"])]
    pub all_tenants: bool,
    /// Output format of --status and of the summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Append one event to a stream, or load many from a file.
    Append(AppendArgs),
    /// Print a stream's events.
    Read(ReadArgs),
    /// Print events from the global log as they commit, one JSON object per line.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The stream's UUID.
    #[arg(long, value_name = "UUID", required_unless_present = "from_file")]
    pub stream: Option<Uuid>,
    /// Event type name (at most 256 bytes, no control characters).
    #[arg(
        long = "type",
        value_name = "T",
        value_parser = parse_event_type,
        required_unless_present = "from_file"
    )]
    pub event_type: Option<String>,
    /// Payload, a JSON value: inline, `@FILE` or `-` for stdin (up to 16 MiB).
    #[arg(
        long,
        value_name = "JSON|@FILE|-",
        value_parser = parse_data,
        required_unless_present = "from_file"
    )]
    pub data: Option<serde_json::Value>,
    /// N (exact version), `any`, `no-stream` or `exists`.
    #[arg(long, value_name = "N|any|no-stream|exists", default_value = "any")]
    pub expected_version: ExpectedVersion,
    /// Makes retries of this append write nothing; reusing it for another
    /// append is refused (at most 512 bytes, no control characters).
    #[arg(long, value_name = "K", value_parser = parse_idempotency_key)]
    pub idempotency_key: Option<String>,
    /// Headers, a JSON object: inline, `@FILE` or `-` (up to 1 MiB).
    #[arg(long, value_name = "JSON|@FILE|-", value_parser = parse_headers)]
    pub headers: Option<serde_json::Value>,
    /// Payload schema version.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub schema_version: i32,
    /// Event id (generated when absent).
    #[arg(long, value_name = "UUID")]
    pub event_id: Option<Uuid>,
    /// Causation id.
    #[arg(long, value_name = "UUID")]
    pub causation_id: Option<Uuid>,
    /// Correlation id.
    #[arg(long, value_name = "UUID")]
    pub correlation_id: Option<Uuid>,
    /// Load events from a JSON Lines file instead, one event per line:
    /// {"stream": UUID, "type": T, "data": JSON} and optionally
    /// expected_version, idempotency_key, headers, schema_version, event_id,
    /// causation_id, correlation_id. Every line is checked before anything
    /// is written; appends are merged into batches; progress on stderr, a
    /// JSON summary on stdout.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "stream", "event_type", "data", "expected_version", "idempotency_key",
            "headers", "schema_version", "event_id", "causation_id", "correlation_id",
        ]
    )]
    pub from_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub read: ReadDatabaseArgs,
    /// The stream's UUID.
    #[arg(long, value_name = "UUID")]
    pub stream: Uuid,
    /// First version to print.
    #[arg(long, value_name = "V", default_value_t = 1)]
    pub from: u64,
    /// Most events to print.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Include events in cold storage (and of archived streams).
    #[arg(long)]
    pub with_archived: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub read: ReadDatabaseArgs,
    /// Start after this event: a cursor token as printed in each line's
    /// `cursor` (checked: a token of an event a failover lost is refused,
    /// see --on-divergence), or a plain global position (0: from the
    /// beginning; not checked).
    #[arg(long, value_name = "TOKEN|POS", default_value = "0", value_parser = parse_resume_from)]
    pub from: ResumeFrom,
    /// What to do when the --from token's event is no longer in the log (a
    /// lossy failover lost it): `fail` (exit status 3, naming the last
    /// common position) or `rewind` (continue after that position; events
    /// already seen may come again, none is skipped).
    #[arg(long, value_enum, default_value_t = OnDivergence::Fail)]
    pub on_divergence: OnDivergence,
    /// Events fetched per query.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub batch_size: i64,
    /// Pause between polls once caught up, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Exit once caught up instead of following new events.
    #[arg(long)]
    pub once: bool,
    /// Include events in cold storage (and of archived streams).
    #[arg(long)]
    pub with_archived: bool,
}

/// Where `events tail --from` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeFrom {
    /// After the event at this position, whatever event holds it now.
    Position(i64),
    /// After this event, if the log still holds it.
    Token(LogToken),
}

/// `events tail --on-divergence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
// No doc comments on the variants: clap would switch the whole help of
// `events tail` to its long layout; the option's help says what they do.
pub enum OnDivergence {
    Fail,
    Rewind,
}

fn parse_resume_from(s: &str) -> Result<ResumeFrom, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(ResumeFrom::Position)
            .map_err(|_| "position out of range".to_owned());
    }
    s.parse()
        .map(ResumeFrom::Token)
        .map_err(|e: rillflow_core::TokenError| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create (first time) and start the local database; prints its URL.
    Start(DbArgs),
    /// Print the local database's URL.
    Url(DbArgs),
    /// Stop the local database.
    Stop(DbArgs),
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Directory holding the local cluster.
    #[arg(long, default_value = ".rillflow")]
    pub dir: PathBuf,
}

pub(crate) fn parse_bind(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| "expected HOST:PORT or a port".to_owned())
}

/// A bearer token for `/diag/bundle`: long enough not to be guessed, and
/// only characters an `Authorization` header carries as they are. The
/// message never repeats the value.
pub(crate) fn parse_diag_token(s: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    if !(16..=256).contains(&s.len()) || !s.chars().all(allowed) {
        return Err("expected 16 to 256 characters of letters, digits and -._~+/=".into());
    }
    Ok(s.to_owned())
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON ({e})"))
}

fn parse_data(arg: &str) -> Result<serde_json::Value, String> {
    parse_json(&input::text_of(arg, input::MAX_DATA)?)
}

fn parse_headers(arg: &str) -> Result<serde_json::Value, String> {
    match parse_json(&input::text_of(arg, input::MAX_HEADERS)?)? {
        v @ serde_json::Value::Object(_) => Ok(v),
        _ => Err("headers must be a JSON object".into()),
    }
}

fn parse_event_type(s: &str) -> Result<String, String> {
    rillflow_core::limits::event_type(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_idempotency_key(s: &str) -> Result<String, String> {
    rillflow_core::limits::idempotency_key(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// Prints help and version as clap does; any other parse error becomes one
/// line on stderr and exit status 2.
pub fn exit_on_parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let text = e.render().to_string();
            let line = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            // clap quotes the refused value: it may be megabytes long or
            // carry terminal escapes, so the line shows a short, escaped
            // stand-in instead.
            let line = match e.get(clap::error::ContextKind::InvalidValue) {
                Some(clap::error::ContextValue::String(value)) => {
                    line.replace(value.as_str(), &shown_value(value))
                }
                _ => line.to_owned(),
            };
            eprintln!("{}", line.trim_end());
            ExitCode::from(2)
        }
    }
}

/// A refused value as an error line may show it: control characters
/// escaped, and cut to its first 40 characters with its length when longer.
fn shown_value(value: &str) -> String {
    const SHOWN: usize = 40;
    let escaped: String = value
        .chars()
        .take(SHOWN)
        .flat_map(|c| {
            let text: String = if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            };
            text.chars().collect::<Vec<_>>()
        })
        .collect();
    if value.chars().count() > SHOWN {
        format!("{escaped}… ({} bytes)", value.len())
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_bind, parse_diag_token};

    #[test]
    fn a_bare_port_binds_loopback_only() {
        assert_eq!(parse_bind("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(
            parse_bind("0.0.0.0:9464").unwrap().to_string(),
            "0.0.0.0:9464"
        );
        assert!(parse_bind("localhost").is_err());
    }

    #[test]
    fn refused_values_are_shown_short_and_escaped() {
        use super::shown_value;
        assert_eq!(shown_value("Paid\u{1b}[2J"), "Paid\\u{1b}[2J");
        assert_eq!(
            shown_value(&"k".repeat(100_000)),
            format!("{}… (100000 bytes)", "k".repeat(40))
        );
        assert_eq!(shown_value("fine"), "fine");
    }

    #[test]
    fn diag_tokens_are_long_plain_and_never_echoed() {
        assert!(parse_diag_token("abcdefghijklmnop").is_ok());
        for bad in [
            "short",
            "has space in it 123",
            &"x".repeat(257),
            "quote\"quote\"quote!",
        ] {
            let err = parse_diag_token(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
    }
}
