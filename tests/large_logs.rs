//! Statements that must cost the same on a large log as on a small one
//! (sql/0019): the lag walk, the archive counts and the mover's batch.
//!
//! Each test holds the shape, not the clock: it reads the buffers a
//! statement touched from `EXPLAIN (ANALYZE, BUFFERS)`, on a session whose
//! planner settings would turn any statement that leaves the choice to the
//! planner into a sequential scan (or, for the mover, under a forced
//! generic plan), and checks that they stay bounded as the log grows.

use rillflow_adapters::archive::{ArchiveStatus, Counting, BATCH_PLANNER, LOCK_STREAMS};
use rillflow_testkit::TestDb;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

/// Appends `streams` streams of four events each after everything already
/// there, the way appends lay them out (one transaction id per stream,
/// positions in order); every `archived_every`-th stream is archived. Then
/// vacuums and analyses, as a loaded store would have been.
async fn load(pool: &PgPool, streams: i64, archived_every: i64) {
    let first: i64 = sqlx::query_scalar("SELECT count(*) FROM rf_streams")
        .fetch_one(pool)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query(
        "CREATE TEMP TABLE s ON COMMIT DROP AS
         SELECT g AS i, lpad(to_hex(g), 32, '0')::uuid AS id FROM generate_series($1 + 1, $1 + $2) g",
    )
    .bind(first)
    .bind(streams)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash, archived_at)
         SELECT id, 4, 1000 + i, rf_partition_hash(id), CASE WHEN i % $1 = 0 THEN now() END FROM s",
    )
    .bind(archived_every)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO events (position, tx_id, stream_id, version, event_type, data, partition_hash, created_at)
         SELECT (s.i - 1) * 4 + v, 1000 + s.i, s.id, v, 'Deposited',
                jsonb_build_object('amount', s.i * 10 + v, 'note', 'a payload of some size'),
                rf_partition_hash(s.id), now() - interval '1 day'
           FROM s, generate_series(1, 4) v",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("SELECT setval('rf_events_position_seq', (SELECT max(i) * 4 FROM s))")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for table in ["events", "rf_streams"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}"))
            .execute(pool)
            .await
            .unwrap();
    }
}

/// A connection whose planner would pick a sequential scan for anything
/// that does not force its own plan.
async fn seqscan_session(pool: &PgPool) -> PgConnection {
    let mut conn = pool.acquire().await.unwrap().detach();
    for setting in [
        "SET enable_indexscan = off",
        "SET enable_indexonlyscan = off",
        "SET enable_bitmapscan = off",
    ] {
        sqlx::query(setting).execute(&mut conn).await.unwrap();
    }
    conn
}

/// Shared buffers (hit or read) the statement touched, measured on its
/// second run so that the first run's catalog lookups do not count.
async fn buffers(conn: &mut PgConnection, statement: &str) -> i64 {
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}");
    sqlx::query(&explain).execute(&mut *conn).await.unwrap();
    let plan: Value = sqlx::query_scalar(&explain)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let top = &plan[0]["Plan"];
    top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap()
}

async fn lag(conn: &mut PgConnection, at: i64, partitions: i32, key: i32, cap: i32) -> (i64, bool) {
    // Positions and transaction ids of `load`: event 4k is the last of
    // transaction 1000 + k.
    let tx = if at == 0 { 0 } else { 1000 + at / 4 };
    sqlx::query_as("SELECT lag, exact FROM rf_projection_lag($1, $2, $3, $4, $5)")
        .bind(tx)
        .bind(at)
        .bind(partitions)
        .bind(key)
        .bind(cap)
        .fetch_one(conn)
        .await
        .unwrap()
}

fn lag_sql(at: i64, partitions: i32, key: i32, cap: i32) -> String {
    let tx = if at == 0 { 0 } else { 1000 + at / 4 };
    format!("SELECT * FROM rf_projection_lag({tx}, {at}, {partitions}, {key}, {cap})")
}

async fn hot_pages(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT sum(pg_relation_size(relid))::bigint / 8192 FROM pg_partition_tree('events_hot')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn lag_reads_at_most_its_cap_of_index_entries_however_large_the_log() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cap = 100;
    let mut by_size = Vec::new();
    for streams in [1_250, 8_750] {
        load(&pool, streams, 10).await;
        let mut conn = seqscan_session(&pool).await;
        let head: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();

        // The figures first: exact below the cap, estimated from positions
        // beyond it, and per partition a share of the log.
        assert_eq!(lag(&mut conn, head, 1, 0, cap).await, (0, true));
        assert_eq!(lag(&mut conn, head - 60, 1, 0, cap).await, (60, true));
        assert_eq!(lag(&mut conn, 0, 1, 0, cap).await, (head, false));
        let shares: Vec<i64> = {
            let mut v = Vec::new();
            for key in 0..4 {
                let (n, exact) = lag(&mut conn, 0, 4, key, cap).await;
                assert!(!exact);
                v.push(n);
            }
            v
        };
        let total: i64 = shares.iter().sum();
        assert!(
            (total - head).abs() <= head / 50,
            "partition estimates {shares:?} should add up to about {head}"
        );

        let caught_up = buffers(&mut conn, &lag_sql(head, 1, 0, cap)).await;
        let behind = buffers(&mut conn, &lag_sql(0, 1, 0, cap)).await;
        let behind_partition = buffers(&mut conn, &lag_sql(0, 4, 3, cap)).await;
        by_size.push((
            head,
            hot_pages(&pool).await,
            caught_up,
            behind,
            behind_partition,
        ));
        conn.close().await.unwrap();
    }
    let [(_, _, small_caught_up, small_behind, small_partition), (events, pages, caught_up, behind, partition)] =
        by_size[..]
    else {
        unreachable!("two sizes were loaded")
    };
    eprintln!("lag buffers by size (events, heap pages, caught up, behind, partition behind): {by_size:?}");
    // The walk touches about one buffer per entry it passes (each entry's
    // heap tuple), up to the cap, whatever the log's size; a sequential
    // scan would read every page of the hot tier.
    let cap = i64::from(cap);
    // A caught-up checkpoint costs a descent of each tier's index (plus,
    // on PostgreSQL 18, what planning the function's statement reads): a
    // few dozen buffers at most, at any size.
    assert!(
        caught_up <= 30 && small_caught_up <= 30,
        "a caught-up checkpoint read {caught_up} buffers"
    );
    assert!(behind <= cap + 30 && partition <= cap + 30, "{by_size:?}");
    assert!(
        pages > 5 * behind.max(partition),
        "{events} events in {pages} pages: the walk read {behind}/{partition} buffers"
    );
    // Seven times the log, the same work.
    assert!(behind <= small_behind + 10, "{by_size:?}");
    assert!(partition <= small_partition + 10, "{by_size:?}");
}

#[tokio::test]
async fn archive_counts_stop_at_their_cap_and_estimate_beyond() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    load(&pool, 10_000, 10).await;
    let mut conn = seqscan_session(&pool).await;
    let pages = hot_pages(&pool).await;
    for (figure, truth) in [
        ("events_hot", 40_000),
        ("streams", 10_000),
        ("streams_archived", 1_000),
    ] {
        let (n, exact): (i64, bool) =
            sqlx::query_as("SELECT n, exact FROM rf_archive_count($1, 100)")
                .bind(figure)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert!(!exact, "{figure}");
        assert!(
            (n - truth).abs() <= truth / 5,
            "{figure}: estimated {n}, counted {truth}"
        );
        let read = buffers(
            &mut conn,
            &format!("SELECT * FROM rf_archive_count('{figure}', 100)"),
        )
        .await;
        // About one buffer per row counted, up to the cap.
        assert!(
            read <= 130 && pages > 5 * read,
            "{figure} read {read} buffers (the hot tier has {pages} pages)"
        );
    }
    let (n, exact): (i64, bool) =
        sqlx::query_as("SELECT n, exact FROM rf_archive_count('events_archive', 100)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((n, exact), (0, true));

    // Through the status: bounded by default, counted with --exact.
    let bounded = ArchiveStatus::load(&pool).await.unwrap();
    assert!(!bounded.exact);
    let counted = ArchiveStatus::load_for(&pool, None, Counting::Exact)
        .await
        .unwrap();
    assert!(counted.exact);
    assert_eq!(
        (
            counted.events_hot,
            counted.streams_total,
            counted.streams_archived
        ),
        (40_000, 10_000, 1_000)
    );
}

#[tokio::test]
async fn a_mover_batch_costs_the_streams_it_covers_under_a_generic_plan() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    // 30,000 archived streams already drained (no hot events left), ten
    // archived streams with hot events (the batch), and 20,000 more archived
    // streams with hot events after them (the rest of the pass).
    sqlx::query(
        "INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash, archived_at, retention_class)
         SELECT lpad(to_hex(g), 32, '0')::uuid, 4, g, 0, now(), 'cold' FROM generate_series(1, 30000) g",
    )
    .execute(&pool)
    .await
    .unwrap();
    load(&pool, 10, 1).await;
    load(&pool, 20_000, 1).await;
    let first_waiting = uuid::Uuid::from_u128(30_001);
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();

    // The statement as the mover runs it: prepared, kept generic, inside a
    // batch transaction with the batch's planner settings; on a session
    // whose own settings steer the planner away from the ordered walk, as
    // a generic plan's guesses can on a large archive.
    let mut conn = pool.acquire().await.unwrap().detach();
    for setting in [
        "SET plan_cache_mode = force_generic_plan",
        "SET enable_indexscan = off",
        "SET enable_indexonlyscan = off",
        "SET enable_hashjoin = off",
    ] {
        sqlx::query(setting).execute(&mut conn).await.unwrap();
    }
    sqlx::query(&format!("PREPARE lock_streams AS {LOCK_STREAMS}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let run = |from: uuid::Uuid| {
        format!(
            "EXECUTE lock_streams('{from}', 'ffffffff-ffff-ffff-ffff-ffffffffffff', now(), {head}, 40, NULL)"
        )
    };
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query(BATCH_PLANNER).execute(&mut conn).await.unwrap();
    let locked: Vec<uuid::Uuid> = sqlx::query_scalar(&run(first_waiting))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        locked,
        (30_001..=30_010)
            .map(uuid::Uuid::from_u128)
            .collect::<Vec<_>>()
    );
    let resumed = buffers(&mut conn, &run(first_waiting)).await;
    let from_start = buffers(&mut conn, &run(uuid::Uuid::nil())).await;
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    eprintln!("mover batch buffers: resumed {resumed}, from the first stream {from_start}");
    // Neither the 30,000 drained streams before the bound nor the 20,000
    // waiting after the batch cost it anything: a plan that collected and
    // sorted the range would read every one of them.
    assert!(resumed <= 150, "a resumed batch read {resumed} buffers");
    assert!(
        from_start > 10 * resumed,
        "resumed {resumed}, from the start {from_start}"
    );
}
