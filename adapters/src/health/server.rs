//! A small HTTP server for `GET /` (JSON health) and `GET /metrics`.
//!
//! Two read-only endpoints do not justify an HTTP framework: requests are
//! read up to the end of their head, answered, and the connection closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::proto::MetricFamily;
use rillflow_core::lease::health::ClusterHealth;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{metrics, report};
use crate::archive::ArchiveStats;
use crate::projection::ProjectionStatus;

/// Where the served figures come from.
#[async_trait]
pub trait HealthSource: Send + Sync + 'static {
    /// Every cluster's health, evaluated from the database's rows now.
    async fn clusters(&self) -> Result<Vec<ClusterHealth>, String>;
    /// Every projection's checkpoints and lag, read from the database now.
    async fn projections(&self) -> Result<Vec<ProjectionStatus>, String> {
        Ok(Vec::new())
    }
    /// The archive counters, read from the database now (`None` where the
    /// source has no database to ask).
    async fn archive(&self) -> Result<Option<ArchiveStats>, String> {
        Ok(None)
    }
    /// Lag (in events) beyond which a projection makes the report unhealthy.
    fn max_lag(&self) -> i64 {
        i64::MAX
    }
    /// What this process knows about itself (name, role, epoch).
    fn local(&self) -> Value;
    /// Metric families only this process knows (batch timings).
    fn local_metrics(&self) -> Vec<MetricFamily> {
        Vec::new()
    }
    /// The tenant this process serves, if scoped to one: every metric then
    /// carries it as the `tenant` label.
    fn tenant(&self) -> Option<String> {
        None
    }
    /// The diagnostics bundle (see [`super::diag`]), when the source has a
    /// database to build it from.
    async fn diag(&self) -> Option<Value> {
        None
    }
}

/// Both database views, or the first error.
async fn views(
    source: &dyn HealthSource,
) -> Result<(Vec<ClusterHealth>, Vec<ProjectionStatus>), String> {
    let clusters = source.clusters().await?;
    let projections = source.projections().await?;
    Ok((clusters, projections))
}

type MetricViews = (
    Vec<ClusterHealth>,
    Vec<ProjectionStatus>,
    Option<ArchiveStats>,
);

/// The views `/metrics` needs: both health views and the archive counters.
async fn metric_views(source: &dyn HealthSource) -> Result<MetricViews, String> {
    let (clusters, projections) = views(source).await?;
    Ok((clusters, projections, source.archive().await?))
}

/// Binds `addr` and serves until the task is dropped. Returns the bound
/// address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    source: Arc<dyn HealthSource>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let source = source.clone();
            tokio::spawn(async move {
                // A client that never finishes its request must not pin a task.
                let _ = tokio::time::timeout(Duration::from_secs(10), answer(stream, source)).await;
            });
        }
    });
    Ok((bound, task))
}

async fn answer(mut stream: TcpStream, source: Arc<dyn HealthSource>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split_whitespace();
    let method = parts.next().unwrap_or_default();
    // Scrapers may add a query string; it selects nothing here.
    let path = parts
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET", "/") | ("GET", "/health") => {
            let (status, doc) = match views(source.as_ref()).await {
                Ok((clusters, projections)) => {
                    let doc =
                        report::document(source.local(), &clusters, &projections, source.max_lag());
                    let status = if doc["status"] == "unhealthy" {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    (status, doc)
                }
                Err(e) => (
                    "503 Service Unavailable",
                    report::failure(source.local(), &e),
                ),
            };
            (status, "application/json", doc.to_string())
        }
        ("GET", "/metrics") => match metric_views(source.as_ref()).await {
            Ok((clusters, projections, archive)) => (
                "200 OK",
                "text/plain; version=0.0.4",
                metrics::render(
                    &clusters,
                    &projections,
                    archive.as_ref(),
                    source.local_metrics(),
                    source.tenant().as_deref(),
                ),
            ),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain",
                format!("database unavailable: {e}\n"),
            ),
        },
        ("GET", "/diag/bundle") => match source.diag().await {
            Some(doc) => ("200 OK", "application/json", doc.to_string()),
            None => (
                "404 Not Found",
                "text/plain",
                "no diagnostics here\n".to_owned(),
            ),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
