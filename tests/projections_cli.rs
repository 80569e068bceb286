//! `rillflow projections ...` operations on real Postgres, with the shipped
//! example file: declarative projections, pause/resume, dead letters,
//! rebuild, reset, metrics, and bad input refused with one line.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{incomplete_line, projection_file, CliRunner, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/projections.toml");
const SET_BASED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/set_based.toml");

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

fn rillflow(db: &TestDb, args: &[&str]) -> Output {
    CliRunner::new(BIN, db).run(args)
}

fn ok(db: &TestDb, args: &[&str]) -> String {
    CliRunner::new(BIN, db).ok(args)
}

fn json_of(db: &TestDb, args: &[&str]) -> Value {
    CliRunner::new(BIN, db).json(args)
}

/// Asserts a failure with one line on stderr, nothing on stdout; returns it.
fn one_line_failure(out: &Output) -> String {
    rillflow_testkit::one_line_failure(out, None)
}

async fn bank_events(db: &mut TestDb) -> (Uuid, Uuid) {
    let store = EventStore::new(db.pool().await);
    let (alice, bob) = (Uuid::from_u128(0xA11CE), Uuid::from_u128(0xB0B));
    for (account, owner) in [(alice, "alice"), (bob, "bob")] {
        store
            .append(
                account,
                ExpectedVersion::NoStream,
                &[NewEvent::new("AccountOpened", json!({ "owner": owner }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    let moves = [
        (alice, "FundsDeposited", 100),
        (bob, "FundsDeposited", 30),
        (alice, "FundsWithdrawn", 25),
        (alice, "FundsDeposited", 5),
    ];
    for (account, ty, amount) in moves {
        store
            .append(
                account,
                ExpectedVersion::Any,
                &[NewEvent::new(ty, json!({ "amount": amount }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    (alice, bob)
}

async fn balances(db: &mut TestDb) -> Vec<(String, i64, i64)> {
    sqlx::query_as("SELECT owner, balance, version FROM account_balances ORDER BY owner")
        .fetch_all(&db.pool().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_example_file_builds_its_read_models() {
    let mut db = TestDb::migrated().await;
    bank_events(&mut db).await;
    CliRunner::new(BIN, &db).catch_up(EXAMPLE, "account_balances");
    CliRunner::new(BIN, &db).catch_up(EXAMPLE, "event_type_counts");
    assert_eq!(
        balances(&mut db).await,
        vec![("alice".into(), 80, 4), ("bob".into(), 30, 2)]
    );
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT event_type, events FROM event_type_counts ORDER BY 1")
            .fetch_all(&db.pool().await)
            .await
            .unwrap();
    assert_eq!(
        counts,
        vec![
            ("AccountOpened".into(), 2),
            ("FundsDeposited".into(), 3),
            ("FundsWithdrawn".into(), 1)
        ]
    );

    let list = json_of(&db, &["projections", "list", "--output", "json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["account_balances", "event_type_counts"]);
    let table = ok(&db, &["projections", "list"]);
    assert!(
        table.contains("account_balances") && table.contains("running"),
        "{table}"
    );

    // Metrics: one family header each, figures equal to the status.
    let text = ok(&db, &["projections", "metrics", "account_balances"]);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).unwrap();
    let processed: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rillflow_projection_events_processed_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            ref other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(processed, 6.0);
    for family in [
        "rillflow_projection_lag_events",
        "rillflow_projection_events_processed_total",
    ] {
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{text}"
        );
    }

    // Rebuild: emptied, then the same balances again.
    let out = ok(
        &db,
        &[
            "projections",
            "rebuild",
            "account_balances",
            "--projections",
            EXAMPLE,
        ],
    );
    assert!(out.contains("6 events to apply"), "{out}");
    assert!(balances(&mut db).await.is_empty());
    CliRunner::new(BIN, &db).catch_up(EXAMPLE, "account_balances");
    assert_eq!(
        balances(&mut db).await,
        vec![("alice".into(), 80, 4), ("bob".into(), 30, 2)]
    );

    // Reset to the start: everything is pending again.
    ok(
        &db,
        &["projections", "reset-checkpoint", "event_type_counts", "0"],
    );
    let s = json_of(
        &db,
        &[
            "projections",
            "status",
            "event_type_counts",
            "--output",
            "json",
        ],
    );
    assert_eq!(s["partitions"][0]["lag"], 6);
}

#[tokio::test]
async fn the_set_based_example_builds_its_read_models() {
    let mut db = TestDb::migrated().await;
    let (alice, bob) = bank_events(&mut db).await;
    CliRunner::new(BIN, &db).catch_up(SET_BASED, "daily_flows");
    CliRunner::new(BIN, &db).catch_up(SET_BASED, "last_activity");
    let pool = db.pool().await;
    let flows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT event_type, sum(events)::bigint, sum(amount)::text FROM daily_flows GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        flows,
        vec![
            ("FundsDeposited".into(), 3, "135".into()),
            ("FundsWithdrawn".into(), 1, "25".into())
        ]
    );
    let last: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT account_id, event_type, version FROM last_activity ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        last,
        vec![
            (bob, "FundsDeposited".into(), 2),
            (alice, "FundsDeposited".into(), 4)
        ]
    );
}

#[tokio::test]
async fn pause_holds_a_projection_until_resumed() {
    let mut db = TestDb::migrated().await;
    bank_events(&mut db).await;
    ok(
        &db,
        &[
            "projections",
            "run-once",
            "--projections",
            EXAMPLE,
            "--name",
            "account_balances",
        ],
    );
    ok(
        &db,
        &["projections", "reset-checkpoint", "account_balances", "0"],
    );
    sqlx::query("TRUNCATE account_balances")
        .execute(&db.pool().await)
        .await
        .unwrap();
    ok(&db, &["projections", "pause", "account_balances"]);
    let out = CliRunner::new(BIN, &db).run_until_idle_output(EXAMPLE, "account_balances");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("0 applied, paused"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a paused projection is incomplete"
    );
    let line = incomplete_line(&out);
    assert!(
        line.contains("account_balances paused or stopped"),
        "{line}"
    );
    assert!(ok(&db, &["projections", "list"]).contains("paused"));
    ok(&db, &["projections", "resume", "account_balances"]);
    CliRunner::new(BIN, &db).catch_up(EXAMPLE, "account_balances");
    assert_eq!(balances(&mut db).await.len(), 2);
}

#[tokio::test]
async fn dead_letters_are_listed_requeued_after_a_fix_and_deleted() {
    let mut db = TestDb::migrated().await;
    let strict = projection_file(
        "strict",
        r#"
[[projections]]
name = "amounts"
max_retries = 0
setup = "CREATE TABLE IF NOT EXISTS amounts (position bigint PRIMARY KEY, amount int NOT NULL)"
[projections.handlers]
Paid = "INSERT INTO amounts VALUES (:position, :data.amount::int)"
"#,
    );
    let lenient = projection_file(
        "lenient",
        r#"
[[projections]]
name = "amounts"
max_retries = 0
setup = "CREATE TABLE IF NOT EXISTS amounts (position bigint PRIMARY KEY, amount int NOT NULL)"
[projections.handlers]
Paid = "INSERT INTO amounts VALUES (:position, CASE WHEN :data.amount ~ '^[0-9]+$' THEN :data.amount::int ELSE 0 END)"
"#,
    );
    let (strict, lenient) = (strict.to_str().unwrap(), lenient.to_str().unwrap());
    let store = EventStore::new(db.pool().await);
    let s = Uuid::from_u128(5);
    for amount in [json!(3), json!("three"), json!(4)] {
        store
            .append(
                s,
                ExpectedVersion::Any,
                &[NewEvent::new("Paid", json!({ "amount": amount }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    CliRunner::new(BIN, &db).catch_up(strict, "amounts");
    let letters = json_of(
        &db,
        &["projections", "dlq-list", "amounts", "--output", "json"],
    );
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid input syntax"),
        "{letters:?}"
    );
    let id = letters[0]["id"].as_i64().unwrap().to_string();
    let amounts = |db: &TestDb| {
        let url = db.url.clone();
        async move {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let v: Vec<i32> = sqlx::query_scalar("SELECT amount FROM amounts ORDER BY position")
                .fetch_all(&pool)
                .await
                .unwrap();
            v
        }
    };
    assert_eq!(amounts(&db).await, vec![3, 4]);

    ok(&db, &["projections", "dlq-requeue", "amounts", "--id", &id]);
    CliRunner::new(BIN, &db).run_until_idle(lenient, "amounts");
    assert_eq!(
        amounts(&db).await,
        vec![3, 0, 4],
        "the requeued event alone was applied"
    );
    assert!(ok(&db, &["projections", "dlq-list", "amounts"]).contains("no dead letters"));

    // Unknown ids and projections are refused with one line.
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "dlq-delete", "amounts", "--id", &id],
    ));
    assert!(
        err.contains(&format!("no dead letter with id {id}")),
        "{err}"
    );
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "dlq-requeue", "nothing_here", "--id", "1"],
    ));
    assert!(err.contains("no projection named"), "{err}");
}

#[tokio::test]
async fn bad_input_is_refused_with_one_line_and_changes_nothing() {
    let db = TestDb::migrated().await;
    let err = one_line_failure(&rillflow(&db, &["projections", "status", "Bad-Name"]));
    assert!(err.contains("invalid projection name"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "run-once",
            "--projections",
            EXAMPLE,
            "--partition-key",
            "3",
            "--total-partitions",
            "3",
        ],
    ));
    assert!(err.contains("partition key 3 is out of range"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "run-loop",
            "--projections",
            EXAMPLE,
            "--partition-key",
            "0",
            "--total-partitions",
            "0",
        ],
    ));
    assert!(err.contains("at least 1"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "run-once",
            "--projections",
            "/nonexistent.toml",
        ],
    ));
    assert!(err.contains("projections file: cannot read"), "{err}");
    // A file that never ends is read no further than the bound.
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "run-once", "--projections", "/dev/zero"],
    ));
    assert!(err.contains("larger than the 4 MiB allowed"), "{err}");

    let broken = projection_file(
        "broken",
        "[[projections]]\nname = \"ok_name\"\n[projections.handlers]\nX = \"SELECT :nope\"\n",
    );
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "run-once",
            "--projections",
            broken.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains(":nope"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "rebuild", "ghost", "--projections", EXAMPLE],
    ));
    assert!(err.contains("declares no projection \"ghost\""), "{err}");
    let err = one_line_failure(&rillflow(&db, &["projections", "pause", "ghost"]));
    assert!(err.contains("no projection named"), "{err}");

    // Dynamic ownership.
    let auto = |extra: &[&str]| {
        let mut args = vec![
            "projections",
            "run-loop",
            "--projections",
            EXAMPLE,
            "--partitions",
            "auto",
        ];
        args.extend_from_slice(extra);
        one_line_failure(&rillflow(&db, &args))
    };
    let err = auto(&["--partition-key", "0"]);
    assert!(
        err.contains("--partition-key is chosen by the workers"),
        "{err}"
    );
    let err = auto(&["--cluster-mode", "hotcold", "--cluster-name", "c"]);
    assert!(
        err.contains("cannot be combined with --cluster-mode hotcold"),
        "{err}"
    );
    let err = auto(&["--heartbeat-secs", "5", "--lease-ttl-secs", "6"]);
    assert!(err.contains("invalid lease timing"), "{err}");
    let err = auto(&["--total-partitions", "0"]);
    assert!(err.contains("at least 1"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "run-once",
            "--projections",
            EXAMPLE,
            "--partitions",
            "auto",
        ],
    ));
    assert!(err.contains("needs the daemon"), "{err}");
    for (partitions, expected) in [
        ("0", "at least 1"),
        ("-2", "at least 1"),
        ("1025", "too large"),
        ("x", "invalid value"),
    ] {
        let err = one_line_failure(&rillflow(
            &db,
            &[
                "projections",
                "repartition",
                "ghost",
                "--partitions",
                partitions,
            ],
        ));
        assert!(err.contains(expected), "{partitions}: {err}");
    }
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "repartition", "ghost", "--partitions", "4"],
    ));
    assert!(err.contains("unknown projection"), "{err}");
    let err = one_line_failure(&rillflow(&db, &["projections", "owners", "ghost"]));
    assert!(err.contains("no projection named"), "{err}");
    let err = one_line_failure(&rillflow(
        &db,
        &[
            "projections",
            "repartition",
            "x\"; drop table events; --",
            "--partitions",
            "2",
        ],
    ));
    assert!(err.contains("invalid projection name"), "{err}");

    let list = json_of(&db, &["projections", "list", "--output", "json"]);
    assert_eq!(
        list,
        json!([]),
        "nothing was registered by the refused commands"
    );
}

fn versioned_file(name: &str, owner_sql: &str) -> PathBuf {
    projection_file(
        name,
        &format!(
            r#"
[[projections]]
name = "owners"
versioned_tables = ["owners"]
setup = "CREATE TABLE IF NOT EXISTS owners_v{{version}} (account uuid PRIMARY KEY, owner text NOT NULL, moves bigint NOT NULL DEFAULT 0)"
[projections.handlers]
AccountOpened = "INSERT INTO owners_v{{version}} (account, owner) VALUES (:stream_id, {owner_sql})"
FundsDeposited = "UPDATE owners_v{{version}} SET moves = moves + 1 WHERE account = :stream_id"
FundsWithdrawn = "UPDATE owners_v{{version}} SET moves = moves + 1 WHERE account = :stream_id"
"#
        ),
    )
}

async fn owners(db: &mut TestDb) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT owner, moves FROM owners ORDER BY owner")
        .fetch_all(&db.pool().await)
        .await
        .unwrap()
}

/// A versioned projection is rebuilt beside the live version: readers keep
/// the old read model, through the view, until the new one has caught up;
/// then the view switches and the old tables go.
#[tokio::test]
async fn a_versioned_rebuild_switches_readers_only_once_caught_up() {
    let mut db = TestDb::migrated().await;
    bank_events(&mut db).await;
    let v1 = versioned_file("owners-v1", ":data.owner");
    let v2 = versioned_file("owners-v2", "upper(:data.owner)");
    let (v1, v2) = (v1.to_str().unwrap(), v2.to_str().unwrap());
    CliRunner::new(BIN, &db).catch_up(v1, "owners");
    assert_eq!(
        owners(&mut db).await,
        vec![("alice".into(), 3), ("bob".into(), 1)]
    );

    let out = ok(
        &db,
        &["projections", "rebuild", "owners", "--projections", v2],
    );
    assert!(
        out.contains("building owners version 2 beside version 1"),
        "{out}"
    );
    let s = json_of(
        &db,
        &["projections", "status", "owners", "--output", "json"],
    );
    assert_eq!(
        (s["active_version"].as_i64(), s["building_version"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(s["building"][0]["lag"], 6);
    // Readers still see version 1 while version 2 is empty.
    assert_eq!(
        owners(&mut db).await,
        vec![("alice".into(), 3), ("bob".into(), 1)]
    );
    let err = one_line_failure(&rillflow(
        &db,
        &["projections", "rebuild", "owners", "--projections", v2],
    ));
    assert!(err.contains("already rebuilding version 2"), "{err}");

    let start = Instant::now();
    loop {
        CliRunner::new(BIN, &db).run_until_idle(v2, "owners");
        let s = json_of(
            &db,
            &["projections", "status", "owners", "--output", "json"],
        );
        if s["active_version"] == 2 {
            assert!(s["building_version"].is_null());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never switched: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        owners(&mut db).await,
        vec![("ALICE".into(), 3), ("BOB".into(), 1)]
    );
    let old: Option<String> = sqlx::query_scalar("SELECT to_regclass('owners_v1')::text")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(old, None, "the old version's table is dropped");
    // New events go to the live version 2.
    let store = EventStore::new(db.pool().await);
    store
        .append(
            Uuid::from_u128(0xB0B),
            ExpectedVersion::Any,
            &[NewEvent::new("FundsDeposited", json!({ "amount": 1 }))],
            &Default::default(),
        )
        .await
        .unwrap();
    CliRunner::new(BIN, &db).catch_up(v2, "owners");
    assert_eq!(
        owners(&mut db).await,
        vec![("ALICE".into(), 3), ("BOB".into(), 2)]
    );
}

/// Numbers past f64 and past i64 reach declared handlers digit for digit,
/// through `:data` and `:data.x`, whether the event came from the CLI or
/// was written by SQL.
#[tokio::test]
async fn declared_handlers_see_every_digit() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let amount = "19.999999999999999999";
    let big = "123456789012345678901234567890";
    let data = format!(r#"{{"amount": {amount}, "big": {big}}}"#);
    let by_cli = Uuid::from_u128(0xC11);
    ok(
        &db,
        &[
            "events",
            "append",
            "--stream",
            &by_cli.to_string(),
            "--type",
            "Paid",
            "--data",
            &data,
        ],
    );
    let by_sql = Uuid::from_u128(0x5C1);
    sqlx::query(
        "SELECT * FROM rf_append($1, 'any', NULL, NULL, NULL, ARRAY['Paid'], NULL,
                                 ARRAY[$2::jsonb], NULL, NULL, NULL)",
    )
    .bind(by_sql)
    .bind(&data)
    .execute(&pool)
    .await
    .unwrap();
    let file = projection_file(
        "exact",
        r#"
[[projections]]
name = "exact"
setup = "CREATE TABLE IF NOT EXISTS exact (stream_id uuid PRIMARY KEY, amount numeric, big numeric, doc jsonb)"
reset = "TRUNCATE exact"
[projections.handlers]
Paid = "INSERT INTO exact VALUES (:stream_id, :data.amount::numeric, :data.big::numeric, :data)"
"#,
    );
    let file = file.to_str().unwrap();
    CliRunner::new(BIN, &db).catch_up(file, "exact");
    let rows: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT stream_id, amount::text, big::text, (doc->'amount')::text FROM exact ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    for (stream, a, b, doc) in rows {
        assert_eq!(
            (a.as_str(), b.as_str(), doc.as_str()),
            (amount, big, amount),
            "{stream}"
        );
    }
    // And back out, from the CLI.
    for stream in [by_cli, by_sql] {
        let read = ok(
            &db,
            &[
                "events",
                "read",
                "--stream",
                &stream.to_string(),
                "--output",
                "json",
            ],
        );
        assert!(read.contains(amount) && read.contains(big), "{read}");
    }
    let tail = ok(&db, &["events", "tail", "--once"]);
    assert_eq!(tail.matches(amount).count(), 2, "{tail}");
}
