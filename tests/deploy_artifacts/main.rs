//! The deployment kit under deploy/: the systemd unit and its env file, the
//! Dockerfile, the docker-compose cluster, the hot/cold Kubernetes
//! Deployment, the Prometheus alerts and the Grafana dashboard.
//!
//! Needs no database, no container runtime and no cluster. Every artifact is
//! parsed and checked for what the daemon depends on (flags, timings, metric
//! names, aggregation). Where `promtool`, `systemd-analyze` or a built
//! `rillflow` binary are at hand, they are run as well; without them those
//! checks print a note and pass.
//!
//! One module per artifact or concern:
//!
//! - `metrics`: the list of exported metric families, checked against the
//!   source and against what the alerts and the dashboard use;
//! - `promql`: the PromQL helpers the alert and dashboard checks rely on;
//! - `alerts`: the Prometheus alerting rules;
//! - `promtool`: the rules and the dashboard's queries run through
//!   `promtool`, with the rule unit tests in `data/`;
//! - `dashboard`: the Grafana dashboard;
//! - `systemd`, `systemd_env`: the systemd unit and its env file example;
//! - `dockerfile`, `compose`: the image and the docker-compose cluster;
//! - `k8s_hotcold`: the hot/cold Kubernetes Deployment;
//! - `cli_flags`: every command line of the artifacts against the CLI;
//! - `readme`: the deploy guide.
//!
//! This file holds the helpers several of them share: reading the files,
//! scratch directories, and the small parsers for durations and flags.

mod alerts;
mod cli_flags;
mod compose;
mod dashboard;
mod dockerfile;
mod k8s_hotcold;
mod metrics;
mod promql;
mod promtool;
mod readme;
mod systemd;
mod systemd_env;

use std::path::{Path, PathBuf};

use rillflow_core::lease::LeaseConfig;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

// ---------------------------------------------------------------------------
// Files.
// ---------------------------------------------------------------------------

/// The workspace root: this crate lives one level below it.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

pub(crate) fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every non-empty YAML document of one file.
pub(crate) fn yaml(rel: &str) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel}: not valid YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

pub(crate) fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: not valid JSON: {e}"))
}

/// A fresh scratch directory for one test.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rillflow-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `tool` on the PATH, if any.
pub(crate) fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// Small parsers.
// ---------------------------------------------------------------------------

/// Seconds in a systemd or compose duration: `45`, `45s`, `1min 30s`,
/// `1m30s`, `2h`, `500ms`.
pub(crate) fn seconds(text: &str) -> f64 {
    let mut total = 0.0;
    let mut rest = text.trim();
    assert!(!rest.is_empty(), "empty duration");
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("bad duration {text:?}"));
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "" | "s" | "sec" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" | "hr" => 3600.0,
            unit => panic!("unknown unit {unit:?} in duration {text:?}"),
        };
        total += n * factor;
        rest = rest[unit_len..].trim_start();
    }
    total
}

/// The value following `name` in `args`, if the flag is there.
pub(crate) fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| *a == name)?;
    Some(
        args.get(at + 1)
            .copied()
            .unwrap_or_else(|| panic!("{name} has no value")),
    )
}

/// The daemon's lease timing in `args` (defaults where a flag is absent),
/// validated by the daemon's own rule. Returns the lease ttl in seconds.
pub(crate) fn checked_ttl(args: &[&str], what: &str) -> f64 {
    let secs = |name: &str, default: u64| -> u64 {
        flag(args, name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{what}: {name} {v:?} is not a number"))
        })
    };
    let (heartbeat, ttl, grace) = (
        secs("--heartbeat-secs", 5),
        secs("--lease-ttl-secs", 30),
        secs("--lease-grace-secs", 5),
    );
    LeaseConfig::from_secs(heartbeat, ttl, grace)
        .validate()
        .unwrap_or_else(|e| panic!("{what}: the daemon would refuse this timing: {e}"));
    ttl as f64
}

pub(crate) fn strings(y: &Yaml) -> Vec<&str> {
    y.as_vec()
        .unwrap_or_else(|| panic!("expected a list, got {y:?}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("expected strings, got {v:?}"))
        })
        .collect()
}
