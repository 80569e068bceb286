//! `rillflow events append --from-file FILE`: bulk loading through the
//! coalescing writer (`EventStore::writer`), with progress on stderr.
//!
//! The file is read twice: every line is checked before anything is
//! written, so a malformed file costs one error line and changes nothing.
//! Consecutive lines of one stream with no key and any version go as one
//! append; lines with an expected version or a key go alone, judged alone.
//! A refused append is reported with its line numbers and the load goes on;
//! the exit status is then 1. Lines with idempotency keys (or event ids)
//! make a load safe to run again after an interruption.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::{AppendOptions, AppendRequest, AppendWriter, StoreError, WriterConfig};
use rillflow_adapters::{AppendResult, EventStore};
use rillflow_core::tenant::{TenantName, TenantOperation};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::load_line::LoadLine;
use crate::cli::DatabaseArgs;
use crate::commands::database;

/// Longest line: a payload (`--data`'s limit) with room for the rest.
const MAX_LINE: u64 = 17 << 20;
/// Most events merged into one append from consecutive lines.
const GROUP_EVENTS: usize = 500;
/// Appends queued or being written at once.
const IN_FLIGHT: usize = 4096;

pub async fn run(path: &Path, db: &DatabaseArgs) -> Result<()> {
    let total = check(path)?;
    let scoped = database::open(db, TenantOperation::Events).await?;
    let tenant = scoped.conjoined().cloned();
    let store = EventStore::new(scoped.pool);
    let mut load = Load::new(store.writer(WriterConfig::default()), tenant, total);
    let progress = load.progress();
    let mut group: Option<Group> = None;
    for (n, line) in Lines::open(path)? {
        let line = line?;
        let Some(parsed) = parse(&line) else {
            continue;
        };
        let parsed = parsed.map_err(|e| {
            anyhow::anyhow!(
                "{}: line {n} changed since it was checked: {e}",
                path.display()
            )
        })?;
        match &mut group {
            Some(g) if g.events.len() < GROUP_EVENTS && parsed.joins(&g.head) => {
                g.last_line = n;
                g.events.push(parsed.event);
            }
            _ => {
                if let Some(done) = group.take() {
                    load.send(done).await?;
                }
                group = Some(Group::new(n, parsed));
            }
        }
    }
    if let Some(done) = group.take() {
        load.send(done).await?;
    }
    let summary = load.finish().await;
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    println!(
        "{}",
        serde_json::json!({
            "appends": summary.appends,
            "events_written": summary.events_written,
            "replayed": summary.replayed,
            "refused": summary.refused,
            "seconds": summary.seconds,
            "events_per_second": summary.events_per_second,
        })
    );
    if summary.refused > 0 {
        bail!(
            "{} of {} appends were refused (see the lines above); the others were written",
            summary.refused,
            summary.appends
        );
    }
    Ok(())
}

/// Checks every line; the number of events. Blank lines are skipped.
fn check(path: &Path) -> Result<u64> {
    let mut events = 0;
    for (n, line) in Lines::open(path)? {
        if let Some(Err(e)) = parse(&line?) {
            bail!("{}: line {n}: {e}; nothing was written", path.display());
        }
        events += 1;
    }
    if events == 0 {
        bail!(
            "{}: no events in the file; nothing was written",
            path.display()
        );
    }
    Ok(events)
}

fn parse(line: &str) -> Option<Result<LoadLine, String>> {
    let line = line.trim();
    (!line.is_empty()).then(|| LoadLine::parse(line))
}

/// The file's lines, numbered from 1, each at most [`MAX_LINE`] bytes.
struct Lines {
    reader: BufReader<std::fs::File>,
    number: usize,
    path: String,
}

impl Lines {
    fn open(path: &Path) -> Result<Self> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Lines {
            reader: BufReader::with_capacity(1 << 20, file),
            number: 0,
            path: path.display().to_string(),
        })
    }
}

impl Iterator for Lines {
    type Item = (usize, Result<String>);

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        self.number += 1;
        let n = self.number;
        let read = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf);
        match read {
            Ok(0) => None,
            Err(e) => Some((n, Err(anyhow::anyhow!("cannot read {}: {e}", self.path)))),
            Ok(_) if buf.len() as u64 > MAX_LINE => Some((
                n,
                Err(anyhow::anyhow!(
                    "{}: line {n} is longer than {} MiB; nothing more was read",
                    self.path,
                    MAX_LINE >> 20
                )),
            )),
            Ok(_) => Some((
                n,
                String::from_utf8(buf)
                    .map_err(|_| anyhow::anyhow!("{}: line {n} is not UTF-8", self.path)),
            )),
        }
    }
}

/// Consecutive lines that go as one append.
struct Group {
    first_line: usize,
    last_line: usize,
    head: LoadLine,
    events: Vec<rillflow_adapters::NewEvent>,
}

impl Group {
    fn new(n: usize, line: LoadLine) -> Self {
        Group {
            first_line: n,
            last_line: n,
            events: vec![line.event.clone()],
            head: line,
        }
    }

    fn lines(&self) -> String {
        if self.first_line == self.last_line {
            format!("line {}", self.first_line)
        } else {
            format!("lines {}-{}", self.first_line, self.last_line)
        }
    }
}

/// What a load did, printed as JSON on stdout.
#[derive(Debug)]
struct Summary {
    appends: u64,
    events_written: u64,
    replayed: u64,
    refused: u64,
    seconds: f64,
    events_per_second: f64,
}

/// The appends in flight, and what came of those done.
struct Load {
    writer: AppendWriter,
    tenant: Option<TenantName>,
    in_flight: JoinSet<(String, Uuid, Result<AppendResult, StoreError>)>,
    /// Streams with an append in flight, and how many: an append waits for
    /// the ones before it on its stream, so a stream's lines keep their order.
    busy: HashMap<Uuid, usize>,
    done_events: Arc<AtomicU64>,
    total: u64,
    started: Instant,
    summary: Summary,
}

impl Load {
    fn new(writer: AppendWriter, tenant: Option<TenantName>, total: u64) -> Self {
        Load {
            writer,
            tenant,
            in_flight: JoinSet::new(),
            busy: HashMap::new(),
            done_events: Arc::new(AtomicU64::new(0)),
            total,
            started: Instant::now(),
            summary: Summary {
                appends: 0,
                events_written: 0,
                replayed: 0,
                refused: 0,
                seconds: 0.0,
                events_per_second: 0.0,
            },
        }
    }

    /// Prints progress on stderr: in place on a terminal, else every 10 s.
    fn progress(&self) -> tokio::task::JoinHandle<()> {
        let (done, total, started) = (self.done_events.clone(), self.total, self.started);
        let terminal = std::io::stderr().is_terminal();
        let every = Duration::from_millis(if terminal { 250 } else { 10_000 });
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let n = done.load(Ordering::Relaxed);
                let rate = n as f64 / started.elapsed().as_secs_f64();
                let line = format!(
                    "{n} of {total} events ({:.0} %), {rate:.0} events/s",
                    n as f64 * 100.0 / total as f64
                );
                if terminal {
                    eprint!("\r{line}   ");
                } else {
                    eprintln!("{line}");
                }
            }
        })
    }

    async fn send(&mut self, group: Group) -> Result<()> {
        while self.in_flight.len() >= IN_FLIGHT {
            self.settle_one().await;
        }
        let stream = group.head.stream;
        while self.busy.contains_key(&stream) {
            self.settle_one().await;
        }
        let lines = group.lines();
        let request = AppendRequest {
            stream,
            expected: group.head.expected,
            options: AppendOptions {
                idempotency_key: group.head.idempotency_key,
                tenant: self.tenant.clone(),
            },
            events: group.events,
        };
        let queued = self
            .writer
            .enqueue(request)
            .await
            .map_err(|e| anyhow::anyhow!("{lines}: {e}"))?;
        *self.busy.entry(stream).or_default() += 1;
        self.in_flight
            .spawn(async move { (lines, stream, queued.outcome().await) });
        Ok(())
    }

    /// Waits for one append in flight and counts it.
    async fn settle_one(&mut self) {
        let Some(joined) = self.in_flight.join_next().await else {
            return;
        };
        let (lines, stream, outcome) = joined.expect("an append task does not panic");
        if let Some(n) = self.busy.get_mut(&stream) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(&stream);
            }
        }
        self.summary.appends += 1;
        match outcome {
            Ok(r) if r.replayed => {
                self.summary.replayed += 1;
                self.done_events
                    .fetch_add(r.positions.len() as u64, Ordering::Relaxed);
            }
            Ok(r) => {
                let n = r.last_version - r.first_version + 1;
                self.summary.events_written += n;
                self.done_events.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                self.summary.refused += 1;
                eprintln!("{lines}: {e}");
            }
        }
    }

    async fn finish(mut self) -> Summary {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        self.summary.seconds = (seconds * 1000.0).round() / 1000.0;
        self.summary.events_per_second = (self.summary.events_written as f64 / seconds).round();
        self.summary
    }
}
