//! The systemd unit: a hot/cold node named by its instance, stopped with
//! time for the handover, hardened, and accepted by `systemd-analyze`.

use std::collections::BTreeSet;
use std::process::Command;

use crate::{checked_ttl, flag, read, scratch, seconds, which};

pub(crate) const UNIT: &str = "deploy/systemd/rillflow@.service";

/// A systemd unit: (section, key, value) in file order, continuation lines
/// joined, comments dropped.
pub(crate) struct Unit {
    entries: Vec<(String, String, String)>,
}

impl Unit {
    pub(crate) fn parse(text: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
                continue;
            }
            if let Some(body) = line.strip_suffix('\\') {
                pending.push_str(body);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let full = std::mem::take(&mut pending);
            let full = full.trim();
            if full.is_empty() {
                continue;
            }
            if full.starts_with('[') {
                section = full.trim_matches(['[', ']']).to_owned();
                continue;
            }
            let (key, value) = full
                .split_once('=')
                .unwrap_or_else(|| panic!("not a key=value line: {full:?}"));
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        Unit { entries }
    }

    fn sections(&self) -> BTreeSet<&str> {
        self.entries.iter().map(|(s, _, _)| s.as_str()).collect()
    }

    /// Every value of a key in a section, in order.
    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The effective value of a single-valued key (the last one wins).
    fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.all(section, key).last().copied()
    }
}

pub(crate) fn exec_start(unit: &Unit) -> Vec<String> {
    let all = unit.all("Service", "ExecStart");
    assert_eq!(all.len(), 1, "one ExecStart");
    all[0].split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_systemd_unit_runs_a_hotcold_node_named_by_its_instance() {
    let unit = Unit::parse(&read(UNIT));
    for s in ["Unit", "Service", "Install"] {
        assert!(unit.sections().contains(s), "no [{s}]");
    }
    let cmd = exec_start(&unit);
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    assert!(
        args[0].starts_with('/') && args[0].ends_with("/rillflow"),
        "ExecStart runs rillflow by absolute path: {}",
        args[0]
    );
    assert!(
        args.windows(2).any(|w| w == ["projections", "run-loop"]),
        "ExecStart runs `projections run-loop`: {args:?}"
    );
    assert_eq!(flag(&args, "--cluster-mode"), Some("hotcold"));
    assert!(flag(&args, "--cluster-name").is_some(), "--cluster-name");
    assert_eq!(
        flag(&args, "--node-name"),
        Some("%i"),
        "the instance name is the node name"
    );
    assert_eq!(
        flag(&args, "--projections"),
        Some("/etc/rillflow/projections.toml")
    );
    assert!(flag(&args, "--health-bind").is_some(), "--health-bind");
    assert!(
        flag(&args, "--database-url").is_none(),
        "the URL comes from the env file, not the command line (visible in ps)"
    );

    // DATABASE_URL comes from a file that must exist (no `-` prefix).
    let env_files = unit.all("Service", "EnvironmentFile");
    assert_eq!(env_files.first(), Some(&"/etc/rillflow/rillflow.env"));

    // Stop: SIGTERM, and time for the batch (cut at the ttl) and the handover.
    let ttl = checked_ttl(&args, UNIT);
    assert_eq!(unit.get("Service", "KillSignal"), Some("SIGTERM"));
    let stop = seconds(
        unit.get("Service", "TimeoutStopSec")
            .expect("TimeoutStopSec"),
    );
    assert!(
        stop > ttl,
        "TimeoutStopSec {stop}s must outlast the lease ttl {ttl}s"
    );
    assert_eq!(unit.get("Service", "Restart"), Some("on-failure"));
    assert_eq!(unit.get("Install", "WantedBy"), Some("multi-user.target"));
}

#[test]
fn the_systemd_unit_is_hardened() {
    let unit = Unit::parse(&read(UNIT));
    let get = |k: &str| unit.get("Service", k);
    let dynamic = get("DynamicUser") == Some("yes");
    let user = get("User");
    assert!(
        dynamic || user.is_some_and(|u| u != "root" && u != "0"),
        "runs as DynamicUser=yes or a dedicated User="
    );
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(get(key), Some(want), "{key}");
    }
    let families: BTreeSet<&str> = get("RestrictAddressFamilies")
        .expect("RestrictAddressFamilies")
        .split_whitespace()
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "TCP to Postgres and the health port, Unix sockets to a local Postgres"
    );
    let filters = unit.all("Service", "SystemCallFilter");
    assert!(
        filters
            .iter()
            .any(|f| f.split_whitespace().next() == Some("@system-service")),
        "SystemCallFilter=@system-service: {filters:?}"
    );
    assert_eq!(
        get("CapabilityBoundingSet"),
        Some(""),
        "an empty CapabilityBoundingSet= drops every capability"
    );
    assert!(
        unit.all("Service", "AmbientCapabilities")
            .iter()
            .all(|v| v.is_empty()),
        "no ambient capabilities"
    );
    assert!(
        unit.all("Service", "ReadWritePaths").is_empty(),
        "the daemon writes nothing to disk"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Some(analyze) = which("systemd-analyze") else {
        eprintln!("note: systemd-analyze not found; unit not verified");
        return;
    };
    // verify insists that ExecStart's program exists; point it at one that
    // does (the binary is not installed here), leaving everything else as is.
    let text = read(UNIT);
    let unit = Unit::parse(&text);
    let program = exec_start(&unit)[0].clone();
    let stand_in = which("true").expect("true(1)");
    let dir = scratch("systemd");
    let path = dir.join("rillflow@node-a.service");
    std::fs::write(
        &path,
        text.replacen(&program, &stand_in.display().to_string(), 1),
    )
    .unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown keys and unparsable values, which it only
    // reports ("Unknown key ...", "Failed to parse ..., ignoring"), so any
    // line about the unit fails the test.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rillflow@") || l.contains("ignoring"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
