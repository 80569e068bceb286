//! docs/reference.md is the CLI's own `--help`, every command and
//! subcommand, so the reference cannot drift from the binary. After
//! changing the CLI, regenerate it with
//! `RILLFLOW_BLESS=1 cargo test -p rillflow --test cli_reference`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

/// `rillflow <path> --help`.
fn help(path: &[String]) -> String {
    let out = Command::new(BIN)
        .args(path)
        .arg("--help")
        .env_remove("DATABASE_URL")
        .env_remove("PARTITION_KEY")
        .env_remove("TOTAL_PARTITIONS")
        .env_remove("PARTITIONS")
        .env("COLUMNS", "100")
        .output()
        .expect("run rillflow --help");
    assert!(out.status.success(), "{path:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists (its `Commands:` section), `help`
/// itself left out.
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

fn walk(path: Vec<String>, out: &mut String) {
    let text = help(&path);
    let level = "#".repeat((path.len() + 1).min(4));
    let title = if path.is_empty() {
        "rillflow".to_owned()
    } else {
        format!("rillflow {}", path.join(" "))
    };
    out.push_str(&format!(
        "{level} `{title}`\n\n```text\n{}\n```\n\n",
        text.trim_end()
    ));
    for sub in subcommands(&text) {
        let mut next = path.clone();
        next.push(sub);
        walk(next, out);
    }
}

#[test]
fn the_reference_is_the_cli_help() {
    let mut generated = String::from(
        "<!-- Generated from `rillflow --help` by tests/cli_reference.rs; do not edit. -->\n\
         # Command reference\n\n\
         Every command and its options, as the binary prints them. Environment variables \
         named in brackets (`[env: ...]`) set the option when it is not given.\n\n",
    );
    walk(Vec::new(), &mut generated);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference.md");
    if std::env::var_os("RILLFLOW_BLESS").is_some() {
        std::fs::write(path, &generated).expect("write docs/reference.md");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/reference.md is out of date: run RILLFLOW_BLESS=1 cargo test -p rillflow --test cli_reference"
    );
}
