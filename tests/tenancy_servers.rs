//! Database tenants on servers of their own, through real processes: a
//! tenant's server killed stops that tenant's commands (in one line naming
//! it) and nothing else; back up, its daemon resumes with nothing lost or
//! doubled. A database tenant's daemon holds a bounded number of
//! connections to its server, whatever the partition count.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rillflow_adapters::{AppendOptions, ClusterSettings, EventStore, LocalCluster, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::tenancy::{append_as, count, split_password};
use rillflow_testkit::{fast_auto_args, one_line_failure, CliRunner, Process, TestDb};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/exactly_once.toml"
);

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("tenancy-servers")
        .join(test)
}

/// A server of the test's own, for the tenant whose server is killed.
/// Stopped and removed on drop.
struct OwnServer {
    cluster: LocalCluster,
}

impl OwnServer {
    async fn start(name: &str) -> OwnServer {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let cluster = tokio::task::spawn_blocking(move || {
            LocalCluster::start(&dir, &ClusterSettings::for_tests())
        })
        .await
        .unwrap()
        .expect("a server of the test's own (needs the PostgreSQL server binaries)");
        OwnServer { cluster }
    }

    fn stop(&self) {
        self.cluster.stop().expect("stop the tenant's server");
    }

    fn start_again(&self) {
        LocalCluster::start(self.cluster.dir(), &ClusterSettings::for_tests())
            .expect("restart the tenant's server");
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(self.cluster.dir());
    }
}

/// Events applied to `stream_counts` in `pool`'s database (None before
/// the daemon made the table).
async fn projected(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT coalesce(sum(events), 0)::bigint FROM stream_counts")
        .fetch_one(pool)
        .await
        .ok()
}

/// Waits, within a bound, until `stream_counts` in `pool`'s database has
/// applied exactly the events of its log, and says so per stream: the
/// table's CHECK (events = last_version) refuses a repeat or a gap, and the
/// dead-letter table stays empty.
async fn wait_caught_up(pool: &PgPool, what: &str) -> i64 {
    let start = Instant::now();
    loop {
        let logged = count(pool, "SELECT count(*) FROM events").await;
        if projected(pool).await == Some(logged) {
            let versions = count(
                pool,
                "SELECT count(*) FROM stream_counts c JOIN rf_streams s USING (stream_id)
                  WHERE c.last_version <> s.version",
            )
            .await;
            assert_eq!(versions, 0, "{what}: a stream's count is off");
            assert_eq!(
                count(pool, "SELECT count(*) FROM rf_projection_dlq").await,
                0,
                "{what}: dead letters"
            );
            return logged;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never caught up: {:?} of {logged}",
            projected(pool).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `run-loop` of `tenant` projecting the fixture, named `node`.
fn daemon(test: &str, base: &TestDb, tenant: &str, env: &[(&str, &str)]) -> Process {
    let node = format!("{tenant}-1");
    Process::spawn_with_env(
        Path::new(BIN),
        tenant,
        &base.url,
        &[
            "projections",
            "run-loop",
            "--tenant",
            tenant,
            "--projections",
            FIXTURE,
            "--node-name",
            &node,
            "--poll-interval-ms",
            "200",
        ],
        &log_dir(test),
        env,
    )
}

#[tokio::test]
async fn a_killed_tenant_server_stops_that_tenant_only_and_its_work_resumes() {
    let base = TestDb::migrated().await;
    // acme: a database on the test server; globex: a server of its own.
    let acme_db = TestDb::empty().await;
    let (acme_url, acme_password) = split_password(&acme_db.url);
    let server = OwnServer::start("tenant-server").await;
    server.cluster.ensure_database("globex").await.unwrap();
    let (globex_url, globex_password) = split_password(&server.cluster.url("globex"));
    let env = [
        ("RILLFLOW_TENANT_ACME_PASSWORD", acme_password.as_str()),
        ("RILLFLOW_TENANT_GLOBEX_PASSWORD", globex_password.as_str()),
    ];
    let cli = CliRunner::new(BIN, &base)
        .with_env(env[0].0, env[0].1)
        .with_env(env[1].0, env[1].1);
    cli.ok(&[
        "tenants", "add", "acme", "--mode", "database", "--url", &acme_url,
    ]);
    cli.ok(&[
        "tenants",
        "add",
        "globex",
        "--mode",
        "database",
        "--url",
        &globex_url,
    ]);
    cli.ok(&["tenants", "add", "umbrella", "--mode", "schema"]);

    let mut acme_daemon = daemon("killed", &base, "acme", &env);
    let mut globex_daemon = daemon("killed", &base, "globex", &env);
    let stream = |_| Uuid::from_u128(rand::random());
    let (a, g): (Vec<Uuid>, Vec<Uuid>) =
        ((0..3).map(stream).collect(), (0..3).map(stream).collect());
    for s in &a {
        append_as(&cli, "acme", *s, 2);
    }
    for s in &g {
        append_as(&cli, "globex", *s, 2);
    }
    let acme = rillflow_adapters::connect(&acme_db.url, &Default::default())
        .await
        .unwrap();
    let globex_full_url = server.cluster.url("globex");
    let globex = rillflow_adapters::connect(&globex_full_url, &Default::default())
        .await
        .unwrap();
    assert_eq!(wait_caught_up(&acme, "acme").await, 6);
    assert_eq!(wait_caught_up(&globex, "globex").await, 6);
    globex.close().await;

    // globex's server goes away.
    server.stop();
    let append_globex = cli.run(&[
        "events",
        "append",
        "--tenant",
        "globex",
        "--stream",
        &g[0].to_string(),
        "--type",
        "Counted",
        "--data",
        "{}",
    ]);
    let line = one_line_failure(&append_globex, Some(1));
    assert!(
        line.starts_with(&format!(
            "error: tenant globex: cannot reach its database at {globex_url}: "
        )),
        "{line}"
    );
    assert!(!line.contains(&globex_password), "{line}");

    // acme's appends and projection go on.
    for s in &a {
        append_as(&cli, "acme", *s, 1);
    }
    append_as(&cli, "umbrella", a[0], 2);
    assert_eq!(wait_caught_up(&acme, "acme with globex down").await, 9);

    // Commands over every tenant report the others and name globex.
    let out = cli.run(&["archive", "status", "--all-tenants", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams: Vec<(Value, Value)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["tenant"].clone(), s["streams_total"].clone()))
        .collect();
    assert_eq!(
        streams,
        [
            (Value::Null, json!(0)),
            (json!("acme"), json!(3)),
            (json!("globex"), Value::Null),
            (json!("umbrella"), json!(1)),
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("error: tenant globex: cannot reach its database"),
        "{stderr}"
    );
    assert_eq!(lines[1], "error: 1 of 4 failed: tenant globex (database)");
    assert!(!stderr.contains(&globex_password));
    // Unregistering needs its server, to check it owns no streams.
    let remove = cli.run(&["tenants", "remove", "globex"]);
    let line = one_line_failure(&remove, Some(1));
    assert!(line.contains("tenant globex: cannot reach"), "{line}");
    let listed = cli.run(&["tenants", "list", "--output", "json"]);
    assert_eq!(listed.status.code(), Some(1));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "globex is still listed"
    );

    // Back up: globex's daemon, which waited, resumes; new appends too.
    server.start_again();
    for s in &g {
        append_as(&cli, "globex", *s, 1);
    }
    let globex = rillflow_adapters::connect(&globex_full_url, &Default::default())
        .await
        .unwrap();
    assert_eq!(wait_caught_up(&globex, "globex after its restart").await, 9);
    assert_eq!(wait_caught_up(&acme, "acme").await, 9);
    for (name, d) in [("acme", &mut acme_daemon), ("globex", &mut globex_daemon)] {
        assert!(
            d.wait_exit(Duration::ZERO).is_none(),
            "{name}'s daemon exited; see {}",
            log_dir("killed").display()
        );
    }
    globex.close().await;
    // The daemon logged its lost connections; never the password.
    for name in ["acme", "globex"] {
        let log = std::fs::read_to_string(log_dir("killed").join(format!("{name}.log"))).unwrap();
        for password in [&acme_password, &globex_password] {
            assert!(
                password.is_empty() || !log.contains(password.as_str()),
                "{name}.log"
            );
        }
    }
}

/// One daemon per tenant: a database tenant's run-loop reaches its server
/// through one pool (plus a fixed few sessions for leases and wake-ups),
/// so its connections do not grow with the partitions it owns, and none
/// stays open to the base database after the tenant is resolved.
#[tokio::test]
async fn a_database_tenants_daemon_holds_connections_independent_of_partitions() {
    let base = TestDb::migrated().await;
    let mut held = Vec::new();
    for partitions in ["2", "32"] {
        let tenant = format!("t{partitions}");
        let db = TestDb::empty().await;
        let (url, password) = split_password(&db.url);
        let variable = format!("RILLFLOW_TENANT_T{partitions}_PASSWORD");
        let cli = CliRunner::new(BIN, &base).with_env(&variable, &password);
        cli.ok(&[
            "tenants", "add", &tenant, "--mode", "database", "--url", &url,
        ]);
        let node = format!("w{partitions}");
        let mut args = fast_auto_args(FIXTURE, &node, partitions);
        args.extend(["--tenant", &tenant]);
        let _worker = Process::spawn_with_env(
            Path::new(BIN),
            &node,
            &base.url,
            &args,
            &log_dir("connections"),
            &[(&variable, &password)],
        );
        let pool = rillflow_adapters::connect(&db.url, &Default::default())
            .await
            .unwrap();
        let store = EventStore::new(pool.clone());
        for _ in 0..64 {
            store
                .append(
                    Uuid::from_u128(rand::random()),
                    ExpectedVersion::Any,
                    &[NewEvent::new("Counted", json!({}))],
                    &AppendOptions::default(),
                )
                .await
                .unwrap();
        }
        assert_eq!(wait_caught_up(&pool, &tenant).await, 64);
        let owned = count(
            &pool,
            &format!(
                "SELECT count(*) FROM rf_partition_leases
                  WHERE owner = '{node}' AND expires_at > now()"
            ),
        )
        .await;
        let sessions = |database: String| {
            let pool = pool.clone();
            let app = format!("rillflow-daemon {node}");
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = $1 AND application_name = $2",
                )
                .bind(database)
                .bind(app)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        };
        let on_tenant = sessions(db.name.clone()).await;
        let on_base = sessions(base.name.clone()).await;
        eprintln!(
            "{partitions} partitions ({owned} owned): {on_tenant} sessions on the tenant's database, {on_base} on the base"
        );
        assert_eq!(
            on_base, 0,
            "the base pool is closed once the tenant is resolved"
        );
        held.push(on_tenant);
        pool.close().await;
    }
    // The pool's ten connections and a few sessions of its own, at most.
    let bound = 10 + 5;
    assert!(held.iter().all(|&n| n <= bound), "sessions held: {held:?}");
}
