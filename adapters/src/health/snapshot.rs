//! The health server's picture of the database, kept current in the
//! background so that no request waits on a query.
//!
//! On a large log the lag query can take longer than a readiness probe
//! waits; answering from the last value read (and saying how old it is)
//! keeps `/` and `/metrics` as fast as the process itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rillflow_core::lease::health::ClusterHealth;
use tokio::sync::watch;
use tokio::time::Instant;

use super::server::HealthSource;
use super::view::{Freshness, View};
use crate::archive::ArchiveStats;
use crate::projection::ProjectionStatus;

/// How the refresher keeps the views current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshConfig {
    /// Pause between the end of one attempt and the start of the next.
    pub interval: Duration,
    /// Longest wait for one query, on top of the pool's `statement_timeout`
    /// (a pool may have none, and a lost connection may never answer).
    pub query_timeout: Duration,
    /// Age beyond which a value is reported stale.
    pub stale_after: Duration,
}

impl RefreshConfig {
    /// Refreshes every `interval`, each query bounded by 5 s, values stale
    /// after three intervals: one missed refresh is noise, three are not.
    pub fn every(interval: Duration) -> Self {
        RefreshConfig {
            interval,
            query_timeout: Duration::from_secs(5),
            stale_after: interval * 3,
        }
    }
}

impl Default for RefreshConfig {
    /// Every 2 s: readiness probes poll every few seconds, so fresher
    /// figures would only add load on the database.
    fn default() -> Self {
        RefreshConfig::every(Duration::from_secs(2))
    }
}

/// The three views the server answers from, each refreshed by its own task
/// so that a slow archive query cannot hold back the cluster view.
///
/// Cloning shares the views. The refresh tasks stop once every clone is
/// dropped (their channels have no receiver left).
#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    /// Every cluster's health.
    pub clusters: watch::Receiver<View<Vec<ClusterHealth>>>,
    /// Every projection's checkpoints and lag.
    pub projections: watch::Receiver<View<Vec<ProjectionStatus>>>,
    /// The archive counters (`None` inside when the source has none).
    pub archive: watch::Receiver<View<Option<ArchiveStats>>>,
    stale_after: Duration,
}

/// Names of the views, as the `freshness` section and the `view` label
/// show them.
pub const VIEW_NAMES: [&str; 3] = ["clusters", "projections", "archive"];

type Read<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

fn read_clusters(s: &dyn HealthSource) -> Read<'_, Vec<ClusterHealth>> {
    s.clusters()
}

fn read_projections(s: &dyn HealthSource) -> Read<'_, Vec<ProjectionStatus>> {
    s.projections()
}

fn read_archive(s: &dyn HealthSource) -> Read<'_, Option<ArchiveStats>> {
    s.archive()
}

impl HealthSnapshot {
    /// Starts one refresh task per view; each reads at once, then every
    /// `config.interval`. Needs a tokio runtime.
    pub fn start(source: Arc<dyn HealthSource>, config: RefreshConfig) -> Self {
        let started = Instant::now();
        HealthSnapshot {
            clusters: spawn_view("clusters", source.clone(), config, started, read_clusters),
            projections: spawn_view(
                "projections",
                source.clone(),
                config,
                started,
                read_projections,
            ),
            archive: spawn_view("archive", source, config, started, read_archive),
            stale_after: config.stale_after,
        }
    }

    /// Each view's name, freshness at `now` and failed attempts, in
    /// [`VIEW_NAMES`] order.
    pub fn freshness(&self, now: Instant) -> Vec<(&'static str, Freshness, u64)> {
        let of = |view: &dyn ViewStatus| (view.freshness(now, self.stale_after), view.failures());
        let all = [
            of(&*self.clusters.borrow()),
            of(&*self.projections.borrow()),
            of(&*self.archive.borrow()),
        ];
        VIEW_NAMES
            .into_iter()
            .zip(all)
            .map(|(name, (f, failures))| (name, f, failures))
            .collect()
    }
}

/// The parts of a [`View`] that do not depend on its value's type.
trait ViewStatus {
    fn freshness(&self, now: Instant, stale_after: Duration) -> Freshness;
    fn failures(&self) -> u64;
}

impl<T> ViewStatus for View<T> {
    fn freshness(&self, now: Instant, stale_after: Duration) -> Freshness {
        View::freshness(self, now, stale_after)
    }
    fn failures(&self) -> u64 {
        self.failures
    }
}

fn spawn_view<T: Send + Sync + 'static>(
    name: &'static str,
    source: Arc<dyn HealthSource>,
    config: RefreshConfig,
    started: Instant,
    read: for<'a> fn(&'a dyn HealthSource) -> Read<'a, T>,
) -> watch::Receiver<View<T>> {
    let (tx, rx) = watch::channel(View::new(started));
    tokio::spawn(async move {
        loop {
            let outcome = tokio::time::timeout(config.query_timeout, read(source.as_ref())).await;
            let now = Instant::now();
            tx.send_modify(|view| match outcome {
                Ok(Ok(value)) => {
                    if view.error.is_some() {
                        tracing::info!(view = name, "health view readable again");
                    }
                    view.record(now, value);
                }
                Ok(Err(error)) => note_failure(name, view, error),
                Err(_) => note_failure(
                    name,
                    view,
                    format!("no answer within {} ms", config.query_timeout.as_millis()),
                ),
            });
            tokio::select! {
                biased;
                // Nobody serves from this view any more.
                _ = tx.closed() => return,
                _ = tokio::time::sleep(config.interval) => {}
            }
        }
    });
    rx
}

/// Logs the first failure of a run only: a database that stays away would
/// otherwise log every interval.
fn note_failure<T>(name: &str, view: &mut View<T>, error: String) {
    if view.error.is_none() {
        tracing::warn!(view = name, %error, "health view not refreshed; serving the last value");
    }
    view.fail(error);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use serde_json::{json, Value};

    use super::*;

    /// Clusters answer at once; projections answer once, then hang until
    /// `recovered`; the archive always fails.
    struct Hanging {
        answered: AtomicBool,
        recovered: AtomicBool,
    }

    #[async_trait]
    impl HealthSource for Hanging {
        async fn clusters(&self) -> Result<Vec<ClusterHealth>, String> {
            Ok(Vec::new())
        }
        async fn projections(&self) -> Result<Vec<ProjectionStatus>, String> {
            if self.answered.swap(true, Ordering::SeqCst) && !self.recovered.load(Ordering::SeqCst)
            {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Ok(Vec::new())
        }
        async fn archive(&self) -> Result<Option<ArchiveStats>, String> {
            Err("relation \"rf_archive_counters\" does not exist".into())
        }
        fn local(&self) -> Value {
            json!({})
        }
    }

    #[tokio::test(start_paused = true)]
    async fn health_views_refresh_apart_and_keep_the_last_value() {
        let source = Arc::new(Hanging {
            answered: AtomicBool::new(false),
            recovered: AtomicBool::new(false),
        });
        let config = RefreshConfig::default();
        let mut snap = HealthSnapshot::start(source.clone(), config);
        // The first read happens at once, before any interval passed.
        snap.projections.changed().await.unwrap();
        assert!(snap.projections.borrow().value.is_some());
        assert_eq!(Instant::now(), snap.projections.borrow().started);

        // The second read hangs: after the interval and the query timeout it
        // counts as failed, and the first value stays.
        snap.projections.changed().await.unwrap();
        let waited = Instant::now() - snap.projections.borrow().started;
        assert_eq!(waited, config.interval + config.query_timeout);
        let now = Instant::now();
        let [clusters, projections, archive] = <[_; 3]>::try_from(snap.freshness(now)).unwrap();
        assert_eq!(projections.0, "projections");
        assert!(projections.1.stale, "{projections:?}");
        assert_eq!(
            projections.1.error.as_deref(),
            Some("no answer within 5000 ms")
        );
        assert_eq!(projections.1.age, now - snap.projections.borrow().started);
        assert_eq!(projections.2, 1);
        assert!(snap.projections.borrow().value.is_some());
        // The cluster view went on refreshing meanwhile.
        assert!(!clusters.1.stale, "{clusters:?}");
        assert!(clusters.1.age <= config.interval, "{clusters:?}");
        // The archive never answered: no value, every attempt counted.
        assert!(archive.1.stale && archive.1.error.is_some(), "{archive:?}");
        assert!(archive.2 >= 3, "{archive:?}");
        assert!(snap.archive.borrow().value.is_none());

        // Once the source answers again, the next read clears the mark.
        source.recovered.store(true, Ordering::SeqCst);
        snap.projections.changed().await.unwrap();
        let projections = &snap.freshness(Instant::now())[1];
        assert!(
            !projections.1.stale && projections.1.error.is_none(),
            "{projections:?}"
        );
        assert_eq!(
            projections.2, 1,
            "a success does not reset the failure count"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_tasks_stop_with_the_last_reader() {
        let source = Arc::new(Hanging {
            answered: AtomicBool::new(false),
            recovered: AtomicBool::new(true),
        });
        let snap = HealthSnapshot::start(source.clone(), RefreshConfig::default());
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(snap);
        // Each task notices at its next pause and drops its source.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(Arc::strong_count(&source), 1);
    }
}
