//! Tenants at work on real Postgres through the binary: conjoined tenants
//! share tables but never streams, a schema tenant's daemon projects its own
//! events and labels its metrics with the tenant, workers wake for their own
//! schema only, and declared handlers see each stream's tenant.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rillflow_adapters::{AppendOptions, EventStore, NewEvent};
use rillflow_core::tenant::TenantName;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::tenancy::{append_as, count};
use rillflow_testkit::{
    free_port, http_get, one_line_failure, wait_for_body, CliRunner, Process, TestDb,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/exactly_once.toml"
);
const FUTURE: &str = "2999-01-01T00:00:00Z";

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("tenancy")
        .join(test)
}

#[tokio::test]
async fn conjoined_tenants_share_tables_but_never_streams() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    cli.ok(&["tenants", "add", "globex", "--mode", "conjoined"]);
    cli.ok(&["tenants", "add", "initech", "--mode", "conjoined"]);
    let (g1, g2, i1) = (
        Uuid::from_u128(rand::random()),
        Uuid::from_u128(rand::random()),
        Uuid::from_u128(rand::random()),
    );
    append_as(&cli, "globex", g1, 2);
    append_as(&cli, "globex", g2, 1);
    append_as(&cli, "initech", i1, 4);

    // Another tenant's stream is refused for writes, reads and archive ops,
    // and the refused write left nothing behind.
    let cross = cli.run(&[
        "events",
        "append",
        "--tenant",
        "initech",
        "--stream",
        &g1.to_string(),
        "--type",
        "Counted",
        "--data",
        "{}",
    ]);
    assert!(one_line_failure(&cross, Some(1)).contains("does not belong to tenant initech"));
    assert_eq!(
        count(
            &pool,
            &format!("SELECT version FROM rf_streams WHERE stream_id = '{g1}'")
        )
        .await,
        2
    );
    for args in [
        vec![
            "events",
            "read",
            "--tenant",
            "initech",
            "--stream",
            &g1.to_string(),
        ],
        vec![
            "archive",
            "mark",
            "--tenant",
            "initech",
            &g1.to_string(),
            "--reason",
            "x",
        ],
        vec![
            "archive",
            "reactivate",
            "--tenant",
            "initech",
            &g1.to_string(),
        ],
        vec![
            "archive",
            "move",
            "--tenant",
            "initech",
            "--before",
            FUTURE,
            "--stream",
            &g1.to_string(),
        ],
    ] {
        let line = one_line_failure(&cli.run(&args), Some(1));
        assert!(
            line.contains("does not belong to tenant initech"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM rf_streams WHERE archived_at IS NOT NULL"
        )
        .await,
        0
    );

    // Shared tables cannot be scoped to a conjoined tenant.
    for args in [
        vec![
            "archive",
            "partition",
            "--tenant",
            "globex",
            "--retention",
            "hot",
            "--month",
            "2025-01-01",
        ],
        vec![
            "archive", "redirect", "--tenant", "globex", "--enable", "true",
        ],
        vec!["projections", "list", "--tenant", "globex"],
        vec!["migrate", "--tenant", "globex"],
    ] {
        let line = one_line_failure(&cli.run(&args), Some(1));
        assert!(
            line.contains("tenant globex is conjoined"),
            "{args:?}: {line}"
        );
    }

    // Archive one stream of each tenant; a scoped move takes only its own.
    cli.ok(&[
        "archive",
        "mark",
        "--tenant",
        "globex",
        &g1.to_string(),
        "--reason",
        "closed",
    ]);
    cli.ok(&[
        "archive",
        "mark",
        "--tenant",
        "initech",
        &i1.to_string(),
        "--reason",
        "closed",
    ]);
    let dry = cli.json(&[
        "archive",
        "move",
        "--tenant",
        "globex",
        "--before",
        FUTURE,
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(dry["events"], 2);
    let moved = cli.json(&[
        "archive", "move", "--tenant", "globex", "--before", FUTURE, "--output", "json",
    ]);
    assert_eq!(moved["moved"], 2);
    assert_eq!(
        count(
            &pool,
            &format!("SELECT count(*) FROM events WHERE stream_id = '{i1}'")
        )
        .await,
        4
    );

    let status =
        |tenant: &str| cli.json(&["archive", "status", "--tenant", tenant, "--output", "json"]);
    let g = status("globex");
    assert_eq!(
        (
            g["streams_total"].as_i64(),
            g["events_hot"].as_i64(),
            g["events_archive_table"].as_i64()
        ),
        (Some(2), Some(1), Some(2))
    );
    assert_eq!(
        g["hot_bytes"],
        Value::Null,
        "shared tables have no per-tenant size"
    );
    let i = status("initech");
    assert_eq!(
        (
            i["streams_total"].as_i64(),
            i["events_hot"].as_i64(),
            i["streams_archived"].as_i64()
        ),
        (Some(1), Some(4), Some(1))
    );
    let all = cli.json(&["archive", "status", "--all-tenants", "--output", "json"]);
    let totals: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["streams_total"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [3, 2, 1], "base (all), globex, initech");

    // The base schema's daemon splits the per-stream archive figures by
    // tenant; the untenanted rest is tenant="" so sums stay totals.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _daemon = Process::spawn(
        Path::new(BIN),
        "base",
        &db.url,
        &[
            "projections",
            "run-loop",
            "--health-bind",
            &bind,
            "--node-name",
            "base-1",
        ],
        &log_dir("conjoined"),
    );
    // The archive view is refreshed apart from the others: wait for it.
    let text = wait_for_body(port, "/metrics", Duration::from_secs(20), |t| {
        t.contains("# TYPE archive_events_moved_total ")
    });
    let value = |family: &str, tenant: &str| -> f64 {
        let series = format!("{family}{{tenant=\"{tenant}\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&series))
            .unwrap_or_else(|| panic!("no {series}in\n{text}"));
        line[series.len()..].trim().parse().unwrap()
    };
    for (family, globex, initech, rest) in [
        ("archive_streams_marked_total", 1.0, 1.0, 0.0),
        ("archive_events_moved_total", 2.0, 0.0, 0.0),
        ("archive_streams_awaiting_move", 0.0, 1.0, 0.0),
    ] {
        assert_eq!(value(family, "globex"), globex, "{family} globex");
        assert_eq!(value(family, "initech"), initech, "{family} initech");
        assert_eq!(value(family, ""), rest, "{family} untenanted");
    }
    let types = text
        .lines()
        .filter(|l| l.starts_with("# TYPE archive_events_moved_total "))
        .count();
    assert_eq!(types, 1);
}

#[tokio::test]
async fn a_schema_tenants_daemon_projects_its_own_events_and_labels_metrics() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    cli.ok(&["tenants", "add", "acme", "--mode", "schema"]);
    let streams = [
        Uuid::from_u128(rand::random()),
        Uuid::from_u128(rand::random()),
    ];
    append_as(&cli, "acme", streams[0], 3);
    append_as(&cli, "acme", streams[1], 2);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let _daemon = Process::spawn(
        Path::new(BIN),
        "acme",
        &db.url,
        &[
            "projections",
            "run-loop",
            "--tenant",
            "acme",
            "--projections",
            FIXTURE,
            "--health-bind",
            &bind,
            "--node-name",
            "acme-1",
        ],
        &log_dir("daemon"),
    );
    let start = Instant::now();
    loop {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT sum(events)::bigint FROM acme.stream_counts")
                .fetch_one(&pool)
                .await
                .unwrap_or(None);
        if done == Some(5) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "acme's read model never caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'stream_counts'").await,
        0,
        "the read model lives in the tenant's schema"
    );
    let text = wait_for_body(port, "/metrics", Duration::from_secs(30), |t| {
        t.contains("rillflow_projection")
    });
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(!samples.is_empty());
    for s in &samples {
        assert!(s.contains("tenant=\"acme\""), "unlabelled sample: {s}");
    }
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let all = types.len();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), all, "a # TYPE line repeated");
    let health = http_get(port, "/").expect("health").1;
    let doc: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(doc["node"]["tenant"], "acme", "{doc}");
}

/// Notification channels span the database: a schema tenant's workers wake
/// for appends in their own schema, not for every tenant's.
#[tokio::test]
async fn workers_wake_for_their_own_schema_only() {
    use rillflow_adapters::projection::wakeup;
    use rillflow_adapters::tenant::schema_pool;

    let mut db = TestDb::migrated().await;
    let base = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    cli.ok(&["tenants", "add", "acme", "--mode", "schema"]);
    cli.ok(&["tenants", "add", "umbrella", "--mode", "schema"]);
    let pool_of = |name: &str| {
        let (base, name) = (base.clone(), TenantName::parse(name).unwrap());
        async move { schema_pool(&base, &name).await.unwrap() }
    };
    let (acme, umbrella) = (pool_of("acme").await, pool_of("umbrella").await);
    let wake = wakeup::listen(acme.clone()).await.unwrap();
    let ev = [NewEvent::new("Counted", json!({}))];
    let append = |pool: PgPool| {
        let ev = ev.clone();
        async move {
            EventStore::new(pool)
                .append(
                    Uuid::from_u128(rand::random()),
                    ExpectedVersion::Any,
                    &ev,
                    &AppendOptions::default(),
                )
                .await
                .unwrap();
        }
    };
    // Another tenant's appends and the base schema's leave acme asleep.
    append(umbrella.clone()).await;
    append(base.clone()).await;
    let woken = tokio::time::timeout(Duration::from_millis(700), wake.notified()).await;
    assert!(woken.is_err(), "woken by another schema's append");
    append(acme.clone()).await;
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("an append in acme wakes acme's workers");
}

/// A declared handler keeps read models apart by conjoined tenant with
/// `:tenant_id`, the owner of the event's stream (NULL when untenanted).
#[tokio::test]
async fn declared_handlers_see_the_tenant_owning_each_stream() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    cli.ok(&["tenants", "add", "globex", "--mode", "conjoined"]);
    cli.ok(&["tenants", "add", "initech", "--mode", "conjoined"]);
    append_as(&cli, "globex", Uuid::from_u128(1), 3);
    append_as(&cli, "globex", Uuid::from_u128(2), 1);
    append_as(&cli, "initech", Uuid::from_u128(3), 2);
    cli.ok(&[
        "events",
        "append",
        "--stream",
        &Uuid::from_u128(4).to_string(),
        "--type",
        "Counted",
        "--data",
        "{}",
    ]);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tenancy-files");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("per-tenant-{:x}.toml", rand::random::<u64>()));
    std::fs::write(
        &file,
        r#"
[[projections]]
name = "per_tenant"
setup = "CREATE TABLE IF NOT EXISTS per_tenant (tenant text PRIMARY KEY, events bigint NOT NULL)"
[projections.handlers]
Counted = """
INSERT INTO per_tenant AS p (tenant, events) VALUES (coalesce(:tenant_id, '(none)'), 1)
ON CONFLICT (tenant) DO UPDATE SET events = p.events + 1
"""

[[projections]]
name = "per_tenant_set"
setup = "CREATE TABLE IF NOT EXISTS per_tenant_set (tenant text PRIMARY KEY, events bigint NOT NULL)"
[projections.batch_handlers]
Counted = """
INSERT INTO per_tenant_set AS p (tenant, events)
SELECT coalesce(tenant_id, '(none)'), count(*) FROM batch GROUP BY 1
ON CONFLICT (tenant) DO UPDATE SET events = p.events + EXCLUDED.events
"""
"#,
    )
    .unwrap();
    let file = file.to_str().unwrap();
    // Until caught up: another test's open transaction may hold the
    // server-wide horizon back for a moment.
    let start = Instant::now();
    loop {
        cli.ok(&["projections", "run-until-idle", "--projections", file]);
        let total = count(
            &pool,
            "SELECT coalesce(sum(events), 0)::bigint FROM per_tenant",
        )
        .await;
        let set_based = count(
            &pool,
            "SELECT coalesce(sum(events), 0)::bigint FROM per_tenant_set",
        )
        .await;
        if total == 7 && set_based == 7 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "stuck at {total}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Per event (through the batch function) and set-based (the column
    // tenant_id of batch) alike.
    for table in ["per_tenant", "per_tenant_set"] {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT tenant, events FROM {table} ORDER BY tenant"
        ))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            rows,
            [
                ("(none)".to_owned(), 1),
                ("globex".to_owned(), 4),
                ("initech".to_owned(), 2)
            ],
            "{table}"
        );
    }
}
