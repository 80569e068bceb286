//! What the scale benchmark times as real `rillflow` processes: operator
//! commands, the daemon's HTTP endpoints, catch-up, and the mover.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use rillflow_testkit::{free_port, http_get, Process};
use sqlx::PgPool;

use crate::percentile;

/// The operator commands timed, by the label of their table row. `{name}`
/// stands for the projection the row is about.
pub const COMMANDS: [(&str, &[&str]); 6] = [
    ("projections status", &["projections", "status", "{name}"]),
    ("projections list", &["projections", "list"]),
    ("archive status", &["archive", "status"]),
    ("health score", &["health", "score"]),
    ("diag bundle", &["diag", "bundle"]),
    ("cluster-status", &["projections", "cluster-status"]),
];

/// The projection that is caught up, and the one left the whole log behind.
pub const CAUGHT: &str = "scale_caught";
pub const BEHIND: &str = "scale_behind";

/// A set-based counter per stream (one upsert per batch and type), as the
/// projections benchmark's fastest declared counter.
pub fn projection_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let upsert = format!(
        "INSERT INTO {name} AS c (stream_id, events, last_version)
SELECT stream_id, count(*), max(version) FROM batch GROUP BY stream_id
ON CONFLICT (stream_id) DO UPDATE SET events = c.events + EXCLUDED.events, last_version = EXCLUDED.last_version"
    );
    let text = format!(
        r#"[[projections]]
name = "{name}"
batch_size = 500
setup = "CREATE TABLE IF NOT EXISTS {name} (stream_id uuid PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)"
reset = "TRUNCATE {name}"

[projections.batch_handlers]
ItemAdded = """
{upsert}
"""
Noted = """
{upsert}
"""
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Runs the `rillflow` binary to the end; fails unless it exits 0.
pub fn run(bin: &Path, url: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {}", bin.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`rillflow {}` exited with {}: {}",
            args.join(" "),
            out.status,
            err.lines().last().unwrap_or("")
        );
    }
    Ok(out)
}

/// Best of three runs of a command, in ms; None (with the reason on
/// stderr) when it failed, so one broken command does not lose the rest.
pub fn best_of_3(bin: &Path, url: &str, args: &[&str]) -> Option<f64> {
    let mut best: Option<f64> = None;
    for _ in 0..3 {
        let started = Instant::now();
        match run(bin, url, args) {
            Ok(_) => {
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                best = Some(best.map_or(ms, |b| b.min(ms)));
            }
            Err(e) => {
                eprintln!("  {e:#}");
                return None;
            }
        }
    }
    best
}

/// Each of [`COMMANDS`] about `name`, best of three.
pub fn time_commands(bin: &Path, url: &str, name: &str) -> Vec<Option<f64>> {
    COMMANDS
        .iter()
        .map(|(_, args)| {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "{name}" { name } else { a })
                .collect();
            best_of_3(bin, url, &args)
        })
        .collect()
}

/// Best of three `GET path` on the daemon's health server, in ms.
pub async fn get_best_of_3(port: u16, path: &'static str) -> Option<f64> {
    let mut best: Option<f64> = None;
    for attempt in 0..3 {
        let started = Instant::now();
        let answer = tokio::task::spawn_blocking(move || http_get(port, path))
            .await
            .ok()
            .flatten();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match answer {
            Some((status, body)) if status.contains(" 200") || status.contains(" 503") => {
                // 503 is an answer too (health judging a lag), timed like
                // the rest, but said, with what it said.
                if attempt == 0 && !status.contains(" 200") {
                    let body: String = body.chars().take(200).collect();
                    eprintln!("  GET {path}: {status}: {body}");
                }
                best = Some(best.map_or(ms, |b| b.min(ms)));
            }
            other => {
                eprintln!("  GET {path}: {other:?}");
                return None;
            }
        }
    }
    best
}

/// The daemon: one hot/cold node at the default timing, running the
/// projections of `file`, serving health and metrics on a free port.
pub struct Daemon {
    pub process: Process,
    pub port: u16,
}

impl Daemon {
    pub async fn start(bin: &Path, url: &str, file: &Path, logs: &Path) -> Result<Daemon> {
        let port = free_port();
        let port_text = port.to_string();
        // The default timing: the daemon's statements time out after one
        // heartbeat, and the tests' fast 1 s heartbeat cut its health
        // queries off at 1 s on a large log, hiding how long they take.
        let mut args = vec![
            "projections",
            "run-loop",
            "--cluster-mode",
            "hotcold",
            "--cluster-name",
            "scale",
            "--node-name",
            "scale-node",
        ];
        let file_text = file.to_string_lossy().into_owned();
        args.extend_from_slice(&[
            "--projections",
            &file_text,
            "--health-bind",
            &port_text,
            "--min-cold-standbys",
            "0",
        ]);
        let process = Process::spawn(bin, "daemon", url, &args, logs);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = tokio::task::spawn_blocking(move || http_get(port, "/"))
                .await
                .ok()
                .flatten()
                .is_some();
            if up {
                return Ok(Daemon { process, port });
            }
            if Instant::now() > deadline {
                bail!(
                    "the daemon did not serve health within 60 s (log in {})",
                    logs.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(mut self) {
        self.process.signal("INT");
        if self.process.wait_exit(Duration::from_secs(30)).is_none() {
            eprintln!("  the daemon did not stop within 30 s of SIGINT; killed");
        }
    }
}

/// The projection's furthest checkpoint position.
pub async fn checkpoint(pool: &PgPool, name: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(position), 0)::bigint FROM rf_checkpoints WHERE projection = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await?)
}

/// Polls the checkpoint every 20 ms while a worker catches up: the rate
/// from its first move to its reaching `measure_to` (so start-up is left
/// out), then waits until it reaches `end`.
pub async fn catch_up(pool: &PgPool, name: &str, measure_to: i64, end: i64) -> Result<f64> {
    let limit = Duration::from_secs(120 + end as u64 / 10_000);
    let started = Instant::now();
    let mut first: Option<(Instant, i64)> = None;
    let mut rate = None;
    loop {
        let at = checkpoint(pool, name).await?;
        let now = Instant::now();
        if first.is_none() && at > 0 {
            first = Some((now, at));
        }
        if rate.is_none() && at >= measure_to {
            let (t0, p0) = first.expect("the checkpoint moved before it reached the target");
            let secs = now.duration_since(t0).as_secs_f64();
            rate = Some(if secs > 0.0 {
                (at - p0) as f64 / secs
            } else {
                f64::NAN
            });
        }
        if at >= end {
            return Ok(rate.expect("measured on the way"));
        }
        if started.elapsed() > limit {
            bail!("{name} reached {at} of {end} in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the mover reported.
pub struct MoveFigures {
    pub moved: u64,
    pub batches: u64,
    /// Events per second over the whole run (or until it was stopped).
    pub overall: f64,
    /// The second batch: the first one timed.
    pub first_batch: f64,
    pub last_batch: f64,
    /// The median and the lowest rate of the timed batches.
    pub median_batch: f64,
    pub slowest_batch: f64,
    /// Stopped at the time budget before it had moved everything.
    pub stopped: bool,
}

/// `rillflow archive move` over every archived event, stopped (SIGKILL:
/// the batch in flight rolls back) after `budget`, so that a mover that
/// slows down as the log grows cannot hold the whole run. Per-batch rates
/// come from the timestamps of its "archive move batch" log lines, each
/// batch timed from the batch line before it. The command logs nothing
/// before its first batch, so the first batch timed is the second one.
pub fn mover(bin: &Path, url: &str, budget: Duration, log: &Path) -> Result<MoveFigures> {
    let before = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let args = [
        "--log-format",
        "json",
        "archive",
        "move",
        "--before",
        &before,
        "--output",
        "json",
    ];
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let (status, stopped) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if started.elapsed() >= budget {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = started.elapsed().as_secs_f64();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if let Some(status) = status.filter(|s| !s.success()) {
        bail!(
            "`rillflow {}` exited with {status}: {}",
            args.join(" "),
            stderr.lines().last().unwrap_or("")
        );
    }

    // The batch lines only: other lines (sqlx's slow-statement warnings)
    // fall inside a batch and must not split it.
    let batch_lines: Vec<BatchLine> = stderr.lines().filter_map(batch_line).collect();
    let mut rates = Vec::new();
    for w in batch_lines.windows(2) {
        let secs = (w[1].at - w[0].at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        if secs > 0.0 {
            rates.push(w[1].moved as f64 / secs);
        }
    }
    if rates.is_empty() {
        bail!("fewer than two \"archive move batch\" lines in the mover's log ({wall:.0} s)");
    }
    // Kept for a closer look at how batch times spread.
    let _ = std::fs::write(log, &stderr);
    let mut sorted = rates.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let (moved, batches, seconds) = if stopped {
        let moved = batch_lines.last().map_or(0, |b| b.total);
        (moved, batch_lines.len() as u64, wall)
    } else {
        let summary: serde_json::Value =
            serde_json::from_str(&stdout).context("the mover's JSON summary")?;
        (
            summary["moved"].as_u64().context("moved")?,
            summary["batches"].as_u64().context("batches")?,
            summary["seconds"].as_f64().unwrap_or(wall),
        )
    };
    Ok(MoveFigures {
        moved,
        batches,
        overall: moved as f64 / seconds,
        first_batch: rates[0],
        last_batch: *rates.last().expect("not empty"),
        median_batch: percentile(&sorted, 0.5),
        slowest_batch: sorted[0],
        stopped,
    })
}

/// One "archive move batch" line of the mover's JSON log.
struct BatchLine {
    at: DateTime<Utc>,
    /// Events the batch moved.
    moved: u64,
    /// Events moved so far in the run.
    total: u64,
}

fn batch_line(line: &str) -> Option<BatchLine> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let f = &v["fields"];
    if f["message"].as_str() != Some("archive move batch") {
        return None;
    }
    Some(BatchLine {
        at: v["timestamp"].as_str()?.parse().ok()?,
        moved: f["moved"].as_u64()?,
        total: f["total"].as_u64()?,
    })
}
