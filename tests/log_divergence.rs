//! Issue 26, part 3: after a real lossy failover (a primary crashed, its
//! asynchronous standby promoted without the last commits), `events tail`
//! resumed from a cursor token never skips an event. A token of a lost
//! event is refused with the last common position, or rewinds there with
//! `--on-divergence rewind`; a token of a surviving event continues.

use std::process::Output;

use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::{ExpectedVersion, GlobalCursor};
use rillflow_testkit::standby::StandbyPair;
use rillflow_testkit::{one_line_failure, CliRunner};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/projections.toml");
const PROJECTION: &str = "account_balances";

/// Appends one event per transaction for each of `streams`.
async fn append_each(pool: &PgPool, streams: std::ops::Range<u128>) {
    let store = EventStore::new(pool.clone());
    for s in streams {
        store
            .append(
                Uuid::from_u128(0xd1_0000 + s),
                ExpectedVersion::Any,
                &[NewEvent::new(
                    "AccountOpened",
                    json!({ "owner": format!("o{s}") }),
                )],
                &Default::default(),
            )
            .await
            .unwrap();
    }
}

fn tail(cli: &CliRunner, extra: &[&str]) -> Output {
    let mut args = vec!["events", "tail", "--once", "--with-archived"];
    args.extend_from_slice(extra);
    cli.run(&args)
}

/// The lines of a successful `events tail`.
fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn key(line: &Value) -> GlobalCursor {
    GlobalCursor::new(
        line["tx_id"].as_i64().unwrap(),
        line["position"].as_i64().unwrap(),
    )
}

fn ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["event_id"].as_str().unwrap().to_owned())
        .collect()
}

fn cursor(line: &Value) -> &str {
    line["cursor"].as_str().expect("every line has a cursor")
}

/// The events of `full` after `after`, in order: what a reader resuming
/// there must get.
fn after(full: &[Value], after: GlobalCursor) -> Vec<String> {
    ids(&full
        .iter()
        .filter(|l| key(l) > after)
        .cloned()
        .collect::<Vec<_>>())
}

/// The whole log as `events tail --once` prints it, once it prints all of
/// it: a transaction open a moment (autovacuum's, a finished command's)
/// may hold the read horizon back, and `--once` stops at the horizon.
async fn whole_log(cli: &CliRunner, pool: &PgPool) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let want: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM events_archive)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let got = lines(&tail(cli, &[]));
        if got.len() as i64 == want {
            return got;
        }
        eprintln!("tail printed {} of {want} events; looking again", got.len());
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The ids `events tail --once` with `args` prints once it printed as many
/// as `want` holds (see [`whole_log`]), with its output of the last run.
async fn resumed_ids(cli: &CliRunner, args: &[&str], want: &[String]) -> (Vec<String>, Output) {
    let start = std::time::Instant::now();
    loop {
        let out = tail(cli, args);
        let got = ids(&lines(&out));
        if got.len() >= want.len() || start.elapsed() > std::time::Duration::from_secs(20) {
            return (got, out);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn checkpoint(pool: &PgPool) -> GlobalCursor {
    let (tx, position): (i64, i64) =
        sqlx::query_as("SELECT tx_id, position FROM rf_checkpoints WHERE projection = $1")
            .bind(PROJECTION)
            .fetch_one(pool)
            .await
            .unwrap();
    GlobalCursor::new(tx, position)
}

/// The trap the timeline rule exists for: after the failover a projection
/// goes on and checkpoints among the new events, whose reissued transaction
/// ids sort below the lost token. Trusting that checkpoint would skip new
/// events; the refusal names the checkpoint from before the failover, the
/// rewind re-reads from there, and a surviving token continues.
#[tokio::test]
async fn a_lost_token_is_refused_or_rewound_and_a_surviving_one_continues() {
    let pair = StandbyPair::start("diverge-lost").await;
    let primary = pair.primary_pool().await;
    let old = CliRunner::at_url(BIN, pair.primary_url());
    append_each(&primary, 0..30).await;
    old.catch_up(EXAMPLE, PROJECTION);
    let before = checkpoint(&primary).await;
    append_each(&primary, 30..40).await;
    let survivors = whole_log(&old, &primary).await;
    assert_eq!(survivors.len(), 40);
    assert!(
        cursor(&survivors[0]).ends_with(".1"),
        "read on timeline 1: {}",
        cursor(&survivors[0])
    );
    let survivor = survivors[35].clone();
    pair.wait_replayed(std::time::Duration::from_secs(30)).await;
    pair.cut_off().await;
    append_each(&primary, 40..100).await;
    let old_log = whole_log(&old, &primary).await;
    assert_eq!(old_log.len(), 100);
    let lost = old_log[99].clone();
    primary.close().await;

    pair.fail_over().await;
    let promoted = pair.standby_pool().await;
    let (ours, control): (i64, i64) = sqlx::query_as(
        "SELECT rf_wal_timeline(), (SELECT timeline_id FROM pg_control_checkpoint())::bigint",
    )
    .fetch_one(&promoted)
    .await
    .unwrap();
    eprintln!("just promoted: rf_wal_timeline() {ours}, pg_control_checkpoint() {control}");
    assert_eq!(ours, 2, "the WAL file name says the new timeline at once");
    let new = CliRunner::at_url(BIN, pair.standby_url());
    append_each(&promoted, 100..140).await;
    new.catch_up(EXAMPLE, PROJECTION);
    let full = whole_log(&new, &promoted).await;
    assert_eq!(full.len(), 80, "40 survived, 40 new");
    assert!(cursor(&full[79]).ends_with(".2"), "{}", cursor(&full[79]));
    let new_events = &full[40..];
    // The trap is set: new transactions reuse the lost ones' ids, and the
    // moved checkpoint sorts below the lost token.
    assert!(
        new_events.iter().any(|e| key(e) < key(&lost)),
        "some new event sorts below the lost one"
    );
    assert!(checkpoint(&promoted).await < key(&lost));

    // The refusal: one line naming the last common position, the event
    // the checkpoint from before the failover stood at.
    let out = tail(&new, &["--from", cursor(&lost)]);
    let line = one_line_failure(&out, Some(3));
    let want = format!(
        "history diverged: event {} is no longer at position {}",
        lost["event_id"].as_str().unwrap(),
        lost["position"]
    );
    assert!(line.contains(&want), "{line}");
    assert!(
        line.contains(&format!("last common position {}", before.position)),
        "{line}"
    );
    let suggested = line
        .split("--from ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the refusal suggests a token");

    // Rewinding gives every event after that point, new ones included.
    let want = after(&full, before);
    let rewind = ["--from", cursor(&lost), "--on-divergence", "rewind"];
    let (got, rewound) = resumed_ids(&new, &rewind, &want).await;
    let err = String::from_utf8_lossy(&rewound.stderr).into_owned();
    assert!(
        err.contains("history diverged") && err.contains("rewinding"),
        "{err}"
    );
    assert_eq!(got, want);
    for e in ids(new_events) {
        assert!(got.contains(&e), "new event {e} was skipped");
    }
    // So does resuming from the suggested token, which survived.
    assert_eq!(
        resumed_ids(&new, &["--from", suggested], &want).await.0,
        want
    );

    // A surviving token continues where it was, nothing skipped.
    let want = after(&full, key(&survivor));
    let (got, resumed) = resumed_ids(&new, &["--from", cursor(&survivor)], &want).await;
    assert!(resumed.stderr.is_empty(), "{:?}", resumed.stderr);
    assert_eq!(got, want);
}

/// Without a checkpoint from before the failover nothing proves which
/// events are old: the last common position is the start of the log.
#[tokio::test]
async fn without_checkpoints_a_diverged_reader_rewinds_to_the_start() {
    let pair = StandbyPair::start("diverge-bare").await;
    let primary = pair.primary_pool().await;
    let old = CliRunner::at_url(BIN, pair.primary_url());
    append_each(&primary, 0..20).await;
    pair.wait_replayed(std::time::Duration::from_secs(30)).await;
    pair.cut_off().await;
    append_each(&primary, 20..40).await;
    let lost = whole_log(&old, &primary).await[30].clone();
    primary.close().await;
    pair.fail_over().await;
    let promoted = pair.standby_pool().await;
    append_each(&promoted, 40..60).await;
    let new = CliRunner::at_url(BIN, pair.standby_url());
    let full = whole_log(&new, &promoted).await;
    assert_eq!(full.len(), 40);

    let line = one_line_failure(&tail(&new, &["--from", cursor(&lost)]), Some(3));
    assert!(
        line.contains("last common position 0, the start of the log (resume with --from 0 or --on-divergence rewind)"),
        "{line}"
    );
    let rewind = ["--from", cursor(&lost), "--on-divergence", "rewind"];
    let want = ids(&full);
    assert_eq!(resumed_ids(&new, &rewind, &want).await.0, want);
}

/// A malformed token is one line and exit status 2, before any connection.
#[test]
fn a_bad_token_is_one_line() {
    let cli = CliRunner::at_url(BIN, "postgres://127.0.0.1:1/nowhere".into());
    for bad in [
        "rf1.12.34.zz.1",
        "rf9.12.34",
        "token",
        "rf1.12.34.00000000000000000000000000000abc",
        "99999999999999999999999",
    ] {
        let out = tail(&cli, &[&format!("--from={bad}")]);
        let line = one_line_failure(&out, Some(2));
        assert!(line.contains("--from"), "{line}");
    }
}

/// Every checkpoint write records its timeline (sql/0020), whichever
/// statement makes it, and the key a row held before its timeline changed
/// is kept. Runs on any server (the standby tests need pg_basebackup),
/// as a role with no privileges beyond the defaults.
#[tokio::test]
async fn checkpoint_writes_record_their_timeline() {
    let mut db = rillflow_testkit::TestDb::migrated().await;
    let pool = db.pool().await;
    append_each(&pool, 0..5).await;
    let cli = CliRunner::new(BIN, &db);
    cli.catch_up(EXAMPLE, PROJECTION);
    let row = || async {
        sqlx::query_as::<_, (Option<i64>, Option<i64>, Option<i64>, i64)>(
            "SELECT timeline, prev_timeline, prev_tx_id, tx_id FROM rf_checkpoints
              WHERE projection = $1",
        )
        .bind(PROJECTION)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (timeline, prev, _, tx) = row().await;
    assert_eq!(
        (timeline, prev),
        (Some(1), None),
        "a fresh cluster is on timeline 1"
    );
    // As if the row had been written on another timeline: the next write
    // keeps that key.
    sqlx::query("UPDATE rf_checkpoints SET timeline = 7 WHERE projection = $1")
        .bind(PROJECTION)
        .execute(&pool)
        .await
        .unwrap();
    append_each(&pool, 5..8).await;
    cli.catch_up(EXAMPLE, PROJECTION);
    let (timeline, prev, prev_tx, moved) = row().await;
    assert_eq!((timeline, prev, prev_tx), (Some(1), Some(7), Some(tx)));
    assert!(moved > tx);

    // Any role may read the timeline on a primary.
    // Roles are the server's: one name per test process.
    let role = format!("rf_plain_{}", std::process::id());
    let mut conn = pool.acquire().await.unwrap();
    sqlx::raw_sql(&format!(
        "CREATE ROLE {role} NOLOGIN; GRANT USAGE ON SCHEMA public TO {role}; SET ROLE {role}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    let t: Option<i64> = sqlx::query_scalar("SELECT rf_wal_timeline()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(t, Some(1));
    let control: bool =
        sqlx::query_scalar("SELECT has_function_privilege('pg_control_checkpoint()', 'execute')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    eprintln!("a plain role may call pg_control_checkpoint(): {control}");
    sqlx::raw_sql(&format!(
        "RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// The daemon's history watch: one look before the failover, one after,
/// notices the promotion; a checkpoint whose event the log lost (as when
/// checkpoints are kept on another server than the events) is reported
/// once; both are counted in `rillflow_log_divergences_total`.
#[tokio::test]
async fn the_history_watch_notices_a_promotion_and_a_vanished_checkpoint() {
    use prometheus::Encoder;
    use rillflow_adapters::daemon::history_watch::{Finding, HistoryWatch};

    let pair = StandbyPair::start("diverge-watch").await;
    let primary = pair.primary_pool().await;
    let old = CliRunner::at_url(BIN, pair.primary_url());
    append_each(&primary, 0..5).await;
    old.catch_up(EXAMPLE, PROJECTION);
    let watch = HistoryWatch::new();
    assert_eq!(watch.check(&primary, &primary).await.unwrap(), vec![]);
    pair.wait_replayed(std::time::Duration::from_secs(30)).await;
    pair.cut_off().await;
    append_each(&primary, 5..10).await;
    let lost = whole_log(&old, &primary).await[9].clone();
    primary.close().await;
    pair.fail_over().await;
    let promoted = pair.standby_pool().await;
    assert_eq!(
        watch.check(&promoted, &promoted).await.unwrap(),
        vec![Finding::TimelineChanged { from: 1, to: 2 }]
    );
    assert_eq!(watch.check(&promoted, &promoted).await.unwrap(), vec![]);

    // A checkpoint that had applied the lost event, as a checkpoint kept
    // on another server would still say.
    sqlx::query("UPDATE rf_checkpoints SET tx_id = $1, position = $2 WHERE projection = $3")
        .bind(key(&lost).tx_id)
        .bind(key(&lost).position)
        .bind(PROJECTION)
        .execute(&promoted)
        .await
        .unwrap();
    let found = watch.check(&promoted, &promoted).await.unwrap();
    assert!(
        matches!(&found[..], [Finding::CheckpointVanished { slot, at }]
            if slot.projection == PROJECTION && *at == key(&lost)),
        "{found:?}"
    );
    assert_eq!(
        watch.check(&promoted, &promoted).await.unwrap(),
        vec![],
        "reported once"
    );
    let mut text = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&watch.gather(), &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    for kind in ["timeline", "checkpoint"] {
        let series = format!("rillflow_log_divergences_total{{kind=\"{kind}\"}} 1");
        assert!(text.contains(&series), "{text}");
    }
}
