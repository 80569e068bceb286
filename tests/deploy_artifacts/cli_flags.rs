//! Every rillflow command line of the artifacts, against the `--help` of a
//! freshly built binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::compose::COMPOSE;
use crate::k8s_hotcold::{kind, HOTCOLD};
use crate::systemd::{exec_start, Unit, UNIT};
use crate::{read, root, strings, yaml};

/// Every rillflow command line in the artifacts: (where, arguments).
fn command_lines() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let unit = Unit::parse(&read(UNIT));
    out.push((UNIT.to_owned(), exec_start(&unit)[1..].to_vec()));
    let compose = yaml(COMPOSE);
    for (key, svc) in compose[0]["services"].as_hash().unwrap() {
        if svc["image"].as_str() == Some("rillflow:latest") {
            let args = strings(&svc["command"])
                .into_iter()
                .map(str::to_owned)
                .collect();
            out.push((format!("{COMPOSE} {}", key.as_str().unwrap()), args));
        }
    }
    for doc in yaml(HOTCOLD) {
        if kind(&doc) == "Deployment" {
            for c in doc["spec"]["template"]["spec"]["containers"]
                .as_vec()
                .unwrap()
            {
                out.push((
                    HOTCOLD.to_owned(),
                    strings(&c["args"]).into_iter().map(str::to_owned).collect(),
                ));
            }
        }
    }
    out
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let t = if path.is_dir() {
            newest(&path)
        } else {
            path.metadata().unwrap().modified().unwrap()
        };
        latest = latest.max(t);
    }
    latest
}

#[test]
fn the_artifacts_use_only_flags_the_cli_has() {
    // The binary this workspace built, next to the test executable's deps/
    // directory (`cargo test --workspace` builds it). A missing or stale one
    // cannot speak for the current CLI.
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("rillflow"))
        .filter(|b| b.is_file());
    let Some(bin) = bin else {
        eprintln!("note: no built rillflow binary; flags not checked against the CLI");
        return;
    };
    let built = bin.metadata().unwrap().modified().unwrap();
    if built < newest(&root().join("bins/src")) {
        eprintln!(
            "note: {} is older than bins/src; flags not checked against the CLI",
            bin.display()
        );
        return;
    }
    let mut helps: BTreeMap<Vec<String>, String> = BTreeMap::new();
    for (place, args) in command_lines() {
        let path: Vec<String> = args
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        assert!(!path.is_empty(), "{place}: no subcommand");
        let help = helps.entry(path.clone()).or_insert_with(|| {
            let out = Command::new(&bin)
                .args(&path)
                .arg("--help")
                .output()
                .expect("run rillflow --help");
            assert!(
                out.status.success(),
                "{place}: `rillflow {} --help` failed: {}",
                path.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        });
        for f in args.iter().filter(|a| a.starts_with("--")) {
            let known = help.match_indices(f.as_str()).any(|(at, _)| {
                !help[at + f.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
            });
            assert!(
                known,
                "{place}: `rillflow {}` has no flag {f}",
                path.join(" ")
            );
        }
    }
}
