//! The `rillflow` binary for the tests of this package.
//!
//! Tests registered in `bins/Cargo.toml` get the binary's path from Cargo
//! (`CARGO_BIN_EXE_rillflow`); tests of this package do not, so they find it
//! next to their own executable, where `cargo build` and `cargo test
//! --workspace` put it. A missing or stale binary fails the test with the
//! command that fixes it, rather than letting it pass on an old CLI.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `RILLFLOW_BIN` when set (a binary chosen on purpose, used as it is), else
/// `target/<profile>/rillflow` of this build, which must be newer than every
/// source it is built from.
pub fn rillflow_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("RILLFLOW_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "RILLFLOW_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test> -> target/<profile>/rillflow
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("rillflow"))
        .expect("the test runs from target/<profile>/deps");
    assert!(
        bin.is_file(),
        "no rillflow binary at {}: run `cargo build -p rillflow` first (or `cargo test --workspace`)",
        bin.display()
    );
    let built = modified(&bin);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // What goes into the binary: not core/tests, whose edits rebuild no binary.
    let newer: Vec<PathBuf> = [
        "bins/src",
        "bins/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "adapters/src",
        "adapters/build.rs",
        "adapters/Cargo.toml",
        "sql",
        "Cargo.lock",
        "Cargo.toml",
    ]
    .iter()
    .flat_map(|rel| files(&root.join(rel)))
    .filter(|f| modified(f) > built)
    .collect();
    assert!(
        newer.is_empty(),
        "{} is older than {} (and maybe more): run `cargo build -p rillflow` first",
        bin.display(),
        newer[0].display()
    );
    bin
}

fn modified(path: &Path) -> SystemTime {
    path.metadata()
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the modification time of {}: {e}",
                path.display()
            )
        })
}

/// `path` itself when it is a file, else every file below it.
fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            out.extend(files(&entry.path()));
        }
    }
    out
}
