//! The health server over real TCP, with a source whose queries hang or
//! fail: answers must come from the snapshot, at once.

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::server::{serve, DiagAccess, HealthSource};
use super::snapshot::RefreshConfig;
use crate::archive::ArchiveStats;
use crate::projection::{OwnershipStatus, PartitionStatus, ProjectionStatus};
use rillflow_core::lease::health::ClusterHealth;

const ANSWERS: u8 = 0;
const HANGS: u8 = 1;
const FAILS: u8 = 2;

/// A database whose projection query answers, hangs for 30 s, or fails, as
/// the test says; clusters and archive answer unless `all` is set too.
struct Source {
    projections: AtomicU8,
    all: AtomicU8,
    lag: AtomicI64,
}

impl Source {
    fn new(projections: u8, all: u8) -> Arc<Self> {
        Arc::new(Source {
            projections: AtomicU8::new(projections),
            all: AtomicU8::new(all),
            lag: AtomicI64::new(3),
        })
    }
}

async fn behave<T>(mode: u8, value: T) -> Result<T, String> {
    match mode {
        ANSWERS => Ok(value),
        HANGS => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(value)
        }
        _ => Err("canceling statement due to statement timeout".into()),
    }
}

#[async_trait]
impl HealthSource for Source {
    async fn clusters(&self) -> Result<Vec<ClusterHealth>, String> {
        behave(self.all.load(Ordering::SeqCst), Vec::new()).await
    }
    async fn projections(&self) -> Result<Vec<ProjectionStatus>, String> {
        let lag = self.lag.load(Ordering::SeqCst);
        behave(self.projections.load(Ordering::SeqCst), vec![lagging(lag)]).await
    }
    async fn archive(&self) -> Result<Option<ArchiveStats>, String> {
        behave(
            self.all.load(Ordering::SeqCst),
            Some(ArchiveStats::default()),
        )
        .await
    }
    fn max_lag(&self) -> i64 {
        5
    }
    fn local(&self) -> Value {
        json!({ "name": "t" })
    }
}

fn lagging(lag: i64) -> ProjectionStatus {
    ProjectionStatus {
        name: "p".into(),
        paused: false,
        stopped_reason: None,
        total_partitions: 1,
        dead_letters: 0,
        active_version: 1,
        building_version: None,
        partitions: vec![PartitionStatus {
            partition: 0,
            tx_id: 1,
            position: 1,
            lag,
            lag_exact: true,
            processed_total: 1,
            errors_total: 0,
            dead_lettered_total: 0,
            last_processed_at: None,
            last_error: None,
            last_error_at: None,
            owner_node: None,
            owner_epoch: None,
            retry_position: None,
            retry_attempts: 0,
        }],
        building: Vec::new(),
        ownership: OwnershipStatus::default(),
    }
}

/// Fast refreshes, a query timeout far below the source's 30 s hang, and a
/// staleness bound loose enough that a busy test machine does not mark the
/// answering views stale.
fn config() -> RefreshConfig {
    RefreshConfig {
        interval: Duration::from_millis(50),
        query_timeout: Duration::from_millis(200),
        stale_after: Duration::from_secs(2),
    }
}

/// A readiness probe's budget: every answer must come well within it.
const PROBE: Duration = Duration::from_secs(1);

async fn get(port: u16, path: &str) -> (String, String) {
    let asked = Instant::now();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(
        asked.elapsed() < PROBE,
        "GET {path} took {:?}",
        asked.elapsed()
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Polls `GET /` until `ready` accepts the document; fails after 10 s.
async fn health_until(port: u16, ready: impl Fn(&str, &Value) -> bool) -> (String, Value) {
    let start = Instant::now();
    loop {
        let (line, body) = get(port, "/").await;
        let doc: Value = serde_json::from_str(&body).unwrap();
        if ready(&line, &doc) {
            return (line, doc);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{line} {doc}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(source: Arc<Source>) -> u16 {
    let (bound, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        source,
        DiagAccess::Off,
        config(),
    )
    .await
    .unwrap();
    bound.port()
}

#[tokio::test]
async fn health_serves_the_last_values_while_the_lag_query_hangs_and_recovers() {
    let source = Source::new(ANSWERS, ANSWERS);
    let port = start(source.clone()).await;
    let (line, doc) = health_until(port, |l, _| l.contains("200")).await;
    assert_eq!(
        doc["projections"]["projections"][0]["lag"], 3,
        "{line} {doc}"
    );
    assert_eq!(doc["freshness"]["projections"]["stale"], false, "{doc}");

    source.projections.store(HANGS, Ordering::SeqCst);
    let (line, doc) =
        health_until(port, |_, d| d["freshness"]["projections"]["stale"] == true).await;
    assert!(
        line.contains("200"),
        "a stale view alone fails nothing: {line}"
    );
    assert_eq!(doc["status"], "ok", "{doc}");
    assert_eq!(doc["projections"]["projections"][0]["lag"], 3, "{doc}");
    assert_eq!(
        doc["freshness"]["projections"]["error"], "no answer within 200 ms",
        "{doc}"
    );
    assert_eq!(doc["freshness"]["clusters"]["stale"], false, "{doc}");

    let (line, text) = get(port, "/metrics").await;
    assert!(line.contains("200"), "{line}");
    assert!(
        text.contains(r#"rillflow_projection_lag_events{partition="0",projection="p"} 3"#),
        "{text}"
    );
    assert!(text.contains("archive_events_hot_bytes"), "{text}");
    for family in [
        "# TYPE rillflow_health_view_age_seconds gauge",
        "# TYPE rillflow_health_refresh_failures_total counter",
    ] {
        assert_eq!(text.matches(family).count(), 1, "{family}:\n{text}");
    }
    for view in ["clusters", "projections", "archive"] {
        let series = format!("rillflow_health_view_age_seconds{{view=\"{view}\"}} ");
        assert!(text.contains(&series), "{series}:\n{text}");
    }
    let failures = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"rillflow_health_refresh_failures_total{view="projections"} "#)
        })
        .expect("a failure count for the projections view");
    assert!(failures.parse::<u64>().unwrap() >= 1, "{text}");

    source.projections.store(ANSWERS, Ordering::SeqCst);
    let (_, doc) = health_until(port, |_, d| d["freshness"]["projections"]["stale"] == false).await;
    assert_eq!(
        doc["freshness"]["projections"]["error"],
        Value::Null,
        "{doc}"
    );
}

#[tokio::test]
async fn health_is_an_error_until_both_views_were_read_once() {
    let source = Source::new(FAILS, HANGS);
    let port = start(source.clone()).await;
    let (line, doc) = get(port, "/").await;
    assert!(line.contains("503"), "{line}");
    assert_eq!(doc_of(&doc)["status"], "error");

    // Without a value of any view, /metrics carries only the freshness.
    let (line, text) = get(port, "/metrics").await;
    assert!(line.contains("200"), "{line}");
    assert!(
        text.contains(r#"rillflow_health_view_age_seconds{view="clusters"}"#),
        "{text}"
    );
    for absent in ["daemon_", "rillflow_projection_", "archive_"] {
        assert!(!text.contains(absent), "{absent}:\n{text}");
    }

    // The cluster view alone is not enough to judge: still an error, now
    // naming the view that keeps failing.
    source.all.store(ANSWERS, Ordering::SeqCst);
    let (line, doc) = health_until(port, |_, d| d["freshness"]["clusters"]["stale"] == false).await;
    assert!(line.contains("503"), "{line}");
    assert_eq!(doc["status"], "error");
    assert_eq!(
        doc["error"], "projections: canceling statement due to statement timeout",
        "{doc}"
    );

    // Once both were read, the verdict comes from the values: a lag
    // beyond max_lag (5) is unhealthy and answers 503, as before.
    source.lag.store(8, Ordering::SeqCst);
    source.projections.store(ANSWERS, Ordering::SeqCst);
    let (line, doc) = health_until(port, |_, d| d["status"] != "error").await;
    assert!(line.contains("503"), "{line}");
    assert_eq!(doc["status"], "unhealthy", "{doc}");
    assert_eq!(doc["projections"]["projections"][0]["lag"], 8, "{doc}");
}

fn doc_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

/// A source whose diagnostics bundle takes 30 s to build.
struct SlowBundle;

#[async_trait]
impl HealthSource for SlowBundle {
    async fn clusters(&self) -> Result<Vec<ClusterHealth>, String> {
        Ok(Vec::new())
    }
    fn local(&self) -> Value {
        json!({})
    }
    async fn diag(&self) -> Option<Value> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Some(json!({}))
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_diag_bundle_answers_503_before_the_request_timeout() {
    let (bound, _task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(SlowBundle),
        DiagAccess::Token("t0k3n".into()),
        RefreshConfig::default(),
    )
    .await
    .unwrap();
    let asked = Instant::now();
    let mut s = tokio::net::TcpStream::connect(bound).await.unwrap();
    s.write_all(b"GET /diag/bundle HTTP/1.1\r\nAuthorization: Bearer t0k3n\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    // Paused time: the clock jumps from timer to timer, so these are the
    // server's own bounds, not this machine's speed.
    let took = asked.elapsed();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("not built within 8 s"), "{text}");
    assert!(
        took >= Duration::from_secs(8) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
