//! The demo's three hot/cold nodes: child processes of this binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

pub const CLUSTER: &str = "demo";
pub const NAMES: [&str; 3] = ["node-a", "node-b", "node-c"];

/// Running nodes, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Nodes {
    exe: PathBuf,
    url: String,
    projections: PathBuf,
    logs: PathBuf,
    children: Vec<(String, Child)>,
}

impl Nodes {
    /// Starts the three nodes; their logs go to `logs`.
    pub fn start(url: &str, projections: &Path, logs: &Path) -> Result<Nodes> {
        let mut nodes = Nodes {
            exe: std::env::current_exe().context("cannot find this program")?,
            url: url.to_owned(),
            projections: projections.to_owned(),
            logs: logs.to_owned(),
            children: Vec::new(),
        };
        for name in NAMES {
            nodes.spawn(name)?;
        }
        Ok(nodes)
    }

    fn spawn(&mut self, name: &str) -> Result<()> {
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))
            .context("cannot create a node log")?;
        let child = Command::new(&self.exe)
            .args(["projections", "run-loop", "--cluster-mode", "hotcold"])
            .args(["--cluster-name", CLUSTER, "--node-name", name])
            .args([
                "--heartbeat-secs",
                "1",
                "--lease-ttl-secs",
                "3",
                "--lease-grace-secs",
                "1",
            ])
            .args(["--poll-interval-ms", "200", "--projections"])
            .arg(&self.projections)
            .env("DATABASE_URL", &self.url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the node log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Kills `name` at once (SIGKILL), as a crash would.
    pub fn kill(&mut self, name: &str) -> Result<()> {
        if let Some(i) = self.children.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.children.remove(i);
            child.kill().context("cannot kill the node")?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Restarts `name` (it rejoins as a standby).
    pub fn restart(&mut self, name: &str) -> Result<()> {
        self.spawn(name)
    }

    /// Stops every node gracefully: SIGTERM, then SIGKILL after `limit`.
    pub fn stop(&mut self, limit: Duration) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = std::time::Instant::now() + limit;
        for (_, mut child) in self.children.drain(..) {
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
