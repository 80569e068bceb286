//! `rillflow events append --from-file`: bulk loading from JSON Lines.

use std::io::Write;

use rillflow_testkit::{CliRunner, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn file(lines: &[String]) -> tempfile_path::TempPath {
    tempfile_path::TempPath::with(lines.join("\n") + "\n")
}

/// A file under the system's temp dir, removed when dropped.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);

    impl TempPath {
        pub fn with(text: String) -> Self {
            let path =
                std::env::temp_dir().join(format!("rf-load-{:016x}.jsonl", rand::random::<u64>()));
            let mut f = std::fs::File::create(&path).expect("temp file");
            super::Write::write_all(&mut f, text.as_bytes()).expect("write temp file");
            TempPath(path)
        }

        pub fn arg(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn line(stream: u128, i: u64) -> String {
    json!({ "stream": Uuid::from_u128(stream), "type": "Loaded", "data": { "i": i } }).to_string()
}

async fn stream_events(db: &mut TestDb, stream: u128) -> Vec<(i64, i64)> {
    let pool = db.pool().await;
    sqlx::query_as(
        "SELECT version, (data->>'i')::bigint FROM events WHERE stream_id = $1 ORDER BY version",
    )
    .bind(Uuid::from_u128(stream))
    .fetch_all(&pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_file_loads_with_every_stream_in_line_order() {
    let mut db = TestDb::migrated().await;
    let cli = CliRunner::new(env!("CARGO_BIN_EXE_rillflow"), &db);
    // Streams interleaved, and runs of one stream that merge into one append.
    let mut lines: Vec<String> = (0..3000u64).map(|i| line(1 + (i % 7) as u128, i)).collect();
    lines.extend((3000..3600u64).map(|i| line(100, i)));
    lines.push(String::new());
    let f = file(&lines);
    let summary: Value = cli.json(&["events", "append", "--from-file", f.arg()]);
    assert_eq!(summary["events_written"], 3600, "{summary}");
    assert_eq!(summary["refused"], 0);
    for s in 1..=7u128 {
        let events = stream_events(&mut db, s).await;
        let want: Vec<(i64, i64)> = (0..3000i64)
            .filter(|i| (1 + i % 7) as u128 == s)
            .enumerate()
            .map(|(k, i)| (k as i64 + 1, i))
            .collect();
        assert_eq!(events, want, "stream {s}");
    }
    let long = stream_events(&mut db, 100).await;
    assert_eq!(long.len(), 600);
    assert!(long
        .iter()
        .enumerate()
        .all(|(k, &(v, i))| v == k as i64 + 1 && i == 3000 + k as i64));
}

#[tokio::test]
async fn a_malformed_line_is_named_and_nothing_is_written() {
    let mut db = TestDb::migrated().await;
    let cli = CliRunner::new(env!("CARGO_BIN_EXE_rillflow"), &db);
    let mut lines: Vec<String> = (0..50u64).map(|i| line(5, i)).collect();
    lines[37] = r#"{"stream": "00000000-0000-0000-0000-000000000005", "type": "Loaded"}"#.into();
    let f = file(&lines);
    let out = cli.run(&["events", "append", "--from-file", f.arg()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("line 38") && err.contains("\"data\" is missing"),
        "{err}"
    );
    assert!(stream_events(&mut db, 5).await.is_empty());
    let out = cli.run(&[
        "events",
        "append",
        "--from-file",
        "/nonexistent/events.jsonl",
    ]);
    assert!(!out.status.success());
    let out = cli.run(&["events", "append", "--from-file", f.arg(), "--type", "X"]);
    assert!(
        !out.status.success(),
        "--from-file with single-event flags is refused"
    );
}

#[tokio::test]
async fn refused_appends_are_reported_by_line_and_a_rerun_with_keys_writes_nothing_twice() {
    let mut db = TestDb::migrated().await;
    let cli = CliRunner::new(env!("CARGO_BIN_EXE_rillflow"), &db);
    let keyed = |i: u64, expected: Value| {
        json!({
            "stream": Uuid::from_u128(9), "type": "Loaded", "data": { "i": i },
            "expected_version": expected, "idempotency_key": format!("load-{i}"),
        })
        .to_string()
    };
    let lines = vec![
        keyed(0, json!("no-stream")),
        keyed(1, json!(1)),
        keyed(2, json!(7)), // wrong: the stream is at 2
        keyed(3, json!("2")),
    ];
    let f = file(&lines);
    let out = cli.run(&["events", "append", "--from-file", f.arg()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3:"), "{err}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events_written"], 3, "{summary}");
    assert_eq!(summary["refused"], 1);
    assert_eq!(
        stream_events(&mut db, 9).await,
        vec![(1, 0), (2, 1), (3, 3)]
    );
    // Run again: the keyed appends are retries; line 3 is still refused.
    let out = cli.run(&["events", "append", "--from-file", f.arg()]);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["replayed"], 3, "{summary}");
    assert_eq!(summary["events_written"], 0);
    assert_eq!(stream_events(&mut db, 9).await.len(), 3);
}
