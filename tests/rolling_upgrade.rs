//! deploy/scripts/rolling-upgrade-smoke.sh as an operator runs it, with the
//! freshly built binary as both the old and the new one: on a scratch
//! database of the test server (DATABASE_URL), and on a throwaway local
//! PostgreSQL of its own. It must pass its own verification and leave no
//! process and no database behind. Its verification is also run on a read
//! model tampered with in each way it must catch.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rillflow_adapters::NewEvent;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{rillflow_bin, TestDb};
use serde_json::json;
use uuid::Uuid;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> PathBuf {
    root().join("deploy/scripts/rolling-upgrade-smoke.sh")
}

/// What a run of the script printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The figure printed on the summary line starting with `label`.
    fn figure(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("no line {label:?} in the summary:\n{}", self.show()))
    }

    fn count(&self, label: &str) -> u64 {
        self.figure(label)
            .parse()
            .unwrap_or_else(|_| panic!("{label:?} is not a count:\n{}", self.show()))
    }
}

/// Runs the script with `args`; `DATABASE_URL` is `url` or unset. Output
/// goes to files (a pipe nobody reads could fill up and stall it). A run
/// that never ends is stopped with SIGTERM, so its own cleanup still runs,
/// and fails the test.
fn run(name: &str, args: &[&str], url: Option<&str>) -> Run {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rolling-upgrade");
    std::fs::create_dir_all(&dir).unwrap();
    let tag = format!("{name}-{}", std::process::id());
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .env_remove("RUST_LOG");
    match url {
        Some(u) => cmd.env("DATABASE_URL", u),
        None => cmd.env_remove("DATABASE_URL"),
    };
    let mut child = cmd.spawn().expect("run bash");
    // Far above the script's own per-step timeouts: only a hang gets here.
    let limit = Duration::from_secs(300);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            panic!(
                "the script did not end within {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = Run {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    run
}

/// Command lines of running processes that mention `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(needle) {
                found.push(line);
            }
        }
    }
    found
}

/// What every passing run must show, whatever the database.
fn assert_upgraded_exactly_once(run: &Run) {
    assert!(run.status.success(), "{}", run.show());
    assert!(run.stdout.contains("\nPASS: "), "{}", run.show());
    for step in 1..=9 {
        assert!(
            run.stderr.contains(&format!("[{step}/9]")),
            "step {step} shown:\n{}",
            run.show()
        );
    }
    let acknowledged = run.count("events appended (acknowledged)");
    assert!(acknowledged > 0, "{}", run.show());
    assert_eq!(run.count("events in the store"), acknowledged);
    assert_eq!(run.count("events projected"), acknowledged);
    assert_eq!(run.count("missing from the read model"), 0);
    assert_eq!(run.count("applied more than once"), 0);
    assert_eq!(run.count("in the read model but not in the store"), 0);
    // The hot role moved by the promote: before and after differ, and both
    // the first hot node (old binary) and its successor applied events.
    let hot = run.figure("hot node before / after");
    let (before, after) = hot.split_once(" / ").expect("before / after");
    assert_ne!(before, after, "{}", run.show());
    let appliers = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("events applied by "))
        .count();
    assert!(appliers >= 2, "{}", run.show());
}

#[tokio::test]
async fn the_upgrade_passes_on_a_scratch_database_and_drops_it() {
    let mut db = TestDb::empty().await;
    let cluster = format!("smoke-{:08x}", rand::random::<u32>());
    let bin = rillflow_bin();
    let bin = bin.to_str().unwrap();
    let run = run(
        "scratch",
        &["--old-bin", bin, "--new-bin", bin, "--cluster", &cluster],
        Some(&db.url),
    );
    assert_upgraded_exactly_once(&run);

    let scratch = run
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("rillflow_upgrade_smoke_"))
        .expect("the scratch database is named");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(scratch)
            .fetch_one(&db.pool().await)
            .await
            .unwrap();
    assert!(!exists, "{scratch} was dropped");
    let left = processes_mentioning(&cluster);
    assert!(left.is_empty(), "processes left running: {left:?}");
}

#[test]
fn the_upgrade_passes_on_a_throwaway_local_postgres_and_stops_it() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rolling-upgrade-local-{}", std::process::id()));
    let cluster = format!("smoke-{:08x}", rand::random::<u32>());
    let bin = rillflow_bin();
    let bin = bin.to_str().unwrap();
    let run = run(
        "local",
        &[
            "--old-bin",
            bin,
            "--new-bin",
            bin,
            "--cluster",
            &cluster,
            "--work-dir",
            work.to_str().unwrap(),
        ],
        None,
    );
    assert_upgraded_exactly_once(&run);
    assert!(
        run.stderr.contains("throwaway PostgreSQL"),
        "{}",
        run.show()
    );
    // The server's data directory was inside the work directory: gone with
    // it, and no process (postgres included) still names either.
    assert!(!work.exists(), "{} was removed", work.display());
    let left: Vec<String> = processes_mentioning(work.to_str().unwrap())
        .into_iter()
        .chain(processes_mentioning(&cluster))
        .collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// Runs the script's check alone on `db`, expecting `expect` events.
fn verify(db: &TestDb, expect: u64) -> Run {
    run(
        "verify",
        &["--verify-only", "--expect-events", &expect.to_string()],
        Some(&db.url),
    )
}

fn assert_fails_with(run: &Run, label: &str, figure: &str) {
    assert!(!run.status.success(), "must fail:\n{}", run.show());
    assert!(run.stdout.contains("\nFAIL: "), "{}", run.show());
    assert_eq!(run.figure(label), figure, "{}", run.show());
}

#[tokio::test]
async fn the_check_catches_lost_doubled_and_invented_events() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let streams = [Uuid::from_u128(0xa1), Uuid::from_u128(0xb2)];
    for seq in 1..=30u64 {
        store
            .append(
                streams[seq as usize % 2],
                ExpectedVersion::Any,
                &[NewEvent::new("UpgradeProbe", json!({ "seq": seq }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    // The read model, built by the same projection file the script runs.
    // `run-until-idle` stops when a batch finds nothing below the gap-safe
    // horizon, which a transaction open anywhere on the server (another
    // test's) holds back; so run it until all 30 are in, for a bounded while.
    let file = root().join("deploy/scripts/rolling-upgrade-smoke.toml");
    let pool = db.pool().await;
    let start = Instant::now();
    loop {
        let built = Command::new(rillflow_bin())
            .args(["projections", "run-until-idle", "--projections"])
            .arg(&file)
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let projected: i64 = sqlx::query_scalar("SELECT count(*) FROM upgrade_smoke_ledger")
            .fetch_one(&pool)
            .await
            .unwrap();
        if projected == 30 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {projected} of 30 events projected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let exec = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sql).execute(&pool).await.unwrap() }
    };

    let clean = verify(&db, 30);
    assert!(clean.status.success(), "{}", clean.show());
    assert_eq!(clean.count("events projected"), 30);

    // An acknowledged append the store does not have.
    assert_fails_with(&verify(&db, 31), "events appended (acknowledged)", "31");

    // A stored event the read model never applied.
    exec("CREATE TABLE saved AS SELECT * FROM upgrade_smoke_ledger WHERE seq = 7").await;
    exec("DELETE FROM upgrade_smoke_ledger WHERE seq = 7").await;
    assert_fails_with(&verify(&db, 30), "missing from the read model", "1");
    exec("INSERT INTO upgrade_smoke_ledger SELECT * FROM saved").await;
    let restored = verify(&db, 30);
    assert!(restored.status.success(), "{}", restored.show());

    // An event applied twice.
    exec("UPDATE upgrade_smoke_ledger SET applied = 2 WHERE seq = 11").await;
    assert_fails_with(&verify(&db, 30), "applied more than once", "1");
    exec("UPDATE upgrade_smoke_ledger SET applied = 1 WHERE seq = 11").await;

    // A row for an event that was never stored.
    exec(
        "INSERT INTO upgrade_smoke_ledger (position, event_id, seq)
         VALUES (1000000, gen_random_uuid(), 31)",
    )
    .await;
    assert_fails_with(
        &verify(&db, 30),
        "in the read model but not in the store",
        "1",
    );
    exec("DELETE FROM upgrade_smoke_ledger WHERE position = 1000000").await;

    // The same sequence number stored twice (an append retried without its
    // idempotency key would do this).
    store
        .append(
            streams[0],
            ExpectedVersion::Any,
            &[NewEvent::new("UpgradeProbe", json!({ "seq": 3 }))],
            &Default::default(),
        )
        .await
        .unwrap();
    let doubled = verify(&db, 30);
    assert!(!doubled.status.success(), "{}", doubled.show());
    assert_eq!(doubled.count("events in the store"), 31);
    assert_eq!(doubled.count("distinct sequence numbers in the store"), 30);
}

#[test]
fn the_script_is_valid_bash_and_shellcheck_clean() {
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(script())
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let help = Command::new("bash")
        .arg(script())
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--old-bin PATH"));
    let bad = Command::new("bash")
        .arg(script())
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "unknown arguments are refused");

    match Command::new("shellcheck").arg(script()).output() {
        Ok(out) => assert!(
            out.status.success(),
            "shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => eprintln!("note: shellcheck is not installed; only `bash -n` was run"),
    }
}
