//! `rillflow demo`, the README's first command, as a newcomer runs it: on a
//! throwaway local PostgreSQL, and on a server named by DATABASE_URL. It
//! must pass its own verification and leave nothing behind.

use std::process::{Command, Output};

use rillflow_testkit::TestDb;

fn demo(envs: &[(&str, &str)], unset_url: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rillflow"));
    cmd.args(["demo", "--events", "400", "--streams", "8"])
        .env_remove("RUST_LOG");
    if unset_url {
        cmd.env_remove("DATABASE_URL");
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run rillflow demo")
}

fn assert_passed(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("PASS:"), "{stdout}");
    for line in [
        "events appended (acknowledged)          400",
        "events projected                        400",
        "missing from the read model             0",
        "applied more than once                  0",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    assert!(stderr.contains("[7/7]"), "progress shown: {stderr}");
}

#[tokio::test]
async fn the_demo_passes_on_a_scratch_database_and_drops_it() {
    let mut db = TestDb::migrated().await;
    let out = demo(&[("DATABASE_URL", &db.url)], false);
    assert_passed(&out);
    // Its scratch database is named after the demo's process id.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = stderr
        .split_whitespace()
        .find(|w| w.starts_with("rillflow_demo_"))
        .expect("the scratch database is named");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&db.pool().await)
            .await
            .unwrap();
    assert!(!exists, "{name} was dropped");
}

#[test]
fn the_demo_passes_on_a_throwaway_local_postgres_and_stops_it() {
    let out = demo(&[], true);
    assert_passed(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let dir = stderr
        .split_whitespace()
        .find(|w| w.contains("rillflow-demo-"))
        .expect("the demo names its directory");
    assert!(
        !std::path::Path::new(dir).exists(),
        "{dir} was removed with the server"
    );
}
