//! Every `rillflow` command the docs show, checked against the real binary,
//! so that the docs cannot drift away from the CLI.
//!
//! **Where commands come from.** Fenced code blocks marked `sh`, `bash`,
//! `shell`, `console` or nothing, in README.md, docs/*.md and
//! deploy/**/README.md. docs/reference.md is left out: it is the `--help`
//! output itself, generated and checked by tests/cli_reference.rs.
//!
//! **What counts as a command.** A shell line (continuation lines ending in
//! `\` joined, `# comments` dropped) is split into simple commands at `;`,
//! `&&`, `||`, `&`, `$(`, `(` and `)`. A simple command is a rillflow
//! command when, after `NAME=value` assignments and `sudo`/`env`/`time`/
//! `exec`/`nohup`, it starts with `rillflow` (or a path ending in
//! `/rillflow`); when it is `cargo run ... --bin rillflow ... -- ARGS` (or
//! `-p rillflow` without `--bin`); or when it is a `docker`, `kubectl` or
//! `podman` command containing the word `rillflow` (as in `docker compose
//! exec node-a rillflow ...`). `install ... /usr/local/bin/rillflow` or
//! `cargo build -p rillflow` are not commands.
//!
//! **The notation for a command's shape**, and how it is read:
//! - `[...]` is an optional group: the command is checked without any group,
//!   and with each group alone (not all at once: groups may exclude each
//!   other, like `migrate [--down N] [--status]`). `...` stands for "more"
//!   and is dropped.
//! - `a|b` inside a word lists alternatives (`--output table|json`,
//!   `db start|url|stop`): each is checked.
//! - ` | ` between words is either a shell pipe or, when the word after it is
//!   a sibling subcommand of the command before it (as in `projections list |
//!   status NAME`), another command with the same parent. The subcommand tree
//!   is read from the binary's own `--help`, so this stays right as commands
//!   are added.
//! - Placeholders (`NAME`, `FILE`, `N`, `UUID`, `<uuid>`, `$DATABASE_URL`,
//!   ...) are replaced by example values chosen by the option they belong to
//!   (`--name N` is a projection name, `--partitions N` a count). A
//!   placeholder without a known example fails the test, naming it, rather
//!   than being guessed.
//! - Every `--database-url` value is replaced by the database under test: a
//!   URL in the docs names a server that does not exist here.
//!
//! **Check 1, the parser.** Each variant runs with its arguments in a sandbox
//! where it can do nothing: an empty working directory, `DATABASE_URL` (and
//! every `--database-url`) set to a string that is not a URL, so any command
//! that needs the database fails at once after parsing, and
//! `RILLFLOW_PG_BIN` pointing at an empty directory, so the local-database
//! commands (`db start`, and anything without a URL) fail before creating or
//! stopping a server. The binary turns every clap rejection (unknown command
//! or flag, bad value, missing or conflicting argument) into exit status 2
//! and nothing else exits with 2 (errors are 1, `health score --fail-below`
//! is 3), so status 2 is the parser's verdict. Nothing is guessed from
//! timing; `the_parser_check_tells_accepted_from_rejected` pins that
//! contract.
//!
//! **Check 2, for real.** The commands that are safe to run and need no
//! running daemon are executed against a scratch database holding a small
//! fixture: a stream with events, the example projections caught up with one
//! dead letter, and registered hot/cold clusters `billing` and `projections`.
//! Commands that change something get a fresh copy of the fixture each, so
//! the order of the docs does not matter; read-only ones share one copy. They
//! must exit 0 (`health score --fail-below` may also exit 3, its documented
//! "below the threshold"). Variants that pick another alternative of a value
//! (`--output json` for `table|json`) are only parse-checked: clap checks
//! such enumerations completely. Daemons (`run-loop`), `promote`/`demote`
//! (they need live nodes), `demo` (tests/demo.rs), `db ...` (they manage
//! local servers) and `events tail` without `--once` (it follows forever)
//! are parse-checked only.
//!
//! A failure names the doc file, the line and the command as written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rillflow_adapters::daemon::{LeaseStore, NodeIdentity, PgLeaseStore};
use rillflow_adapters::NewEvent;
use rillflow_core::lease::ClusterTiming;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{rillflow_bin, TestDb};
use serde_json::json;
use uuid::Uuid;

mod binary;
mod examples;
mod for_real;
mod reader_tests;
mod reading;
mod variants;

use binary::*;
use examples::*;
use reading::*;
use variants::*;

// Check 1: every command against the parser.

#[test]
fn every_documented_command_is_accepted_by_the_parser() {
    let bin = rillflow_bin();
    let tree = command_tree(&bin);
    let commands = all_doc_commands(&tree);
    let sandbox = Sandbox::new();
    let examples = sandbox.examples();
    let mut failures = Vec::new();
    let mut checked = 0;
    for cmd in &commands {
        let variants = match variants(cmd) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: `{}`: {e}", cmd.place, cmd.line));
                continue;
            }
        };
        for v in variants {
            let args = match examples.concrete(&v.words) {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("{}: {e}", describe(cmd, &v.words)));
                    continue;
                }
            };
            checked += 1;
            match sandbox.rejection(&bin, &args) {
                Ok(None) => {}
                Ok(Some(why)) => failures.push(format!(
                    "{}\n    rejected by the parser: {why}",
                    describe(cmd, &args)
                )),
                Err(e) => failures.push(format!("{}\n    {e}", describe(cmd, &args))),
            }
        }
    }
    eprintln!(
        "{} documented commands, {checked} variants parse-checked",
        commands.len()
    );
    // Finding few commands, or none in a guide that shows some, means the
    // reader broke, not that the docs are fine.
    for doc in [
        "README.md",
        "docs/hotcold.md",
        "docs/deployment.md",
        "deploy/README.md",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.place.starts_with(&format!("{doc}:"))),
            "no rillflow command found in {doc}"
        );
    }
    assert!(
        commands.len() >= 60,
        "only {} commands found",
        commands.len()
    );
    assert!(
        failures.is_empty(),
        "{} documented command(s) do not match the CLI:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The sandbox's verdict is only as good as the exit status contract; this
/// pins it on arguments whose verdict is known.
#[test]
fn the_parser_check_tells_accepted_from_rejected() {
    let bin = rillflow_bin();
    let sandbox = Sandbox::new();
    let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    for good in [
        "projections list",
        "projections run-loop --cluster-mode hotcold --cluster-name billing --health-bind 0.0.0.0:9464",
        "db start --dir .rillflow",
        "health score --fail-below 80",
        "completions bash",
        "migrate --down 1",
    ] {
        assert_eq!(
            sandbox.rejection(&bin, &args(good)).unwrap(),
            None,
            "{good} is valid"
        );
    }
    for bad in [
        "projections list --no-such-flag",
        "projections nonsense",
        "events read --stream not-a-uuid",
        "projections promote --cluster billing",
        "migrate --down 1 --status",
        "archive redirect --enable maybe",
        "completions tcsh",
    ] {
        assert!(
            sandbox.rejection(&bin, &args(bad)).unwrap().is_some(),
            "{bad} must be rejected"
        );
    }
    // Nothing was created where the sandbox ran them (`db start` included).
    let left: Vec<_> = std::fs::read_dir(&sandbox.dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "the sandbox stays empty: {left:?}");
}
