//! The three `rillflow projections run-loop` processes of a chaos run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Process;

/// The hot/cold cluster's processes, by node name. A node restarted after a
/// fault keeps its name; each incarnation logs to a file of its own.
pub struct Nodes {
    bin: PathBuf,
    url: String,
    projections: PathBuf,
    logs: PathBuf,
    running: BTreeMap<String, Process>,
    incarnations: BTreeMap<String, u32>,
}

/// The chaos cluster's name.
pub const CLUSTER: &str = "chaos";

impl Nodes {
    /// Starts `names` against `url`, running the projections in `projections`.
    pub fn start(bin: &Path, url: &str, projections: &Path, logs: &Path, names: &[&str]) -> Self {
        let mut nodes = Nodes {
            bin: bin.to_owned(),
            url: url.to_owned(),
            projections: projections.to_owned(),
            logs: logs.to_owned(),
            running: BTreeMap::new(),
            incarnations: BTreeMap::new(),
        };
        for name in names {
            nodes.spawn(name);
        }
        nodes
    }

    /// Starts `name` (again).
    pub fn spawn(&mut self, name: &str) {
        let n = self.incarnations.entry(name.to_owned()).or_default();
        *n += 1;
        let projections = self.projections.to_string_lossy().into_owned();
        let args = [
            "projections",
            "run-loop",
            "--cluster-mode",
            "hotcold",
            "--cluster-name",
            CLUSTER,
            "--node-name",
            name,
            "--heartbeat-secs",
            "1",
            "--lease-ttl-secs",
            "3",
            "--lease-grace-secs",
            "1",
            "--projections",
            &projections,
            "--poll-interval-ms",
            "100",
        ];
        let process = Process::spawn(
            &self.bin,
            &format!("{name}-{n}"),
            &self.url,
            &args,
            &self.logs,
        );
        self.running.insert(name.to_owned(), process);
    }

    /// Sends `sig` to `name`.
    pub fn signal(&self, name: &str, sig: &str) {
        self.running
            .get(name)
            .unwrap_or_else(|| panic!("node {name} is not running"))
            .signal(sig);
    }

    /// Waits for `name` to exit; false if it did not within `limit`.
    pub fn wait_exit(&mut self, name: &str, limit: Duration) -> bool {
        self.running
            .get_mut(name)
            .is_some_and(|p| p.wait_exit(limit).is_some())
    }

    /// Lines of every incarnation's log containing `needle`.
    pub fn count_in_logs(&self, needle: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.logs) else {
            return 0;
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|text| text.lines().filter(|l| l.contains(needle)).count())
            .sum()
    }
}
