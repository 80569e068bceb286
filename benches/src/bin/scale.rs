//! How rillflow's figures change as the log grows: appends, reads,
//! catch-up, operator commands, the daemon's endpoints and the mover at
//! each size of log.
//!
//! ```sh
//! cargo build --release -p rillflow -p rillflow-benches
//! DATABASE_URL=postgres://… cargo run --release -p rillflow-benches --bin scale -- \
//!     --sizes 100k,1m,10m [--out FILE] [--bin PATH] [--mover-secs 600]
//! ```
//!
//! Each size gets a database of its own (created from the migrated
//! template, dropped after), so sizes do not see each other's rows. The
//! log is loaded with real batch appends (`scale::load`), a tenth of it in
//! 4-event streams then marked archived, and vacuumed. What follows is
//! measured on it, in this order (docs/performance.md, "Scale (issue 25)"):
//! appends against a raw INSERT baseline, stream and global reads, a
//! projection catching up from the start under a running daemon, the
//! daemon's `GET /` and `GET /metrics` and six operator commands with that
//! projection caught up and again with a second projection the whole log
//! behind, `run-until-idle` over 1,000 new events, and the mover over the
//! archived streams (stopped after `--mover-secs`, 600 by default, and
//! then reported over what it moved). One markdown table goes to stdout (and to `--out`,
//! rewritten after every size so a long run keeps what it measured).
//!
//! Uses `DATABASE_URL` when set, else a local cluster with stock settings
//! (fsync and synchronous_commit on) under `target/rillflow-bench-pg`, as
//! the append benchmark does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::{ClusterSettings, LocalCluster};
use rillflow_benches::scale::report::Table;
use rillflow_benches::scale::size::one_size;
use sqlx::Connection;

struct Options {
    /// (column label, events)
    sizes: Vec<(String, u64)>,
    out: Option<PathBuf>,
    bin: PathBuf,
    /// The mover is stopped after this long.
    mover_budget: Duration,
}

fn parse_size(s: &str) -> Result<(String, u64)> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, factor) = match lower.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("size {s:?}: expected a number with an optional k or m"))?;
    Ok((s.trim().to_ascii_uppercase(), n * factor))
}

fn options() -> Result<Options> {
    let mut sizes = vec![parse_size("100k")?];
    let mut out = None;
    let mut bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rillflow");
    let mut mover_budget = Duration::from_secs(600);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                let v = args.next().context("--sizes needs a list, e.g. 100k,1m")?;
                sizes = v.split(',').map(parse_size).collect::<Result<_>>()?;
            }
            "--out" => out = Some(args.next().context("--out needs a file")?.into()),
            "--bin" => bin = args.next().context("--bin needs a path")?.into(),
            "--mover-secs" => {
                let v = args.next().context("--mover-secs needs a number")?;
                let secs: u64 = v
                    .parse()
                    .with_context(|| format!("--mover-secs: {v:?} is not a number"))?;
                mover_budget = Duration::from_secs(secs);
            }
            other => bail!(
                "unknown argument {other:?} (expected --sizes LIST, --out FILE, --bin PATH, --mover-secs S)"
            ),
        }
    }
    if sizes.is_empty() {
        bail!("--sizes is empty");
    }
    if !bin.is_file() {
        bail!(
            "{} not found; run `cargo build --release -p rillflow` first",
            bin.display()
        );
    }
    Ok(Options {
        sizes,
        out,
        bin,
        mover_budget,
    })
}

/// `DATABASE_URL`, else the durable local bench cluster (started here).
fn choose_server() -> Result<()> {
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("scale bench on DATABASE_URL");
        return Ok(());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rillflow-bench-pg");
    let cluster = LocalCluster::start(&dir, &ClusterSettings::for_users())
        .context("start the durable bench cluster")?;
    eprintln!(
        "scale bench on a durable local cluster in {} (stop it with `rillflow db stop --dir {}`)",
        dir.display(),
        dir.display()
    );
    // Before any other thread runs: the runtime is made after this.
    std::env::set_var("DATABASE_URL", cluster.url("postgres"));
    Ok(())
}

fn main() -> Result<()> {
    let opts = options()?;
    choose_server()?;
    tokio::runtime::Runtime::new()?.block_on(run(opts))
}

async fn run(opts: Options) -> Result<()> {
    let labels: Vec<String> = opts.sizes.iter().map(|(l, _)| l.clone()).collect();
    let mut table = Table::new(&labels);
    let header = header().await;
    for (column, (label, events)) in opts.sizes.iter().enumerate() {
        eprintln!("size {label} ({events} events)");
        let started = Instant::now();
        one_size(
            &opts.bin,
            opts.mover_budget,
            &mut table,
            column,
            label,
            *events,
        )
        .await?;
        eprintln!(
            "size {label} done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        if let Some(out) = &opts.out {
            std::fs::write(out, format!("{header}\n{}", table.markdown()))
                .with_context(|| format!("write {}", out.display()))?;
        }
    }
    println!("{header}\n{}", table.markdown());
    Ok(())
}

/// Date, commit and server, for the record.
async fn header() -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    let server = match sqlx::PgConnection::connect(&url).await {
        Ok(mut conn) => sqlx::query_scalar::<_, String>("SELECT version()")
            .fetch_one(&mut conn)
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!(
        "scale bench, {}, commit {commit}, {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        server.split(" on ").next().unwrap_or(&server)
    )
}
