//! Real `rillflow` processes for tests: spawn, signal, wait with deadlines.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned process, killed when dropped.
pub struct Process {
    child: Child,
    name: String,
}

impl Process {
    /// Starts `bin args...` with `DATABASE_URL` set; output goes to
    /// `target/tmp`-style log files named after `name` so failures can be read,
    /// at the level `RILLFLOW_TEST_RUST_LOG` gives (`info` without it).
    pub fn spawn(
        bin: &Path,
        name: &str,
        database_url: &str,
        args: &[&str],
        log_dir: &Path,
    ) -> Process {
        Self::spawn_with_env(bin, name, database_url, args, log_dir, &[])
    }

    /// [`Process::spawn`] with `env` added to the environment.
    pub fn spawn_with_env(
        bin: &Path,
        name: &str,
        database_url: &str,
        args: &[&str],
        log_dir: &Path,
        env: &[(&str, &str)],
    ) -> Process {
        std::fs::create_dir_all(log_dir).expect("log dir");
        let log = std::fs::File::create(log_dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(bin)
            .args(args)
            .env("DATABASE_URL", database_url)
            .env(
                "RUST_LOG",
                std::env::var("RILLFLOW_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn rillflow");
        Process {
            child,
            name: name.to_owned(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (INT, TERM, KILL, STOP, CONT).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} {} ({}) failed", self.child.id(), self.name);
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of `rillflow projections run-loop` for node `node` of the
/// hot/cold cluster `cluster`, at the fast timing the tests and the failover
/// benchmark use: heartbeat 1 s, lease ttl 3 s, grace 1 s.
pub fn fast_hotcold_args<'a>(cluster: &'a str, node: &'a str) -> Vec<&'a str> {
    vec![
        "projections",
        "run-loop",
        "--cluster-mode",
        "hotcold",
        "--cluster-name",
        cluster,
        "--node-name",
        node,
        "--heartbeat-secs",
        "1",
        "--lease-ttl-secs",
        "3",
        "--lease-grace-secs",
        "1",
    ]
}

/// The arguments of `rillflow projections run-loop --partitions auto` for
/// worker `name` of the projections in `file`, starting them with
/// `partitions` partitions, at the fast timing: heartbeat 1 s, partition
/// lease ttl 3 s, polling every 200 ms.
pub fn fast_auto_args<'a>(file: &'a str, name: &'a str, partitions: &'a str) -> Vec<&'a str> {
    vec![
        "projections",
        "run-loop",
        "--projections",
        file,
        "--partitions",
        "auto",
        "--total-partitions",
        partitions,
        "--node-name",
        name,
        "--heartbeat-secs",
        "1",
        "--lease-ttl-secs",
        "3",
        "--lease-grace-secs",
        "1",
        "--poll-interval-ms",
        "200",
    ]
}
