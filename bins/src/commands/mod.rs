//! One module per subcommand; this file only routes.

mod archive;
mod completions;
mod database;
mod db;
mod demo;
mod diag;
mod events;
mod health;
mod log_writer;
mod migrate;
mod projections;
mod read_source;
mod signals;
mod tenants;

use anyhow::Result;
use rillflow_adapters::secrets::redact_secrets;

use crate::cli::{
    ArchiveCommand, Cli, Command, DbCommand, DiagCommand, EventsCommand, HandlerRoleCommand,
    HealthCommand, LogFormat, ProjectionsCommand, TenantsCommand,
};

/// A command that ran but wants a particular exit status (not 1, which
/// means it failed), with the line to print.
#[derive(Debug)]
pub struct Status {
    /// The exit status.
    pub code: u8,
    message: String,
}

impl Status {
    pub(crate) fn new(code: u8, message: String) -> Self {
        Status { code, message }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

/// Logs go to stderr so stdout stays machine-readable. `RUST_LOG` overrides
/// the default level: `info` for the daemon, whose joins, takeovers and
/// handovers operators need to see, `warn` for the one-shot commands.
pub fn init_tracing(cli: &Cli) {
    let format = cli.log_format;
    let default = match cli.command {
        Command::Projections(ProjectionsCommand::RunLoop(_)) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_writer::RedactedStderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The command's final error line: [`one_line`], naming the database
/// tenant the command acted for.
pub fn error_line(err: &anyhow::Error) -> String {
    database::naming_database_tenant(one_line(err))
}

/// The error as one line: each cause is appended once, skipping causes whose
/// text the line already carries (sqlx repeats its source in its message).
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    // Causes may quote a connection string (sqlx's URL errors do).
    redact_secrets(&line.replace('\n', " "))
}

pub fn run(cli: Cli) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Migrate(args) => migrate::run(args).await,
            Command::Events(EventsCommand::Append(args)) => events::append::run(args).await,
            Command::Events(EventsCommand::Read(args)) => events::read::run(args).await,
            Command::Events(EventsCommand::Tail(args)) => events::tail::run(args).await,
            Command::Db(DbCommand::Start(args)) => db::start::run(args).await,
            Command::Db(DbCommand::Url(args)) => db::url::run(args),
            Command::Db(DbCommand::Stop(args)) => db::stop::run(args),
            Command::Projections(ProjectionsCommand::RunLoop(args)) => {
                projections::run_loop::run(args).await
            }
            Command::Projections(ProjectionsCommand::ClusterStatus(args)) => {
                projections::cluster_status::run(args).await
            }
            Command::Projections(ProjectionsCommand::Promote(args)) => {
                projections::promote::run(args).await
            }
            Command::Projections(ProjectionsCommand::Demote(args)) => {
                projections::demote::run(args).await
            }
            Command::Projections(ProjectionsCommand::List(args)) => {
                projections::list::run(args).await
            }
            Command::Projections(ProjectionsCommand::Status(args)) => {
                projections::status::run(args).await
            }
            Command::Projections(ProjectionsCommand::Pause(args)) => {
                projections::pause::run(args).await
            }
            Command::Projections(ProjectionsCommand::Resume(args)) => {
                projections::resume::run(args).await
            }
            Command::Projections(ProjectionsCommand::ResetCheckpoint(args)) => {
                projections::reset_checkpoint::run(args).await
            }
            Command::Projections(ProjectionsCommand::Rebuild(args)) => {
                projections::rebuild::run(args).await
            }
            Command::Projections(ProjectionsCommand::RunOnce(args)) => {
                projections::run_once::run(args, false).await
            }
            Command::Projections(ProjectionsCommand::RunUntilIdle(args)) => {
                projections::run_once::run(args, true).await
            }
            Command::Projections(ProjectionsCommand::DlqList(args)) => {
                projections::dlq_list::run(args).await
            }
            Command::Projections(ProjectionsCommand::DlqRequeue(args)) => {
                projections::dlq_requeue::run(args).await
            }
            Command::Projections(ProjectionsCommand::DlqDelete(args)) => {
                projections::dlq_delete::run(args).await
            }
            Command::Projections(ProjectionsCommand::Repartition(args)) => {
                projections::repartition::run(args).await
            }
            Command::Projections(ProjectionsCommand::Owners(args)) => {
                projections::owners::run(args).await
            }
            Command::Projections(ProjectionsCommand::Metrics(args)) => {
                projections::metrics::run(args).await
            }
            Command::Projections(ProjectionsCommand::HandlerRole(HandlerRoleCommand::Create(
                args,
            ))) => projections::handler_role_create::run(args).await,
            Command::Projections(ProjectionsCommand::HandlerRole(HandlerRoleCommand::List(
                args,
            ))) => projections::handler_role_list::run(args).await,
            Command::Completions(args) => completions::run(args),
            Command::Tenants(TenantsCommand::Add(args)) => tenants::add::run(args).await,
            Command::Tenants(TenantsCommand::List(args)) => tenants::list::run(args).await,
            Command::Tenants(TenantsCommand::Remove(args)) => tenants::remove::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Diag(DiagCommand::Bundle(args)) => diag::bundle::run(args).await,
            Command::Health(HealthCommand::Score(args)) => {
                let limit = args.fail_below;
                if health::score::run(args).await? {
                    let limit = limit.unwrap_or_default();
                    return Err(Status::new(
                        health::score::BELOW_THRESHOLD,
                        format!("a cluster scores below {limit}"),
                    )
                    .into());
                }
                Ok(())
            }
            Command::Archive(ArchiveCommand::Status(args)) => archive::status::run(args).await,
            Command::Archive(ArchiveCommand::Mark(args)) => archive::mark::run(args).await,
            Command::Archive(ArchiveCommand::Reactivate(args)) => {
                archive::reactivate::run(args).await
            }
            Command::Archive(ArchiveCommand::Move(args)) => archive::move_events::run(args).await,
            Command::Archive(ArchiveCommand::Redirect(args)) => archive::redirect::run(args).await,
            Command::Archive(ArchiveCommand::Backend(args)) => archive::backend::run(args).await,
            Command::Archive(ArchiveCommand::Partition(args)) => {
                archive::partition::run(args).await
            }
        }
    })
}
