//! Declared handlers running as a role of their own (`projections
//! handler-role create`, `--handler-database-url`): they write their read
//! models and their own checkpoint, and nothing of the log, the daemon's
//! tables, other projections or other tenants.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use rillflow_testkit::{projection_file, CliRunner, Process, TestDb};
use serde_json::Value;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

fn rillflow(db: &TestDb, args: &[&str]) -> Output {
    CliRunner::new(BIN, db).run(args)
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    CliRunner::new(BIN, db).ok(args)
}

/// `url` logging in as `user` with `password` (any password in its query
/// string dropped).
fn url_as(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '?')
        .unwrap_or((rest.len(), '/'));
    let host = match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => host,
        None => &rest[..authority_end],
    };
    let tail = &rest[authority_end..];
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|kv| !kv.starts_with("password=") && !kv.starts_with("user="))
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{user}:{password}@{host}{tail}")
}

/// A role name no other test (or run) on this server uses.
fn fresh_role() -> String {
    format!("h_{:x}", rand::random::<u32>())
}

/// Sets `role`'s password (the test server asks for one over TCP) and
/// returns its URL to `db`.
async fn login_of(db: &TestDb, pool: &PgPool, role: &str) -> String {
    let password = format!("{:x}", rand::random::<u64>());
    // A role name and a password cannot be bound in DDL; both are made here.
    sqlx::query(&format!("ALTER ROLE \"{role}\" PASSWORD '{password}'"))
        .execute(pool)
        .await
        .unwrap();
    url_as(&db.url, role, &password)
}

/// Drops `role` once the test is done with it: roles outlive databases.
async fn drop_role(pool: &PgPool, role: &str) {
    for sql in [
        format!("DROP OWNED BY \"{role}\" CASCADE"),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
}

async fn scalar_i64(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn append(pool: &PgPool, stream: Uuid, types: &[&str]) {
    let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    sqlx::query(
        "SELECT * FROM rf_append($1, 'any', NULL, NULL, NULL, $2, NULL,
                                 array_fill('{}'::jsonb, ARRAY[cardinality($2)]), NULL, NULL, NULL)",
    )
    .bind(stream)
    .bind(&types)
    .execute(pool)
    .await
    .unwrap();
}

const FILE: &str = r#"
[defaults]
max_retries = 0
on_error = "dead_letter"

[[projections]]
name = "ledger"
setup = "CREATE TABLE IF NOT EXISTS ledger (stream_id uuid PRIMARY KEY, n bigint NOT NULL)"
reset = "TRUNCATE ledger"
[projections.handlers]
Deposited = "INSERT INTO ledger VALUES (:stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET n = ledger.n + 1"
DropLog = "DROP TABLE events CASCADE"
EraseLog = "DELETE FROM events"
ForgeOther = "UPDATE rf_checkpoints SET processed_total = 999, position = 0 WHERE projection = 'other'"
PauseOther = "UPDATE rf_projections SET paused = true WHERE name = 'other'"
ReadTenant = "INSERT INTO ledger SELECT gen_random_uuid(), count(*) FROM acme.events"
Escalate = "DROP TABLE rf_checkpoints"
SkipAhead = "UPDATE rf_checkpoints SET owner_node = 'forged', projection = 'other' WHERE projection = 'ledger'"

[[projections]]
name = "other"
setup = "CREATE TABLE IF NOT EXISTS other_counts (stream_id uuid PRIMARY KEY, n bigint NOT NULL)"
[projections.handlers]
Deposited = "INSERT INTO other_counts VALUES (:stream_id, 1) ON CONFLICT (stream_id) DO UPDATE SET n = other_counts.n + 1"
"#;

const ATTACKS: &[&str] = &["DropLog", "EraseLog", "ReadTenant", "Escalate", "SkipAhead"];

#[tokio::test]
async fn a_handler_role_writes_its_read_models_and_nothing_else() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let role = fresh_role();
    let file = projection_file("ledger", FILE);
    let file = file.to_str().unwrap();
    ok(&db, &["tenants", "add", "acme", "--mode", "schema"]);

    let stream = Uuid::new_v4();
    append(&pool, stream, &["Deposited", "Deposited"]).await;
    // `other` runs with the store's rights and gets somewhere first.
    ok(
        &db,
        &[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            "other",
        ],
    );
    let other_before = sqlx::query_as::<_, (i64, i64, bool)>(
        "SELECT c.position, c.processed_total, p.paused
         FROM rf_checkpoints c JOIN rf_projections p ON p.name = c.projection
         WHERE c.projection = 'other'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(other_before.1, 2);

    let made = ok(
        &db,
        &[
            "projections",
            "handler-role",
            "create",
            &role,
            "--projection",
            "ledger",
        ],
    );
    assert!(made.contains(&format!("role {role} runs ledger")), "{made}");
    let url = login_of(&db, &pool, &role).await;

    let mut attacks = ATTACKS.to_vec();
    attacks.extend(["ForgeOther", "PauseOther", "Deposited"]);
    append(&pool, stream, &attacks).await;
    let events_before = scalar_i64(&pool, "SELECT count(*) FROM events").await;
    let ran = rillflow(
        &db,
        &[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            "ledger",
            "--handler-database-url",
            &url,
        ],
    );
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    // Its batches went through the batch function, which the role created
    // in its own temporary schema (no fallback to one event at a time).
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        !stderr.contains("cannot create the batch function"),
        "{stderr}"
    );

    // Its read model: its own table, in its own schema, every deposit.
    let (owner, n): (String, i64) = sqlx::query_as(&format!(
        "SELECT t.tableowner::text, l.n FROM pg_tables t, \"{role}\".ledger l
         WHERE t.schemaname = '{role}' AND t.tablename = 'ledger' AND l.stream_id = $1"
    ))
    .bind(stream)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((owner.as_str(), n), (role.as_str(), 3));
    // Its checkpoint moved past everything, and its bookkeeping held:
    // every attack is a dead letter with the database's refusal.
    let status: Value = serde_json::from_str(&ok(
        &db,
        &["projections", "status", "ledger", "--output", "json"],
    ))
    .unwrap();
    assert_eq!(status["partitions"][0]["lag"], 0, "{status}");
    let dead: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, error FROM rf_projection_dlq WHERE projection = 'ledger' ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let dead_types: Vec<&str> = dead.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(dead_types, ATTACKS, "{dead:?}");
    for (event_type, error) in &dead {
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{event_type}: {error}"
        );
    }
    // Nothing of the log, the daemon's tables or the other projection moved.
    assert_eq!(
        scalar_i64(&pool, "SELECT count(*) FROM events").await,
        events_before
    );
    let other_after = sqlx::query_as::<_, (i64, i64, bool)>(
        "SELECT c.position, c.processed_total, p.paused
         FROM rf_checkpoints c JOIN rf_projections p ON p.name = c.projection
         WHERE c.projection = 'other'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(other_after, other_before);
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM rf_checkpoints WHERE owner_node = 'forged'"
        )
        .await,
        0
    );

    // A rebuild runs its reset and setup SQL as the role too, and the
    // batches after it apply the same again.
    ok(
        &db,
        &[
            "projections",
            "rebuild",
            "ledger",
            "--projections",
            file,
            "--handler-database-url",
            &url,
        ],
    );
    ok(
        &db,
        &[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            "ledger",
            "--handler-database-url",
            &url,
        ],
    );
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT n FROM \"{role}\".ledger WHERE stream_id = $1"
    ))
    .bind(stream)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        scalar_i64(
            &pool,
            "SELECT count(*) FROM rf_projection_dlq WHERE projection = 'ledger'"
        )
        .await,
        ATTACKS.len() as i64
    );

    // The role runs only what it was given.
    let refused = rillflow(
        &db,
        &[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            "other",
            "--handler-database-url",
            &url,
        ],
    );
    let line = rillflow_testkit::one_line_failure(&refused, None);
    assert!(
        line.contains(&format!("role {role} does not run other")),
        "{line}"
    );
    drop(pool);
    let admin = db.pool().await;
    drop_role(&admin, &role).await;
}

#[tokio::test]
async fn roles_that_could_step_around_the_grants_are_refused() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let role = fresh_role();
    let me: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            // The test server's login is a superuser; a store owner
            // that is not gets "has the rights of the store's owner".
            vec![me.clone(), "--projection".into(), "ledger".into()],
            "it cannot confine handlers",
        ),
        (
            vec![
                role.clone(),
                "--projection".into(),
                "ledger".into(),
                "--read-models".into(),
                "public".into(),
            ],
            "schema public holds the event store",
        ),
        (
            vec![
                role.clone(),
                "--projection".into(),
                "ledger".into(),
                "--read-models".into(),
                "information_schema".into(),
            ],
            "schema information_schema is shared by every role",
        ),
        (
            vec![
                role.clone(),
                "--projection".into(),
                "ledger".into(),
                "--read-models".into(),
                "acme".into(),
            ],
            "schema acme holds an event store",
        ),
        (
            vec!["Bad-Name".into(), "--projection".into(), "ledger".into()],
            "invalid role name",
        ),
    ];
    ok(&db, &["tenants", "add", "acme", "--mode", "schema"]);
    for (args, expected) in cases {
        let mut full = vec!["projections", "handler-role", "create"];
        full.extend(args.iter().map(String::as_str));
        let line = rillflow_testkit::one_line_failure(&rillflow(&db, &full), None);
        assert!(line.contains(expected), "{full:?}: {line}");
    }
    // Nothing was made by the refusals.
    assert_eq!(
        scalar_i64(&pool, "SELECT count(*) FROM rf_handler_roles").await,
        0
    );
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!exists, "a refused create left role {role} behind");

    // A projection runs as one role at most.
    ok(
        &db,
        &[
            "projections",
            "handler-role",
            "create",
            &role,
            "--projection",
            "ledger",
        ],
    );
    let second = fresh_role();
    let line = rillflow_testkit::one_line_failure(
        &rillflow(
            &db,
            &[
                "projections",
                "handler-role",
                "create",
                &second,
                "--projection",
                "ledger",
            ],
        ),
        None,
    );
    assert!(
        line.contains(&format!("projection ledger already runs as role {role}")),
        "{line}"
    );
    let listed: Value = serde_json::from_str(&ok(
        &db,
        &["projections", "handler-role", "list", "--output", "json"],
    ))
    .unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"role": role, "read_models": role, "projections": ["ledger"]}])
    );
    drop_role(&pool, &role).await;
    // The refused second role was created in a transaction that rolled back.
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&second)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!exists);
}

/// Under dynamic ownership every batch is fenced by its partition's lease;
/// the handler role takes that fence through `rf_fence_partition`.
#[tokio::test]
async fn owned_partitions_run_as_the_handler_role() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let role = fresh_role();
    let file = projection_file("owned", FILE);
    let file = file.to_str().unwrap();
    ok(
        &db,
        &[
            "projections",
            "handler-role",
            "create",
            &role,
            "--projection",
            "ledger",
            "--projection",
            "other",
        ],
    );
    let url = login_of(&db, &pool, &role).await;
    let streams: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    for s in &streams {
        append(&pool, *s, &["Deposited", "Deposited"]).await;
    }
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("handler-roles");
    let mut daemon = Process::spawn(
        std::path::Path::new(BIN),
        &format!("owned-{}", std::process::id()),
        &db.url,
        &[
            "projections",
            "run-loop",
            "--projections",
            file,
            "--partitions",
            "auto",
            "--total-partitions",
            "3",
            "--node-name",
            "w1",
            "--handler-database-url",
            &url,
        ],
        &logs,
    );
    let start = Instant::now();
    let sum_sql = format!("SELECT coalesce(sum(n), 0)::bigint FROM \"{role}\".other_counts");
    loop {
        let applied: Option<i64> = sqlx::query_scalar(&sum_sql).fetch_one(&pool).await.ok();
        if applied == Some(12) {
            break;
        }
        assert!(
            daemon.is_running(),
            "the daemon exited before applying every event"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "other_counts has {applied:?} of 12"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(20)).is_some());
    drop_role(&pool, &role).await;
}

/// The read horizon that a handler role's batches read up to is not held
/// back by a transaction in another database: it tells appenders apart
/// through `pg_locks`, which every role may read, and raises the read floor
/// through a function that runs with the store owner's rights. The first
/// read may stop in front of the blocker; the next passes it.
#[tokio::test]
async fn other_databases_do_not_hold_a_handler_role_back() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let role = fresh_role();
    ok(
        &db,
        &[
            "projections",
            "handler-role",
            "create",
            &role,
            "--projection",
            "ledger",
        ],
    );
    let url = login_of(&db, &pool, &role).await;
    let mut elsewhere = TestDb::empty().await;
    let elsewhere = elsewhere.pool().await;
    let mut blocker = elsewhere.begin().await.unwrap();
    let held: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    // Committed after the blocker took its id: a horizon that counted the
    // blocker would stop in front of it.
    append(&pool, Uuid::new_v4(), &["Deposited"]).await;
    let written: i64 = sqlx::query_scalar("SELECT max(tx_id) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(written > held);
    let mut handler = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut horizon = 0;
    for _ in 0..2 {
        horizon = sqlx::query_scalar("SELECT rf_read_horizon()")
            .fetch_one(&mut handler)
            .await
            .unwrap();
    }
    assert!(
        horizon > written,
        "horizon {horizon} stops before the event of {written}, held back by {held} in another database"
    );
    // Nor may it take another projection's partition fence: a share lock
    // held there would stall that projection's takeovers.
    let refused = sqlx::query("SELECT rf_fence_partition('other', 0, 1)")
        .execute(&mut handler)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("role {role} does not run projection other")),
        "{refused}"
    );
    blocker.rollback().await.unwrap();
    drop(handler);
    drop_role(&pool, &role).await;
}
