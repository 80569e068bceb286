//! One database per test.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use rillflow_adapters::pg_binaries::PgBinaries;
use rillflow_adapters::{
    connect, ClusterSettings, EventStore, LocalCluster, Migrations, PoolConfig,
};
use sqlx::{Connection, PgConnection, PgPool};

use crate::test_pg::{docker_server, TestPg};

/// A database of its own for one test, schema applied unless asked otherwise.
pub struct TestDb {
    /// URL of the test's database.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
    pool: Option<PgPool>,
}

impl TestDb {
    /// A fresh database with every migration applied.
    pub async fn migrated() -> Self {
        let server = server().await;
        let template = ensure_template(&server).await;
        Self::create(&server, Some(&template)).await
    }

    /// A fresh database with no schema at all.
    pub async fn empty() -> Self {
        let server = server().await;
        Self::create(&server, None).await
    }

    async fn create(server: &Server, template: Option<&str>) -> Self {
        let name = format!("rf_t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&server.admin_url)
            .await
            .expect("admin connection");
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        sqlx::query(&sql)
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = server.url_for(&name);
        TestDb {
            url,
            name,
            admin_url: server.admin_url.clone(),
            pool: None,
        }
    }

    /// A new database with this one's content, made with `CREATE DATABASE
    /// ... TEMPLATE`: a cheap way to give many checks the same starting
    /// state. A template must have no other sessions, so this database's own
    /// pool is closed first, and sessions that linger after their process
    /// exited are ended.
    pub async fn copy(&mut self) -> TestDb {
        if let Some(pool) = self.pool.take() {
            pool.close().await;
        }
        let name = format!("rf_t_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .expect("admin connection");
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", self.name);
        let mut attempts = 0;
        loop {
            match sqlx::query(&create).execute(&mut admin).await {
                Ok(_) => break,
                Err(e) if attempts < 50 && in_use(&e) => {
                    attempts += 1;
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                          WHERE datname = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(&self.name)
                    .execute(&mut admin)
                    .await
                    .expect("end sessions of the template");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("copy {}: {e}", self.name),
            }
        }
        admin.close().await.ok();
        let server = Server {
            admin_url: self.admin_url.clone(),
        };
        TestDb {
            url: server.url_for(&name),
            name,
            admin_url: self.admin_url.clone(),
            pool: None,
        }
    }

    /// A pool of up to `max` connections to this database.
    pub async fn pool_of(&mut self, max: u32) -> PgPool {
        let config = PoolConfig {
            max_connections: max,
            ..PoolConfig::default()
        };
        let pool = connect(&self.url, &config)
            .await
            .expect("connect to test database");
        self.pool = Some(pool.clone());
        pool
    }

    /// A pool with the default size.
    pub async fn pool(&mut self) -> PgPool {
        match &self.pool {
            Some(p) => p.clone(),
            None => self.pool_of(10).await,
        }
    }

    /// An event store on this database.
    pub async fn store(&mut self) -> EventStore {
        EventStore::new(self.pool().await)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Dropping needs async I/O, but Drop is sync and may run inside a
        // runtime: do it on a thread of its own with a runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let pool = self.pool.take();
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                drop(pool);
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(&sql).execute(&mut admin).await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// The server tests create databases on.
struct Server {
    admin_url: String,
}

impl Server {
    fn url_for(&self, database: &str) -> String {
        let mut url = url_without_path(&self.admin_url);
        url.push('/');
        url.push_str(database);
        if let Some(q) = self.admin_url.split_once('?').map(|(_, q)| q) {
            url.push('?');
            url.push_str(q);
        }
        url
    }
}

fn url_without_path(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[after_scheme..].find('/') {
        Some(i) => base[..after_scheme + i].to_owned(),
        None => base.to_owned(),
    }
}

async fn server() -> Server {
    let choice = TestPg::from_env().unwrap_or_else(|e| panic!("{e}"));
    let dir = match choice {
        TestPg::Url(url) => return Server { admin_url: url },
        TestPg::Docker { tag } => {
            let state = target_dir().join("rillflow-test-docker");
            let admin_url = docker_server(&tag, &state)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            return Server { admin_url };
        }
        TestPg::Local => test_cluster_dir(),
    };
    let cluster = tokio::task::spawn_blocking(move || {
        LocalCluster::start(&dir, &ClusterSettings::for_tests())
    })
    .await
    .expect("cluster start task")
    .unwrap_or_else(|e| panic!("cannot start the test PostgreSQL cluster: {e}"));
    Server {
        admin_url: cluster.url("postgres"),
    }
}

/// `target/rillflow-test-pg` of this checkout (or of `CARGO_TARGET_DIR`);
/// `target/rillflow-test-pg-<major>` when `RILLFLOW_PG_BIN` picks the
/// binaries, so runs on several majors (`.ci/pg-matrix`) each keep a
/// cluster of their own.
pub fn test_cluster_dir() -> PathBuf {
    let target = target_dir();
    let picked = std::env::var_os("RILLFLOW_PG_BIN").is_some();
    match PgBinaries::locate().ok().and_then(|b| b.major()) {
        Some(major) if picked => target.join(format!("rillflow-test-pg-{major}")),
        _ => target.join("rillflow-test-pg"),
    }
}

/// This checkout's `target` (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
}

/// The migrated template for the current `sql/` files, built once per
/// server and content of the migrations.
async fn ensure_template(server: &Server) -> String {
    let name = format!("rf_tpl_{:016x}", migrations_hash());
    let mut admin = PgConnection::connect(&server.admin_url)
        .await
        .expect("admin connection");
    // One builder at a time; the others wait and then find it built.
    sqlx::query("SELECT pg_advisory_lock(74201)")
        .execute(&mut admin)
        .await
        .expect("template lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("template lookup");
    if !exists {
        let building = format!("{name}_building");
        let drop_stale = format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)");
        sqlx::query(&drop_stale)
            .execute(&mut admin)
            .await
            .expect("drop stale template");
        sqlx::query(&format!("CREATE DATABASE \"{building}\""))
            .execute(&mut admin)
            .await
            .expect("create template");
        let pool = connect(&server.url_for(&building), &PoolConfig::default())
            .await
            .expect("template pool");
        Migrations::apply(&pool).await.expect("migrate template");
        pool.close().await;
        // A closed connection's server process can outlive the close for a
        // moment, and a rename needs the database to itself: end leftovers
        // and try again for a bounded while.
        let rename = format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"");
        let mut attempts = 0;
        loop {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&building)
            .execute(&mut admin)
            .await
            .expect("end template sessions");
            match sqlx::query(&rename).execute(&mut admin).await {
                Ok(_) => break,
                Err(e) if attempts < 50 && in_use(&e) => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("publish template: {e}"),
            }
        }
    }
    sqlx::query("SELECT pg_advisory_unlock(74201)")
        .execute(&mut admin)
        .await
        .expect("template unlock");
    admin.close().await.ok();
    name
}

/// How many migrations this test binary applies.
pub fn migration_count() -> usize {
    Migrations::embedded().len()
}

/// Names the template after the migrations this test binary embeds (and
/// applies), not after `sql/` as it is now: a binary built before a
/// migration was added must not build, or use, a template named for it.
fn migrations_hash() -> u64 {
    let mut h = DefaultHasher::new();
    Migrations::embedded().hash(&mut h);
    h.finish()
}

/// SQLSTATE 55006: the database is being accessed by other users.
fn in_use(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.code().as_deref() == Some("55006"))
}
