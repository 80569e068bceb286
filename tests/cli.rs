//! The `rillflow` binary as users run it: real processes, real Postgres.

use std::path::Path;
use std::process::{Command, Output};

use rillflow_testkit::TestDb;
use serde_json::Value;

const STREAM: &str = "6a1f3b52-8c1e-4d0e-9f6a-2b7c9d8e0f11";

fn rillflow(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run rillflow")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failure with exactly one line on stderr and returns it.
fn one_line_failure(out: &Output, code: i32) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {} stderr: {}",
        stdout(out),
        stderr(out)
    );
    let err = stderr(out);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one error line, got: {err:?}"
    );
    assert!(err.starts_with("error: "), "{err:?}");
    err
}

fn versions(db: &TestDb) -> Vec<i64> {
    let out = rillflow(
        db,
        &["events", "read", "--stream", STREAM, "--output", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Value = serde_json::from_str(&stdout(&out)).expect("json array");
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn append_read_and_tail() {
    let db = TestDb::migrated().await;
    let out = rillflow(
        &db,
        &[
            "events",
            "append",
            "--stream",
            STREAM,
            "--type",
            "Opened",
            "--data",
            r#"{"owner":"ada"}"#,
            "--expected-version",
            "no-stream",
            "--idempotency-key",
            "k1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let result: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(result["last_version"], 1);
    assert_eq!(result["replayed"], false);

    let again = rillflow(
        &db,
        &[
            "events",
            "append",
            "--stream",
            STREAM,
            "--type",
            "Opened",
            "--data",
            r#"{"owner":"ada"}"#,
            "--expected-version",
            "no-stream",
            "--idempotency-key",
            "k1",
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&again)).unwrap()["replayed"],
        true
    );
    // The key with other data is no retry: one line naming the key.
    let reused = rillflow(
        &db,
        &[
            "events",
            "append",
            "--stream",
            STREAM,
            "--type",
            "Opened",
            "--data",
            r#"{"owner":"eve"}"#,
            "--idempotency-key",
            "k1",
        ],
    );
    let err = one_line_failure(&reused, 1);
    assert!(err.contains("idempotency key k1"), "{err}");
    assert!(stdout(&reused).is_empty());

    let out = rillflow(
        &db,
        &[
            "events",
            "append",
            "--stream",
            STREAM,
            "--type",
            "Renamed",
            "--data",
            r#"{"to":"bob"}"#,
            "--expected-version",
            "1",
            "--headers",
            r#"{"by":"cli"}"#,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(versions(&db), vec![1, 2]);

    let table = rillflow(&db, &["events", "read", "--stream", STREAM, "--from", "2"]);
    let text = stdout(&table);
    assert!(text.lines().next().unwrap().contains("VERSION"), "{text}");
    assert!(
        text.contains("Renamed") && !text.contains("Opened"),
        "{text}"
    );

    let tail = rillflow(&db, &["events", "tail", "--once"]);
    assert!(tail.status.success(), "{}", stderr(&tail));
    let lines: Vec<Value> = stdout(&tail)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["headers"]["by"], "cli");

    let first_pos = lines[0]["position"].as_i64().unwrap().to_string();
    let rest = rillflow(&db, &["events", "tail", "--once", "--from", &first_pos]);
    assert_eq!(stdout(&rest).lines().count(), 1);
}

#[tokio::test]
async fn bad_input_is_one_line_and_writes_nothing() {
    let db = TestDb::migrated().await;
    let ok = rillflow(
        &db,
        &[
            "events", "append", "--stream", STREAM, "--type", "A", "--data", "{}",
        ],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    let long_key = "k".repeat(100_000);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--stream", "not-a-uuid", "--type", "A", "--data", "{}"],
            2,
            "--stream",
        ),
        (
            vec!["--stream", STREAM, "--type", "A", "--data", "{oops"],
            2,
            "not valid JSON",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "{}",
                "--expected-version",
                "soon",
            ],
            2,
            "expected version",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "{}",
                "--headers",
                "[1]",
            ],
            2,
            "JSON object",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "{}",
                "--expected-version",
                "no-stream",
            ],
            1,
            "stream is at version 1",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "{}",
                "--expected-version",
                "7",
            ],
            1,
            "expected 7",
        ),
        (
            vec!["--stream", STREAM, "--type", " ", "--data", "{}"],
            2,
            "event type must not be empty",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "Paid\u{1b}[2J",
                "--data",
                "{}",
            ],
            2,
            "control character (U+001B)",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "{}",
                "--idempotency-key",
                &long_key,
            ],
            2,
            "100000 bytes long; at most 512",
        ),
        (
            vec!["--stream", STREAM, "--type", "A", "--data", "@/dev/zero"],
            2,
            "larger than the 16 MiB allowed",
        ),
        (
            vec![
                "--stream",
                STREAM,
                "--type",
                "A",
                "--data",
                "@/nonexistent.json",
            ],
            2,
            "cannot read /nonexistent.json",
        ),
    ];
    for (args, code, needle) in cases {
        let mut full = vec!["events", "append"];
        full.extend(&args);
        let out = rillflow(&db, &full);
        let err = one_line_failure(&out, code);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.len() < 400, "the value is not echoed whole: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "no raw escape reaches the terminal: {err:?}"
        );
        assert!(stdout(&out).is_empty());
    }
    assert_eq!(versions(&db), vec![1], "no failed command wrote anything");

    let out = rillflow(&db, &["events", "tail", "--once", "--from", "999999"]);
    assert!(one_line_failure(&out, 1).contains("no event at position 999999"));
}

#[tokio::test]
async fn payloads_come_from_files_and_stdin() {
    use std::io::Write;

    let db = TestDb::migrated().await;
    let big = format!(
        r#"{{"blob": "{}", "amount": 0.1000000000000000000001}}"#,
        "x".repeat(3 << 20)
    );
    let dir = std::env::temp_dir().join(format!("rillflow-payload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.json");
    std::fs::write(&file, &big).unwrap();
    let from_file = format!("@{}", file.display());
    let out = rillflow(
        &db,
        &[
            "events", "append", "--stream", STREAM, "--type", "Big", "--data", &from_file,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let piped = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rillflow"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A command that refuses early may not read it all.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    };
    let append = [
        "events", "append", "--stream", STREAM, "--type", "Piped", "--data", "-",
    ];
    let out = piped(
        &[&append[..], &["--headers", r#"{"via": "stdin"}"#]].concat(),
        &big,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let read = stdout(&rillflow(
        &db,
        &["events", "read", "--stream", STREAM, "--output", "json"],
    ));
    let events: Value = serde_json::from_str(&read).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 2);
    for e in events.as_array().unwrap() {
        assert_eq!(e["data"]["blob"].as_str().unwrap().len(), 3 << 20);
        assert_eq!(e["data"]["amount"].to_string(), "0.1000000000000000000001");
    }
    // Two options cannot both read stdin.
    let out = piped(&[&append[..], &["--headers", "-"]].concat(), "{}");
    let err = one_line_failure(&out, 2);
    assert!(err.contains("only one option can read stdin"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `db start` / `db url` / `db stop` manage a real cluster in a directory of
/// the caller's choosing, and commands without a URL use it.
#[test]
fn local_database_lifecycle() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("db-lifecycle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rillflow"))
            .args(args)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let no_server = Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args(["db", "start", "--dir", dir_arg])
        .env("RILLFLOW_PG_BIN", "/nonexistent")
        .output()
        .unwrap();
    assert!(one_line_failure(&no_server, 1).contains("has no initdb"));
    let url_before = run(&["db", "url", "--dir", dir_arg]);
    assert!(one_line_failure(&url_before, 1).contains("rillflow db start"));

    let started = run(&["db", "start", "--dir", dir_arg]);
    assert!(started.status.success(), "{}", stderr(&started));
    let url = stdout(&started).trim().to_owned();
    assert!(
        url.starts_with("postgres://rillflow:") && url.contains("@127.0.0.1:"),
        "{url}"
    );
    assert_eq!(stdout(&run(&["db", "url", "--dir", dir_arg])).trim(), url);
    let again = run(&["db", "start", "--dir", dir_arg]);
    assert_eq!(stdout(&again).trim(), url, "starting twice is harmless");

    let migrated = Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));

    let stopped = run(&["db", "stop", "--dir", dir_arg]);
    assert!(stdout(&stopped).contains("stopped"), "{}", stdout(&stopped));
    assert!(stdout(&run(&["db", "stop", "--dir", dir_arg])).contains("was not running"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `events tail` follows new events as they commit and stops on SIGINT.
#[tokio::test]
async fn tail_follows_until_interrupted() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let db = TestDb::migrated().await;
    let mut tail = Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args(["events", "tail", "--poll-ms", "20"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tail");
    let out = rillflow(
        &db,
        &[
            "events", "append", "--stream", STREAM, "--type", "Live", "--data", "{}",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let stdout = tail.stdout.take().unwrap();
    let reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().next().map(|l| l.unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "tail printed nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let line: Value = serde_json::from_str(&reader.join().unwrap().expect("a line")).unwrap();
    assert_eq!(line["event_type"], "Live");

    let killed = Command::new("kill")
        .args(["-INT", &tail.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = tail.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "tail ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "tail exits cleanly on SIGINT: {status}");
}

/// Completion scripts come from the clap definitions, so every subcommand
/// is in them; the bash one is valid bash. An unknown shell is one line.
#[test]
fn completions_cover_every_subcommand() {
    let bin = env!("CARGO_BIN_EXE_rillflow");
    let script = |shell: &str| {
        let out = Command::new(bin)
            .args(["completions", shell])
            .output()
            .expect("run rillflow");
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        stdout(&out)
    };
    for shell in ["bash", "zsh", "fish"] {
        let text = script(shell);
        for word in [
            "run-loop",
            "repartition",
            "owners",
            "archive",
            "migrate",
            "completions",
        ] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    let dir = std::env::temp_dir().join(format!("rillflow-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rillflow.bash");
    std::fs::write(&file, script("bash")).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("run bash");
    assert!(syntax.status.success(), "{}", stderr(&syntax));
    let out = Command::new(bin)
        .args(["completions", "tcsh"])
        .output()
        .expect("run rillflow");
    let err = one_line_failure(&out, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

/// `health score` judges each cluster from the database and names what
/// lowers its score; `--fail-below` turns a low score into exit status 3.
#[tokio::test]
async fn health_score_names_what_lowers_it() {
    use rillflow_testkit::lease_fixtures::{join, setup, C};

    let (db, store) = setup().await;
    join(&store, ["a", "b"]).await;
    let out = rillflow(&db, &["health", "score", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cluster = &v["clusters"][0];
    assert_eq!(cluster["cluster"], C);
    // Two cold nodes, one standby required, nobody hot: the hot half of the
    // score is lost, nothing else.
    assert_eq!(cluster["score"], 50, "{v}");
    assert_eq!(cluster["healthy"], false);
    let reasons = cluster["deductions"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{v}");
    assert_eq!(reasons[0]["points"], 50.0);
    assert!(reasons[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("no hot node"));

    let table = rillflow(&db, &["health", "score", "--cluster", C]);
    assert!(
        stdout(&table).contains("50/100, unhealthy"),
        "{}",
        stdout(&table)
    );
    let below = rillflow(&db, &["health", "score", "--fail-below", "80"]);
    let err = one_line_failure(&below, 3);
    assert!(err.contains("below 80"), "{err}");
    assert!(stdout(&below).contains("50/100"));
    let ok = rillflow(&db, &["health", "score", "--fail-below", "50"]);
    assert!(ok.status.success());
    let unknown = rillflow(&db, &["health", "score", "--cluster", "nope"]);
    let err = one_line_failure(&unknown, 1);
    assert!(err.contains("no cluster named"), "{err}");
    let bad = rillflow(&db, &["health", "score", "--fail-below", "101"]);
    one_line_failure(&bad, 2);
}

/// `diag bundle` writes every section from the database and no secret.
/// A password never reaches the bundle or an error line, wherever the
/// connection string carries it: userinfo, `password=` or `sslpassword=`
/// in the query.
#[tokio::test]
async fn passwords_in_query_strings_stay_out_of_bundles_and_errors() {
    let db = TestDb::migrated().await;
    let (scheme_user, rest) = db.url.split_once('@').expect("the test URL has userinfo");
    let (scheme, userinfo) = scheme_user.split_once("://").unwrap();
    let Some((user, password)) = userinfo.split_once(':') else {
        return; // a DATABASE_URL without a password has nothing to leak
    };
    let sep = if rest.contains('?') { '&' } else { '?' };
    let url = format!("{scheme}://{user}@{rest}{sep}password={password}");
    let dir = std::env::temp_dir().join(format!("rillflow-diag-q-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.json");
    let out = Command::new(env!("CARGO_BIN_EXE_rillflow"))
        .args(["diag", "bundle", "--output", file.to_str().unwrap()])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(password),
        "the password leaked from the query"
    );
    assert!(text.contains("password=[redacted]"), "{text}");

    for bad in [
        "postgres://nobody:topsecret@127.0.0.1:1/none?sslpassword=k3yk3y",
        "postgres://nobody@127.0.0.1:notaport/none?password=topsecret",
        "host=127.0.0.1 port=1 password=topsecret",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rillflow"))
            .args(["events", "read", "--stream", STREAM, "--database-url", bad])
            .output()
            .unwrap();
        // Everything printed: sqlx also warns about parameters it ignores.
        assert!(!out.status.success(), "{bad}");
        let err = stderr(&out);
        assert!(
            !err.contains("topsecret") && !err.contains("k3yk3y"),
            "{bad}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn diag_bundle_collects_every_section_without_secrets() {
    use rillflow_testkit::lease_fixtures::{join, setup, C};

    let (db, store) = setup().await;
    join(&store, ["a", "b"]).await;
    let dir = std::env::temp_dir().join(format!("rillflow-diag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bundle.json");
    let out = rillflow(&db, &["diag", "bundle", "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let password = db
        .url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .and_then(|auth| auth.split(':').nth(1))
        .expect("the test URL carries a password");
    assert!(!text.contains(password), "the password leaked");
    let v: Value = serde_json::from_str(&text).unwrap();
    for section in [
        "database",
        "migrations",
        "clusters",
        "projections",
        "dead_letters",
        "archive",
        "tenancy",
        "recent_errors",
    ] {
        assert!(
            v[section].get("error").is_none(),
            "{section}: {}",
            v[section]
        );
    }
    assert_eq!(v["migrations"]["pending"], serde_json::json!([]));
    assert!(v["config"]["database_url"]
        .as_str()
        .unwrap()
        .contains("[redacted]"));
    assert_eq!(v["clusters"]["scores"][0]["cluster"], C);
    assert_eq!(v["archive"]["status"]["backend"], "dual-table");
    assert_eq!(v["tenancy"]["schema"], "public");

    let bad = rillflow(
        &db,
        &["diag", "bundle", "--output", "/nonexistent/dir/b.json"],
    );
    let err = one_line_failure(&bad, 1);
    assert!(err.contains("is not a directory"), "{err}");
}
