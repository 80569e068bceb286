//! Running the `rillflow` binary against a test's database.

use std::process::{Command, Output};

use serde_json::Value;

use crate::TestDb;

/// The binary, pointed at one test database, with no environment leaking
/// in from the caller (log level, partition settings).
pub struct CliRunner {
    bin: &'static str,
    url: String,
    env: Vec<(String, String)>,
}

impl CliRunner {
    /// `bin` (the test's `env!("CARGO_BIN_EXE_rillflow")`) on `db`.
    pub fn new(bin: &'static str, db: &TestDb) -> Self {
        CliRunner {
            bin,
            url: db.url.clone(),
            env: Vec::new(),
        }
    }

    /// `bin` on the database at `url` (a server of a `StandbyPair`, say).
    pub fn at_url(bin: &'static str, url: String) -> Self {
        CliRunner {
            bin,
            url,
            env: Vec::new(),
        }
    }

    /// The same, with `key=value` in every run's environment (a database
    /// tenant's password, say).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs `args` and returns what happened.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(self.bin)
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env_remove("RUST_LOG")
            .env_remove("PARTITION_KEY")
            .env_remove("TOTAL_PARTITIONS")
            .env_remove("RILLFLOW_TENANT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run rillflow")
    }

    /// Runs `args`, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `args`, asserts success and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("json output")
    }

    /// `projections run-until-idle` of `name` declared in `file`, once;
    /// its output.
    pub fn run_until_idle(&self, file: &str, name: &str) -> String {
        self.ok(&[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            name,
        ])
    }

    /// Runs `run-until-idle` for `name` whatever its exit status.
    pub fn run_until_idle_output(&self, file: &str, name: &str) -> Output {
        self.run(&[
            "projections",
            "run-until-idle",
            "--projections",
            file,
            "--name",
            name,
        ])
    }

    /// Runs `run-until-idle` until `name` has no lag: open transactions of
    /// the database (autovacuum's) may hold the visibility horizon back a
    /// moment.
    pub fn catch_up(&self, file: &str, name: &str) {
        let start = std::time::Instant::now();
        loop {
            self.run_until_idle(file, name);
            let s = self.json(&["projections", "status", name, "--output", "json"]);
            let lag: i64 = s["partitions"]
                .as_array()
                .expect("partitions")
                .iter()
                .map(|p| p["lag"].as_i64().expect("lag"))
                .sum();
            if lag == 0 {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "{name} never caught up: {s}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Asserts a failure (with exit status `code` when given) that printed one
/// line on stderr starting with `error: ` and nothing on stdout; returns it.
pub fn one_line_failure(out: &Output, code: Option<i32>) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, got: {err}");
    if let Some(code) = code {
        assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    }
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one error line, got: {err:?}"
    );
    assert!(err.starts_with("error: "), "{err:?}");
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

/// The line `run-until-idle` ends with when it leaves a read model
/// incomplete (handler warnings may come before it).
pub fn incomplete_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("error: incomplete: "), "{err}");
    last
}
