//! The Dockerfile: a multi-stage build of rillflow whose runtime stage runs
//! it unprivileged.

use std::collections::BTreeSet;

use crate::{read, root};

const DOCKERFILE: &str = "deploy/Dockerfile";

/// Dockerfile instructions (keyword upper-cased, arguments), continuation
/// lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in read(DOCKERFILE).lines() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            pending.push_str(body);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let (op, args) = full
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((&full, ""));
        out.push((op.to_uppercase(), args.trim().to_owned()));
    }
    out
}

/// The workspace's members, from the root Cargo.toml.
fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members");
    let list = line.split_once('[').unwrap().1.split_once(']').unwrap().0;
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn the_dockerfile_builds_rillflow_in_stages_and_runs_it_unprivileged() {
    let ins = dockerfile();
    let stages: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| op == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "multi-stage");
    let (builder, runtime) = (&ins[stages[0]].1, &ins[*stages.last().unwrap()].1);
    let builder_words: Vec<&str> = builder.split_whitespace().collect();
    let builder_image = builder_words[0];
    assert!(
        builder_image.starts_with("rust:1.95"),
        "builder: {builder_image}"
    );
    assert_eq!(
        builder_words[1..].join(" ").to_lowercase(),
        "as builder",
        "the first stage is named builder"
    );
    let runtime_image = runtime.split_whitespace().next().unwrap();
    let codename = runtime_image
        .strip_prefix("debian:")
        .and_then(|t| t.strip_suffix("-slim"))
        .unwrap_or_else(|| panic!("runtime {runtime_image} is not debian:<release>-slim"));
    assert!(
        builder_image.ends_with(&format!("-{codename}")),
        "builder {builder_image} and runtime {runtime_image} must be the same Debian \
         release, or the binary may need a newer glibc than the runtime has"
    );

    let build_stage = &ins[stages[0]..stages[1]];
    let runtime_stage = &ins[*stages.last().unwrap()..];
    assert!(
        build_stage.iter().any(|(op, a)| {
            let words: Vec<&str> = a.split_whitespace().collect();
            op == "RUN"
                && words.windows(2).any(|w| w == ["cargo", "build"])
                && words.contains(&"--release")
                && words
                    .windows(2)
                    .any(|w| w == ["-p", "rillflow"] || w == ["--package", "rillflow"])
        }),
        "the builder runs `cargo build --release -p rillflow`"
    );
    // Cargo loads every member's manifest, and the migrations are compiled
    // in: a member or sql/ left out of the context breaks the image build.
    let copied: BTreeSet<String> = build_stage
        .iter()
        .filter(|(op, a)| op == "COPY" && !a.starts_with("--"))
        .flat_map(|(_, a)| {
            let words: Vec<&str> = a.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.trim_end_matches('/').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    for needed in workspace_members().into_iter().chain([
        "Cargo.toml".into(),
        "Cargo.lock".into(),
        "sql".into(),
    ]) {
        assert!(
            copied.contains(&needed),
            "the builder does not copy {needed} (copies {copied:?})"
        );
    }
    for path in &copied {
        assert!(root().join(path).exists(), "COPY {path}: no such path");
    }

    assert!(
        runtime_stage
            .iter()
            .any(|(op, a)| op == "COPY" && a.starts_with("--from=builder")),
        "the runtime copies the binary from the builder"
    );
    let user = runtime_stage
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, a)| a.as_str())
        .expect("USER in the runtime stage");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as root: USER {user}");
    let entry = runtime_stage
        .iter()
        .rev()
        .find(|(op, _)| op == "ENTRYPOINT")
        .map(|(_, a)| a.as_str())
        .expect("ENTRYPOINT");
    let entry: Vec<String> = serde_json::from_str(entry).unwrap_or_else(|_| {
        panic!("ENTRYPOINT in exec (JSON) form, so SIGTERM reaches rillflow: {entry}")
    });
    assert_eq!(entry, ["rillflow"]);
}
