//! A primary and a hot standby of it, each its own throwaway cluster, for
//! tests that read from a standby or fail over. Every pair is fresh: a test
//! pauses, cuts off or promotes its standby, which no other test may see.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rillflow_adapters::{connect, ClusterSettings, LocalCluster, Migrations, PoolConfig};
use sqlx::PgPool;

use crate::test_db::target_dir;

/// The database both clusters hold.
pub const DATABASE: &str = "rillflow";

/// A migrated primary and a standby streaming from it.
pub struct StandbyPair {
    /// The primary.
    pub primary: LocalCluster,
    /// The standby.
    pub standby: LocalCluster,
    root: PathBuf,
}

impl StandbyPair {
    /// A fresh pair of fast, non-durable test clusters under
    /// `target/rillflow-standby/<name>-<pid>`; `name` keeps concurrent
    /// tests apart.
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, ClusterSettings::for_tests()).await
    }

    /// [`StandbyPair::start`] with the primary created with `settings`
    /// (the standby copies them).
    pub async fn start_with(name: &str, settings: ClusterSettings) -> Self {
        let root = target_dir()
            .join("rillflow-standby")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let primary_dir = root.join("primary");
        let primary =
            tokio::task::spawn_blocking(move || LocalCluster::start(&primary_dir, &settings))
                .await
                .unwrap()
                .expect("primary starts");
        primary.ensure_database(DATABASE).await.unwrap();
        let pool = connect(&primary.url(DATABASE), &PoolConfig::default())
            .await
            .unwrap();
        Migrations::apply(&pool).await.expect("primary migrates");
        pool.close().await;
        let (from, standby_dir) = (primary.clone(), root.join("standby"));
        let standby = tokio::task::spawn_blocking(move || from.start_standby(&standby_dir))
            .await
            .unwrap()
            .expect("standby starts");
        let pair = StandbyPair {
            primary,
            standby,
            root,
        };
        pair.wait_replayed(Duration::from_secs(30)).await;
        pair
    }

    /// The primary's URL.
    pub fn primary_url(&self) -> String {
        self.primary.url(DATABASE)
    }

    /// The standby's URL.
    pub fn standby_url(&self) -> String {
        self.standby.url(DATABASE)
    }

    /// A pool on the primary.
    pub async fn primary_pool(&self) -> PgPool {
        connect(&self.primary_url(), &PoolConfig::default())
            .await
            .unwrap()
    }

    /// A pool on the standby.
    pub async fn standby_pool(&self) -> PgPool {
        connect(&self.standby_url(), &PoolConfig::default())
            .await
            .unwrap()
    }

    /// Waits until the standby has replayed everything the primary has
    /// written so far.
    pub async fn wait_replayed(&self, within: Duration) {
        let primary = self.primary_pool().await;
        let standby = self.standby_pool().await;
        // Insert, not write: under synchronous_commit = off (the test
        // clusters') a commit is visible before its WAL is written.
        let target: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&primary)
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let done: bool = sqlx::query_scalar(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)",
            )
            .bind(&target)
            .fetch_one(&standby)
            .await
            .unwrap();
            if done {
                break;
            }
            assert!(
                start.elapsed() < within,
                "the standby did not replay {target} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        primary.close().await;
        standby.close().await;
    }

    /// Pauses or resumes the standby's replay (WAL still arrives).
    pub async fn pause_replay(&self, paused: bool) {
        let standby = self.standby_pool().await;
        let call = if paused {
            "SELECT pg_wal_replay_pause()"
        } else {
            "SELECT pg_wal_replay_resume()"
        };
        sqlx::query(call).execute(&standby).await.unwrap();
        standby.close().await;
    }

    /// Cuts the standby off from the primary: it receives nothing more, so
    /// whatever the primary commits next is lost if the standby is promoted.
    pub async fn cut_off(&self) {
        let standby = self.standby_pool().await;
        sqlx::query("ALTER SYSTEM SET primary_conninfo = ''")
            .execute(&standby)
            .await
            .unwrap();
        sqlx::query("SELECT pg_reload_conf()")
            .execute(&standby)
            .await
            .unwrap();
        // The receiver stops on the reload; wait until it has.
        let start = Instant::now();
        loop {
            let receiving: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver)")
                    .fetch_one(&standby)
                    .await
                    .unwrap();
            if !receiving {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "receiver still up"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        standby.close().await;
    }

    /// A lossy failover: the primary crashes and the standby, cut off
    /// before, is promoted in its place.
    pub async fn fail_over(&self) {
        let (primary, standby) = (self.primary.clone(), self.standby.clone());
        tokio::task::spawn_blocking(move || {
            primary.crash().expect("primary stops");
            standby.promote().expect("standby promotes");
        })
        .await
        .unwrap();
    }
}

impl Drop for StandbyPair {
    fn drop(&mut self) {
        let _ = self.standby.destroy();
        let _ = self.primary.destroy();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
