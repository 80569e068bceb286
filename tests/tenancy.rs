//! Tenancy on real Postgres through the binary: schema tenants are whole
//! stores of their own, conjoined tenants share tables but never streams,
//! names that could inject SQL are refused before anything runs (SEC-1),
//! and a schema tenant's daemon labels its metrics with the tenant.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rillflow_adapters::{AppendOptions, EventStore, NewEvent, StoreError};
use rillflow_core::tenant::TenantName;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{free_port, http_get, one_line_failure, CliRunner, Process, TestDb};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/exactly_once.toml"
);
const FUTURE: &str = "2999-01-01T00:00:00Z";

fn append(cli: &CliRunner, tenant: &str, stream: Uuid, n: usize) {
    let stream = stream.to_string();
    for i in 0..n {
        cli.ok(&[
            "events",
            "append",
            "--tenant",
            tenant,
            "--stream",
            &stream,
            "--type",
            "Counted",
            "--data",
            &json!({ "i": i }).to_string(),
        ]);
    }
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Everything that tells whether a command changed the database.
async fn fingerprint(pool: &PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM rf_tenants), (SELECT count(*) FROM pg_namespace),
                (SELECT count(*) FROM events), (SELECT count(*) FROM rf_streams)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn names_that_could_inject_sql_are_refused_and_nothing_changes() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    cli.ok(&["tenants", "add", "acme", "--mode", "conjoined"]);
    let before = fingerprint(&pool).await;
    let stream = Uuid::from_u128(rand::random()).to_string();
    for bad in [
        "x\"; drop table events; --",
        "Acme",
        "public",
        "a b",
        "pg_catalog",
    ] {
        let attempts: Vec<Vec<&str>> = vec![
            vec!["tenants", "add", bad, "--mode", "schema"],
            vec!["archive", "status", "--tenant", bad],
            vec!["archive", "move", "--tenant", bad, "--before", FUTURE],
            vec![
                "archive",
                "partition",
                "--tenant",
                bad,
                "--retention",
                "hot",
                "--month",
                "2025-01-01",
            ],
            vec![
                "events", "append", "--tenant", bad, "--stream", &stream, "--type", "T", "--data",
                "{}",
            ],
            vec!["projections", "list", "--tenant", bad],
            vec!["tenants", "remove", bad],
            vec!["migrate", "--tenant", bad],
        ];
        for args in attempts {
            let line = one_line_failure(&cli.run(&args), Some(2));
            assert!(line.contains("invalid tenant name"), "{args:?}: {line}");
        }
    }
    // A valid name that is not registered is refused too, by the registry.
    let out = cli.run(&[
        "events", "append", "--tenant", "nobody", "--stream", &stream, "--type", "T", "--data",
        "{}",
    ]);
    assert!(one_line_failure(&out, Some(1)).contains("unknown tenant nobody"));
    assert_eq!(fingerprint(&pool).await, before);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'events'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn schema_tenants_are_stores_of_their_own() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    assert!(cli
        .ok(&["tenants", "add", "acme", "--mode", "schema"])
        .contains("created and migrated"));
    cli.ok(&["tenants", "add", "umbrella", "--mode", "schema"]);
    // Adding again is how an upgraded binary's migrations reach the schema.
    assert!(cli
        .ok(&["tenants", "add", "acme", "--mode", "schema"])
        .contains("already registered"));
    let mode_change = cli.run(&["tenants", "add", "acme", "--mode", "conjoined"]);
    assert!(one_line_failure(&mode_change, Some(1)).contains("already registered as schema"));

    // The same stream id in two tenants is two streams.
    let stream = Uuid::from_u128(rand::random());
    append(&cli, "acme", stream, 3);
    append(&cli, "umbrella", stream, 1);
    let read = |tenant: &str| {
        cli.json(&[
            "events",
            "read",
            "--tenant",
            tenant,
            "--stream",
            &stream.to_string(),
            "--output",
            "json",
        ])
    };
    assert_eq!(read("acme").as_array().unwrap().len(), 3);
    assert_eq!(read("umbrella").as_array().unwrap().len(), 1);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM events").await,
        0,
        "base untouched"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM acme.events").await, 3);

    // Archive operations stay inside the schema.
    cli.ok(&[
        "archive",
        "mark",
        "--tenant",
        "acme",
        &stream.to_string(),
        "--reason",
        "closed",
    ]);
    let moved = cli.json(&[
        "archive", "move", "--tenant", "acme", "--before", FUTURE, "--output", "json",
    ]);
    assert_eq!(moved["moved"], 3);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM acme.events_archive").await,
        3
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM umbrella.events_archive").await,
        0
    );
    cli.ok(&[
        "archive",
        "partition",
        "--tenant",
        "umbrella",
        "--retention",
        "hot",
        "--month",
        "2025-01-01",
    ]);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'events_hot_2025_01'"
        )
        .await,
        1,
        "only umbrella's schema gets the partition"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM pg_tables WHERE schemaname = 'umbrella' AND tablename = 'events_hot_2025_01'").await,
        1
    );

    // Every status command answers per tenant, in JSON too.
    let tenants = cli.json(&["tenants", "list", "--output", "json"]);
    let streams: Vec<(String, i64)> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["streams"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        streams,
        [("acme".to_owned(), 1), ("umbrella".to_owned(), 1)]
    );
    let all = cli.json(&["archive", "status", "--all-tenants", "--output", "json"]);
    let cold: Vec<(Value, i64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["tenant"].clone(),
                s["events_archive_table"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cold,
        [(Value::Null, 0), (json!("acme"), 3), (json!("umbrella"), 0)]
    );
    let bundle = cli.json(&["diag", "bundle", "--tenant", "acme"]);
    assert_eq!(bundle["tenancy"]["schema"], "acme");
    assert_eq!(bundle["archive"]["status"]["events_archive_table"], 3);
    let base = cli.json(&["diag", "bundle"]);
    assert_eq!(base["tenancy"]["tenants"].as_array().unwrap().len(), 2);
    let backend = cli.json(&["archive", "backend", "--tenant", "acme", "--output", "json"]);
    assert_eq!(
        backend,
        json!({ "backend": "dual-table", "redirect": false })
    );
    let migrations = cli.json(&["migrate", "--all-tenants", "--output", "json"]);
    assert_eq!(migrations.as_array().unwrap().len(), 3);
    assert!(migrations
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["applied"] == 0));
    let status = cli.json(&[
        "migrate", "--tenant", "acme", "--status", "--output", "json",
    ]);
    assert!(status[0]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["applied"] == true));
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
    append(&cli, "globex", g1, 2);
    append(&cli, "globex", g2, 1);
    append(&cli, "initech", i1, 4);

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
    let start = Instant::now();
    let text = loop {
        if let Some((line, text)) = http_get(port, "/metrics") {
            if line.contains("200") {
                break text;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no /metrics");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// Two tenants creating the same new stream at once: exactly one owns it,
/// and the other's append is rolled back whole.
#[tokio::test]
async fn racing_tenants_never_share_a_new_stream() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(8).await;
    sqlx::query(
        "INSERT INTO rf_tenants (name, mode) VALUES ('a', 'conjoined'), ('b', 'conjoined')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let store = EventStore::new(pool.clone());
    let opts = |t: &str| AppendOptions {
        tenant: Some(TenantName::parse(t).unwrap()),
        ..AppendOptions::default()
    };
    let (a, b) = (opts("a"), opts("b"));
    for _ in 0..40 {
        let stream = Uuid::from_u128(rand::random());
        let ev = [NewEvent::new("Counted", json!({}))];
        let (ra, rb) = tokio::join!(
            store.append(stream, ExpectedVersion::Any, &ev, &a),
            store.append(stream, ExpectedVersion::Any, &ev, &b),
        );
        let owner: String =
            sqlx::query_scalar("SELECT tenant_id FROM rf_streams WHERE stream_id = $1")
                .bind(stream)
                .fetch_one(&pool)
                .await
                .unwrap();
        let (winner, loser) = match owner.as_str() {
            "a" => (ra, rb),
            _ => (rb, ra),
        };
        assert_eq!(winner.unwrap().first_version, 1);
        assert!(
            matches!(loser, Err(StoreError::WrongTenant { .. })),
            "{loser:?}"
        );
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1")
            .bind(stream)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(events, 1);
    }
}

fn log_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("tenancy")
        .join(test)
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
    append(&cli, "acme", streams[0], 3);
    append(&cli, "acme", streams[1], 2);
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
    let text = loop {
        if let Some((line, text)) = http_get(port, "/metrics") {
            if line.contains("200") && text.contains("rillflow_projection") {
                break text;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no /metrics");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

/// A tenant is removed only while it owns no streams; a schema tenant's
/// schema goes only on request; refusals change nothing.
#[tokio::test]
async fn only_a_tenant_without_streams_can_be_removed() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    for (name, mode) in [
        ("acme", "conjoined"),
        ("idle", "conjoined"),
        ("umbrella", "schema"),
        ("spare", "schema"),
        ("kept", "schema"),
    ] {
        cli.ok(&["tenants", "add", name, "--mode", mode]);
    }
    append(&cli, "acme", Uuid::from_u128(1), 2);
    append(&cli, "umbrella", Uuid::from_u128(2), 1);
    let before = fingerprint(&pool).await;
    for (args, code, says) in [
        (
            vec!["tenants", "remove", "acme"],
            1,
            "tenant acme owns 1 streams",
        ),
        (
            vec!["tenants", "remove", "umbrella", "--drop-schema"],
            1,
            "tenant umbrella owns 1 streams",
        ),
        (
            vec!["tenants", "remove", "idle", "--drop-schema"],
            1,
            "no schema of its own",
        ),
        (
            vec!["tenants", "remove", "nobody"],
            1,
            "unknown tenant nobody",
        ),
        (
            vec!["tenants", "remove", "acme", "--tenant", "acme"],
            1,
            "not --tenant",
        ),
    ] {
        let line = one_line_failure(&cli.run(&args), Some(code));
        assert!(line.contains(says), "{args:?}: {line}");
    }
    assert_eq!(fingerprint(&pool).await, before);

    assert_eq!(
        cli.ok(&["tenants", "remove", "idle"]).trim(),
        "tenant idle removed"
    );
    assert_eq!(
        cli.ok(&["tenants", "remove", "spare", "--drop-schema"])
            .trim(),
        "tenant spare removed; its schema is dropped"
    );
    cli.ok(&["tenants", "remove", "kept"]);
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('umbrella', 'spare', 'kept')
          ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["kept", "umbrella"]);
    let listed: Vec<String> = cli
        .json(&["tenants", "list", "--output", "json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["acme", "umbrella"]);
    // A kept schema is a store again once the tenant is added back.
    cli.ok(&["tenants", "add", "kept", "--mode", "schema"]);
    append(&cli, "kept", Uuid::from_u128(3), 1);
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
    append(&cli, "globex", Uuid::from_u128(1), 3);
    append(&cli, "globex", Uuid::from_u128(2), 1);
    append(&cli, "initech", Uuid::from_u128(3), 2);
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
        if total == 7 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "stuck at {total}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT tenant, events FROM per_tenant ORDER BY tenant")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("(none)".to_owned(), 1),
            ("globex".to_owned(), 4),
            ("initech".to_owned(), 2)
        ]
    );
}
