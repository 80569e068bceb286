//! Database tenants on real Postgres through the binary: a tenant whose
//! store is a database of its own, registered with a URL that never holds a
//! password, reached by every `--tenant` command, covered by the
//! `--all-tenants` ones; bad input refused in one line with nothing
//! changed (OPS-1) and no password printed (SEC-2).

use rillflow_testkit::tenancy::{append_as, count, split_password};
use rillflow_testkit::{free_port, one_line_failure, CliRunner, TestDb};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/exactly_once.toml"
);

/// The registry and what the base store holds.
async fn fingerprint(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM rf_tenants), (SELECT count(*) FROM events),
                (SELECT count(*) FROM rf_streams)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The tables of the public schema of `pool`'s database.
async fn tables(pool: &PgPool) -> i64 {
    count(
        pool,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    )
    .await
}

/// A tenant database on the test server: its password-free URL, the
/// password, and the database itself (dropped with it).
async fn tenant_database() -> (String, String, TestDb) {
    let db = TestDb::empty().await;
    let (url, password) = split_password(&db.url);
    (url, password, db)
}

#[tokio::test]
async fn a_database_tenant_is_a_store_in_its_own_database() {
    let mut base = TestDb::migrated().await;
    let pool = base.pool().await;
    let (url, password, mut acme_db) = tenant_database().await;
    let cli = CliRunner::new(BIN, &base).with_env("RILLFLOW_TENANT_ACME_PASSWORD", &password);

    let added = cli.ok(&[
        "tenants", "add", "acme", "--mode", "database", "--url", &url,
    ]);
    assert_eq!(
        added.trim(),
        "tenant acme (database) registered; its database is migrated"
    );
    assert!(cli
        .ok(&["tenants", "add", "acme", "--mode", "database", "--url", &url])
        .contains("already registered; its database is up to date"));
    cli.ok(&["tenants", "add", "umbrella", "--mode", "schema"]);

    // Appends, reads and projections of acme happen in acme's database.
    let stream = Uuid::from_u128(rand::random());
    append_as(&cli, "acme", stream, 3);
    append_as(&cli, "umbrella", stream, 1);
    let read = cli.json(&[
        "events",
        "read",
        "--tenant",
        "acme",
        "--stream",
        &stream.to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(read.as_array().unwrap().len(), 3);
    // A failure after the tenant is reached names it too.
    let conflict = cli.run(&[
        "events",
        "append",
        "--tenant",
        "acme",
        "--stream",
        &stream.to_string(),
        "--type",
        "Counted",
        "--data",
        "{}",
        "--expected-version",
        "7",
    ]);
    let line = one_line_failure(&conflict, None);
    assert!(line.starts_with("error: tenant acme: "), "{line}");
    let acme = acme_db.pool().await;
    assert_eq!(count(&acme, "SELECT count(*) FROM events").await, 3);
    assert_eq!(count(&pool, "SELECT count(*) FROM events").await, 0);
    cli.ok(&[
        "projections",
        "run-until-idle",
        "--tenant",
        "acme",
        "--projections",
        FIXTURE,
    ]);
    assert_eq!(
        count(&acme, "SELECT sum(events)::bigint FROM stream_counts").await,
        3
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'stream_counts'"
        )
        .await,
        0,
        "the read model lives in the tenant's database"
    );
    let status = cli.json(&[
        "projections",
        "status",
        "stream_counts",
        "--tenant",
        "acme",
        "--output",
        "json",
    ]);
    let lag: i64 = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 0, "{status}");

    // Listed with its URL, never a password, in JSON and in the table.
    let list = cli.json(&["tenants", "list", "--output", "json"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme")
        .unwrap();
    assert_eq!(entry["mode"], "database");
    assert_eq!(entry["url"], url.as_str());
    assert_eq!(entry["streams"], 1);
    assert_eq!(entry["pending_migrations"], 0);
    let table = cli.ok(&["tenants", "list"]);
    assert!(table.contains(&url), "{table}");
    let bundle = cli.ok(&["diag", "bundle"]);
    for text in [&list.to_string(), &table, &bundle] {
        if !password.is_empty() {
            assert!(!text.contains(&password), "a password printed: {text}");
        }
    }

    // The --all-tenants commands cover it.
    let all = cli.json(&["archive", "status", "--all-tenants", "--output", "json"]);
    let tenants: Vec<Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tenant"].clone())
        .collect();
    assert_eq!(tenants, [Value::Null, "acme".into(), "umbrella".into()]);
    let migrated = cli.json(&["migrate", "--all-tenants", "--output", "json"]);
    let scopes: Vec<&str> = migrated
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "base schema",
            "tenant acme (database)",
            "tenant umbrella (schema)"
        ]
    );
    let st = cli.json(&[
        "migrate", "--tenant", "acme", "--status", "--output", "json",
    ]);
    assert!(st[0]["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["applied"] == true));

    // Removal: never its database, and only while it owns no streams.
    let before = fingerprint(&pool).await;
    let drop = cli.run(&["tenants", "remove", "acme", "--drop-schema"]);
    assert!(one_line_failure(&drop, Some(1)).contains("rillflow never drops"));
    let busy = cli.run(&["tenants", "remove", "acme"]);
    assert!(one_line_failure(&busy, Some(1)).contains("tenant acme owns 1 streams"));
    // Reverting sql/0021 would unregister it: refused without --force.
    let down = cli.run(&["migrate", "--down", "1"]);
    assert!(
        one_line_failure(&down, Some(1)).contains("column rf_tenants.url (1 value)"),
        "{down:?}"
    );
    assert_eq!(fingerprint(&pool).await, before);
}

#[tokio::test]
async fn bad_database_tenants_are_refused_in_one_line_and_change_nothing() {
    let mut base = TestDb::migrated().await;
    let pool = base.pool().await;
    let (url, password, mut spare) = tenant_database().await;
    let cli = CliRunner::new(BIN, &base)
        .with_env("RILLFLOW_TENANT_ACME_PASSWORD", &password)
        .with_env("RILLFLOW_TENANT_WRONG_PASSWORD", "n0t-the-password");
    cli.ok(&["tenants", "add", "globex", "--mode", "conjoined"]);
    let spare_pool = spare.pool().await;
    sqlx::query("CREATE TABLE someone_elses (id int)")
        .execute(&spare_pool)
        .await
        .unwrap();
    let before = fingerprint(&pool).await;

    let secret = "Sup3rSecret";
    let with_userinfo = url.replacen("@", &format!(":{secret}@"), 1);
    let with_query = format!("{url}?sslmode=prefer&password={secret}");
    let down = format!("postgres://nobody@127.0.0.1:{}/acme", free_port());
    let (base_url, _) = split_password(&base.url);
    let add = |name: &str, url: &str| -> Vec<String> {
        ["tenants", "add", name, "--mode", "database", "--url", url]
            .map(str::to_owned)
            .to_vec()
    };
    let mut cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            add("acme", &with_userinfo),
            1,
            "RILLFLOW_TENANT_ACME_PASSWORD",
        ),
        (add("acme", &with_query), 1, "carries a password"),
        (add("acme", "not a url"), 1, "not a postgres:// URL"),
        (add("acme", "mysql://u@h/d"), 1, "not a postgres:// URL"),
        (
            add("acme", &down),
            1,
            "tenant acme: cannot reach its database at postgres://nobody@127.0.0.1:",
        ),
        (add("globex", &url), 1, "already registered as conjoined"),
        (add("acme", &base_url), 1, "leads to the base store itself"),
        (
            add("acme", &split_password(&spare.url).0),
            1,
            "tables that are not a rillflow store",
        ),
        (
            ["tenants", "add", "acme", "--mode", "database"]
                .map(str::to_owned)
                .to_vec(),
            1,
            "--mode database needs --url",
        ),
        (
            ["tenants", "add", "acme", "--mode", "schema", "--url", &url]
                .map(str::to_owned)
                .to_vec(),
            1,
            "--url is for --mode database",
        ),
    ];
    if !password.is_empty() {
        // A server that asks for no password cannot refuse a wrong one.
        cases.push((
            add("wrong", &url),
            1,
            "tenant wrong: cannot reach its database",
        ));
    }
    for (args, code, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli.run(&args);
        let line = one_line_failure(&out, Some(*code));
        assert!(line.contains(says), "{args:?}: {line}");
        for secret in [secret, "n0t-the-password", &password] {
            assert!(
                secret.is_empty() || !line.contains(secret),
                "{args:?} printed a password: {line}"
            );
        }
    }
    assert_eq!(
        fingerprint(&pool).await,
        before,
        "a refusal changes nothing"
    );
    assert_eq!(
        tables(&spare_pool).await,
        1,
        "nothing was migrated into someone else's database"
    );

    // A registered tenant cannot be moved elsewhere by adding it again,
    // and the registry refuses a password written by hand.
    let (acme_url, _, acme_db) = tenant_database().await;
    cli.ok(&[
        "tenants", "add", "acme", "--mode", "database", "--url", &acme_url,
    ]);
    let moved = cli.run(&[
        "tenants", "add", "acme", "--mode", "database", "--url", &url,
    ]);
    assert!(one_line_failure(&moved, Some(1)).contains("already registered at"));
    let by_hand = sqlx::query(
        "INSERT INTO rf_tenants (name, mode, url) VALUES ('x', 'database', 'postgres://u:pw@h/d')",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        by_hand
            .to_string()
            .contains("rf_tenants_url_without_password"),
        "{by_hand}"
    );

    // An empty database tenant is unregistered; its database stays.
    assert_eq!(
        cli.ok(&["tenants", "remove", "acme"]).trim(),
        "tenant acme removed; its database is kept as it is"
    );
    let mut acme_db = acme_db;
    assert!(tables(&acme_db.pool().await).await > 10);
    assert_eq!(fingerprint(&pool).await, before);
}
