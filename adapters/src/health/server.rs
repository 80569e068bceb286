//! A small HTTP server for `GET /` (JSON health), `GET /metrics` and, with
//! a token, `GET /diag/bundle`.
//!
//! Two read-only endpoints do not justify an HTTP framework: requests are
//! read up to the end of their head, answered, and the connection closed.
//! Health and metrics are answered from a [`HealthSnapshot`] refreshed in
//! the background, so a slow database never slows a probe down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus::proto::MetricFamily;
use rillflow_core::lease::health::ClusterHealth;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::replies;
use super::snapshot::{HealthSnapshot, RefreshConfig};
use crate::archive::ArchiveStats;
use crate::projection::ProjectionStatus;

/// Where the served figures come from. The database views are read by the
/// refresher ([`HealthSnapshot`]), never on a request; `local`,
/// `local_metrics` and `tenant` are asked per request and must not wait.
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

/// Who may fetch `/diag/bundle` over HTTP. The bundle shows the topology,
/// settings and recent errors of the whole store; health and metrics do
/// not, so only the bundle is guarded.
#[derive(Debug, Clone, Default)]
pub enum DiagAccess {
    /// Not served over HTTP (`rillflow diag bundle` still builds it).
    #[default]
    Off,
    /// Served to requests carrying `Authorization: Bearer <token>`.
    Token(Arc<str>),
}

/// A request is answered, or its connection closed, within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The diagnostics bundle still queries the database on request; it gets
/// this long, so an answer (503) goes out before [`REQUEST_TIMEOUT`]
/// closes the connection without one.
const DIAG_TIMEOUT: Duration = Duration::from_secs(8);

/// Binds `addr`, starts refreshing the views from `source` as `refresh`
/// says, and serves until the task is aborted (the refresh tasks stop with
/// it). Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    source: Arc<dyn HealthSource>,
    diag: DiagAccess,
    refresh: RefreshConfig,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let snapshot = HealthSnapshot::start(source.clone(), refresh);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let served = Served {
                source: source.clone(),
                snapshot: snapshot.clone(),
                diag: diag.clone(),
            };
            tokio::spawn(async move {
                // A client that never finishes its request must not pin a task.
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, served)).await;
            });
        }
    });
    Ok((bound, task))
}

/// What one connection answers from.
struct Served {
    source: Arc<dyn HealthSource>,
    snapshot: HealthSnapshot,
    diag: DiagAccess,
}

/// Whether a request whose head is `head` may have the bundle.
fn admitted(head: &str, diag: &DiagAccess) -> Result<(), &'static str> {
    let DiagAccess::Token(token) = diag else {
        return Err("off");
    };
    let presented = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim())
            .and_then(|v| v.strip_prefix("Bearer "))
    });
    match presented {
        Some(p) if same_secret(p.trim().as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err("unauthorized"),
    }
}

/// Compares in time that depends only on the lengths, so the answer's
/// timing does not tell how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

async fn answer(mut stream: TcpStream, served: Served) -> std::io::Result<()> {
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
    let Served {
        source,
        snapshot,
        diag,
    } = served;
    let now = tokio::time::Instant::now();
    let (status, content_type, body) = match (method, path) {
        ("GET", "/") | ("GET", "/health") => {
            let (failed, doc) = replies::health(&snapshot, source.as_ref(), now);
            let status = if failed {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            (status, "application/json", doc.to_string())
        }
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            replies::metrics(&snapshot, source.as_ref(), now),
        ),
        ("GET", "/diag/bundle") => match admitted(&text, &diag) {
            Err("off") => (
                "404 Not Found",
                "text/plain",
                "diagnostics over HTTP are off: start the daemon with RILLFLOW_DIAG_TOKEN set \
                 and send it as a bearer token (or run `rillflow diag bundle`)\n"
                    .to_owned(),
            ),
            Err(_) => (
                "401 Unauthorized",
                "text/plain",
                "a bearer token is needed\n".to_owned(),
            ),
            Ok(()) => match tokio::time::timeout(DIAG_TIMEOUT, source.diag()).await {
                Ok(Some(doc)) => ("200 OK", "application/json", doc.to_string()),
                Ok(None) => (
                    "404 Not Found",
                    "text/plain",
                    "no diagnostics here\n".to_owned(),
                ),
                Err(_) => (
                    "503 Service Unavailable",
                    "text/plain",
                    format!(
                        "the diagnostics bundle was not built within {} s; \
                         try `rillflow diag bundle`\n",
                        DIAG_TIMEOUT.as_secs()
                    ),
                ),
            },
        },
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_owned(),
        ),
    };
    let challenge = if status.starts_with("401") {
        "WWW-Authenticate: Bearer\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{challenge}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::{admitted, same_secret, DiagAccess};

    #[test]
    fn only_the_configured_bearer_token_gets_the_bundle() {
        let on = DiagAccess::Token("s3cret-token-0123456789".into());
        let head = |auth: &str| format!("GET /diag/bundle HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n");
        assert_eq!(
            admitted(&head("Authorization: Bearer s3cret-token-0123456789"), &on),
            Ok(())
        );
        assert_eq!(
            admitted(
                &head("authorization:  Bearer s3cret-token-0123456789 "),
                &on
            ),
            Ok(())
        );
        for auth in [
            "",
            "Authorization: Bearer s3cret-token-012345678",
            "Authorization: Bearer s3cret-token-01234567890",
            "Authorization: Basic s3cret-token-0123456789",
            "X-Authorization: Bearer s3cret-token-0123456789",
        ] {
            assert_eq!(admitted(&head(auth), &on), Err("unauthorized"), "{auth}");
        }
        assert_eq!(
            admitted(&head("Authorization: Bearer x"), &DiagAccess::Off),
            Err("off")
        );
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab"));
    }
}
