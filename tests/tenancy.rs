//! Tenancy on real Postgres through the binary: registering and removing
//! tenants, schema tenants as whole stores of their own, names that could
//! inject SQL refused before anything runs (SEC-1), and two tenants racing
//! for one new stream.

use rillflow_adapters::{AppendOptions, EventStore, NewEvent, StoreError};
use rillflow_core::tenant::TenantName;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::tenancy::{append_as, count};
use rillflow_testkit::{one_line_failure, CliRunner, TestDb};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FUTURE: &str = "2999-01-01T00:00:00Z";

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
    append_as(&cli, "acme", stream, 3);
    append_as(&cli, "umbrella", stream, 1);
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
    append_as(&cli, "acme", Uuid::from_u128(1), 2);
    append_as(&cli, "umbrella", Uuid::from_u128(2), 1);
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
    append_as(&cli, "kept", Uuid::from_u128(3), 1);
}

/// Sessions pin their `search_path`: a schema named like the login role,
/// holding a store of its own, does not stand in for the base store (the
/// server's default path starts with `"$user"`). A schema tenant cannot be
/// given that name either; a conjoined one can, having no schema.
#[tokio::test]
async fn a_schema_named_like_the_login_role_does_not_hide_the_base_store() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cli = CliRunner::new(BIN, &db);
    let stream = Uuid::from_u128(rand::random()).to_string();
    cli.ok(&[
        "events", "append", "--stream", &stream, "--type", "Base", "--data", "{}",
    ]);
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    let name = TenantName::parse(&role).expect("the test role is a valid schema name");

    // A store in a schema named like the role, made by hand.
    sqlx::query(&format!("CREATE SCHEMA {}", name.schema().quoted()))
        .execute(&pool)
        .await
        .unwrap();
    let shadow = rillflow_adapters::tenant::schema_pool(&pool, &name)
        .await
        .unwrap();
    rillflow_adapters::Migrations::apply(&shadow).await.unwrap();
    shadow.close().await;

    let read = cli.ok(&["events", "read", "--stream", &stream]);
    assert!(read.contains("Base"), "the base stream looks gone: {read}");

    let before = fingerprint(&pool).await;
    let out = cli.run(&["tenants", "add", &role, "--mode", "schema"]);
    let err = one_line_failure(&out, Some(1));
    assert!(err.contains("database role"), "{err}");
    assert_eq!(
        fingerprint(&pool).await,
        before,
        "a refusal changes nothing"
    );
}
