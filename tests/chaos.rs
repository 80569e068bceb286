//! Failover under load with real processes, real signals and a real
//! Postgres of the test's own (see `tests/support/chaos/`). The full run is
//! `cargo run --release -p rillflow-testkit --bin chaos`; these are its
//! short forms, with the spec's named check.

use std::path::PathBuf;

use rillflow_testkit::chaos::{run, ChaosConfig};

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

/// The run's own directory: two runs of the suite at once (a load test)
/// must not share the server the harness starts and wipes. Removed once the
/// run passed; kept with its logs when it failed.
fn work_dir(test: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("chaos")
        .join(format!("{test}-{}", std::process::id()))
}

/// Every kind of fault once or twice over about 10k events: nothing lost,
/// doubled or invented, and every fault ends in a resumed projection.
#[tokio::test]
async fn chaos_short_run_loses_and_doubles_nothing() {
    let config = ChaosConfig::short(BIN.into(), work_dir("short"));
    let report = run(&config, |line| eprintln!("{line}"))
        .await
        .expect("chaos run");
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    assert!(report.acknowledged >= config.min_events);
    assert_eq!(report.stored, report.acknowledged, "{report}");
    assert_eq!(report.applied, report.stored, "{report}");
    let kinds = [
        "kill -9 hot node",
        "SIGSTOP hot node past lease",
        "SIGINT handoff",
        "pg_terminate_backend",
        "pg_terminate_backend of the lease session",
        "Postgres restart",
    ];
    for kind in kinds {
        assert!(
            report.faults.iter().any(|f| f.kind == kind),
            "{kind} was injected"
        );
    }
    let _ = std::fs::remove_dir_all(&config.work_dir);
}

/// The spec's stress check: three nodes, the leader killed mid-batch three
/// times while events keep coming; the projection's total is exact.
#[tokio::test]
async fn rapid_failover_stress_executes_all_events() {
    let config = ChaosConfig {
        min_events: 3_000,
        kills: 3,
        freezes: 0,
        handoffs: 0,
        terminations: 0,
        lease_session_ends: 0,
        pg_restarts: 0,
        ..ChaosConfig::short(BIN.into(), work_dir("rapid"))
    };
    let report = run(&config, |line| eprintln!("{line}"))
        .await
        .expect("chaos run");
    assert!(report.passed(), "{report}");
    assert_eq!(report.faults.len(), 3);
    assert_eq!(report.applied, report.acknowledged, "{report}");
    assert_eq!(report.duplicates, 0);
    let _ = std::fs::remove_dir_all(&config.work_dir);
}
