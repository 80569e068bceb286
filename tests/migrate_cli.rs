//! `rillflow migrate` as operators run it, on real Postgres: apply, revert,
//! refuse a revert that would drop data, and explain a missing schema.

use std::process::{Command, Output};

use rillflow_testkit::{migration_count, CliRunner, TestDb};

const STREAM: &str = "6a1f3b52-8c1e-4d0e-9f6a-2b7c9d8e0f11";

fn rillflow(db: &TestDb, args: &[&str]) -> Output {
    CliRunner::new(env!("CARGO_BIN_EXE_rillflow"), db).run(args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn one_line_failure(out: &Output, code: i32) -> String {
    rillflow_testkit::one_line_failure(out, Some(code))
}

#[tokio::test]
async fn migrate_down_and_up() {
    let db = TestDb::empty().await;
    let out = rillflow(&db, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let all = migration_count();
    assert!(
        stdout(&out).contains(&format!("applied {all} migration(s)")),
        "{}",
        stdout(&out)
    );

    let beyond = (all + 1).to_string();
    let too_far = rillflow(&db, &["migrate", "--down", &beyond]);
    assert!(one_line_failure(&too_far, 1).contains(&format!("only {all} applied")));
    let status = stdout(&rillflow(&db, &["migrate", "--status"]));
    assert_eq!(status.matches("\tapplied").count(), all, "{status}");

    // Back to before 0005, whatever came after it.
    let steps = all - 4;
    let down = rillflow(&db, &["migrate", "--down", &steps.to_string()]);
    let reverted: Vec<String> = (5..=all).rev().map(|v| format!("{v:04}")).collect();
    assert!(
        stdout(&down).contains(&format!(
            "reverted {steps} migration(s): {}",
            reverted.join(", ")
        )),
        "{}",
        stdout(&down)
    );
    let status = stdout(&rillflow(&db, &["migrate", "--status"]));
    assert!(
        status.contains("0005_event_partitioning\tpending"),
        "{status}"
    );
    assert!(rillflow(&db, &["migrate"]).status.success());

    let unreachable = Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args([
            "migrate",
            "--database-url",
            "postgres://nobody:x@127.0.0.1:1/none",
        ])
        .output()
        .unwrap();
    assert!(one_line_failure(&unreachable, 1).contains("cannot connect"));
}

/// `migrate --down` never drops data silently: when the reverted
/// migrations would drop tables or columns that hold data it names them
/// with their counts, reverts nothing and exits 1; `--force` reverts.
#[tokio::test]
async fn migrate_down_refuses_to_drop_data_without_force() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let all = migration_count();
    let status = || async {
        stdout(&rillflow(&db, &["migrate", "--status"]))
            .matches("\tapplied")
            .count()
    };
    // Nothing stored yet: the newest migration goes back without a word.
    let down = rillflow(&db, &["migrate", "--down", "1"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(rillflow(&db, &["migrate"]).status.success());

    let append = |key: &str| {
        let out = rillflow(
            &db,
            &[
                "events",
                "append",
                "--stream",
                STREAM,
                "--type",
                "Kept",
                "--data",
                "{}",
                "--idempotency-key",
                key,
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    };
    append("a");
    append("b");
    let everything = all.to_string();
    // The migrations after 0011 hold nothing here; 0011 holds the digests.
    let to_0011 = (all - 10).to_string();
    for (steps, needles) in [
        (
            to_0011.as_str(),
            vec!["column rf_idempotency.request_digest (2 values)"],
        ),
        (
            everything.as_str(),
            vec![
                "table events (2 rows)",
                "table rf_streams (1 row)",
                "table rf_idempotency (2 rows)",
            ],
        ),
    ] {
        let out = rillflow(&db, &["migrate", "--down", steps]);
        let err = one_line_failure(&out, 1);
        for needle in needles {
            assert!(err.contains(needle), "--down {steps}: {err}");
        }
        assert!(err.contains("--force"), "{err}");
        assert_eq!(status().await, all, "--down {steps} reverted nothing");
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 2);

    let forced = rillflow(&db, &["migrate", "--down", "1", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(status().await, all - 1);
    let lone = rillflow(&db, &["migrate", "--force"]);
    assert!(!lone.status.success(), "--force without --down is refused");
}

/// Payloads past what a command line holds come from a file (`@FILE`) or
/// stdin (`-`), up to their bound.

#[tokio::test]
async fn schema_missing_is_explained() {
    let db = TestDb::empty().await;
    let out = rillflow(&db, &["events", "read", "--stream", STREAM]);
    assert!(one_line_failure(&out, 1).contains("rillflow migrate"));
}
