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

// ---------------------------------------------------------------------------
// Reading the docs.
// ---------------------------------------------------------------------------

/// One rillflow command as a doc writes it, before variants are expanded.
#[derive(Debug, Clone, PartialEq)]
struct DocCommand {
    /// `path:line` of the line the command starts on.
    place: String,
    /// The shell line, continuation lines joined, for messages.
    line: String,
    /// The arguments after `rillflow`, still in doc notation.
    args: Vec<Word>,
}

/// A shell word. `open`/`close`: it began with an unquoted `[` or ended with
/// an unquoted `]` (an optional group), which are not part of `text`.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    quoted: bool,
    open: bool,
    close: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(Word),
    /// A separator (`;`, `&&`, `||`, `&`, `$(`, `(`, `)`), a redirection
    /// (`>`, `<`) or a standalone `|`.
    Op(String),
}

/// The subcommand tree: a command path and the names of its subcommands.
type Tree = BTreeMap<Vec<String>, BTreeSet<String>>;

/// Shell lines of the fenced shell blocks of `markdown`, continuation lines
/// joined: (1-based line number where the line starts, text).
fn shell_lines(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut shell = false;
    let mut console = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in markdown.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            if in_block {
                in_block = false;
                if let Some(p) = pending.take() {
                    out.push(p);
                }
            } else {
                in_block = true;
                let lang = info.split_whitespace().next().unwrap_or("");
                shell = matches!(lang, "" | "sh" | "bash" | "shell" | "console" | "zsh");
                console = lang == "console";
            }
            continue;
        }
        if !(in_block && shell) {
            continue;
        }
        let mut text = trimmed.to_owned();
        if console && pending.is_none() {
            match text.strip_prefix("$ ") {
                Some(rest) => text = rest.to_owned(),
                // Output lines of a console session are not commands.
                None => continue,
            }
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        if !joined.is_empty() {
            joined.push(' ');
        }
        match text.trim_end().strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head.trim_end());
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(text.trim_end());
                out.push((start, joined));
            }
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// Splits a shell line into words and operators; see the module comment.
fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut cur: Option<Word> = None;
    let new_word = || Word {
        text: String::new(),
        quoted: false,
        open: false,
        close: false,
    };
    let finish = |cur: &mut Option<Word>, toks: &mut Vec<Tok>| {
        if let Some(mut w) = cur.take() {
            if !w.quoted && w.text.ends_with(']') && w.text != "]" {
                w.text.pop();
                w.close = true;
            } else if !w.quoted && w.text == "]" {
                w.text.clear();
                w.close = true;
            }
            if !w.text.is_empty() || w.quoted || w.open || w.close {
                toks.push(Tok::Word(w));
            }
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at_word_start = cur.is_none();
        match c {
            ' ' | '\t' => finish(&mut cur, &mut toks),
            '#' if at_word_start => break,
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or("unterminated single quote")?;
                let w = cur.get_or_insert_with(new_word);
                w.text.extend(&chars[i + 1..i + 1 + end]);
                w.quoted = true;
                i += end + 1;
            }
            '"' => {
                let w = cur.get_or_insert_with(new_word);
                w.quoted = true;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => break,
                        Some('\\') if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            w.text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&x) => {
                            w.text.push(x);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                if let Some(&x) = chars.get(i + 1) {
                    cur.get_or_insert_with(new_word).text.push(x);
                    i += 1;
                }
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                finish(&mut cur, &mut toks);
                toks.push(Tok::Op("$(".into()));
                i += 1;
            }
            ';' | '(' | ')' => {
                finish(&mut cur, &mut toks);
                toks.push(Tok::Op(c.to_string()));
            }
            '&' => {
                finish(&mut cur, &mut toks);
                if chars.get(i + 1) == Some(&'&') {
                    toks.push(Tok::Op("&&".into()));
                    i += 1;
                } else if chars.get(i + 1) == Some(&'>') {
                    toks.push(Tok::Op(">".into()));
                    i += 1;
                } else {
                    toks.push(Tok::Op("&".into()));
                }
            }
            '>' | '<' => {
                // `2>` and the like: the descriptor digits are no word.
                if cur
                    .as_ref()
                    .is_some_and(|w| !w.quoted && w.text.chars().all(|d| d.is_ascii_digit()))
                {
                    cur = None;
                }
                finish(&mut cur, &mut toks);
                toks.push(Tok::Op(c.to_string()));
                while matches!(chars.get(i + 1), Some('>' | '&')) {
                    i += 1;
                }
            }
            '|' => {
                let spaced_before = i == 0 || chars[i - 1].is_whitespace();
                let next = chars.get(i + 1).copied();
                if next == Some('|') {
                    finish(&mut cur, &mut toks);
                    toks.push(Tok::Op("||".into()));
                    i += 1;
                } else if spaced_before || next.is_none_or(char::is_whitespace) {
                    finish(&mut cur, &mut toks);
                    toks.push(Tok::Op("|".into()));
                } else {
                    // `table|json`: alternatives inside one word.
                    cur.get_or_insert_with(new_word).text.push('|');
                }
            }
            '[' if at_word_start => {
                let mut w = new_word();
                w.open = true;
                cur = Some(w);
            }
            _ => cur.get_or_insert_with(new_word).text.push(c),
        }
        i += 1;
    }
    finish(&mut cur, &mut toks);
    Ok(toks)
}

/// The rillflow commands of one shell line.
fn commands_in_line(place: &str, line: &str, tree: &Tree) -> Result<Vec<DocCommand>, String> {
    let toks = tokenize(line)?;
    let mut out = Vec::new();
    // Simple commands: runs of words and `|` between separators; a
    // redirection ends the arguments of the command it follows.
    let mut segments: Vec<Vec<Tok>> = vec![Vec::new()];
    let mut redirected = false;
    for t in toks {
        match &t {
            Tok::Op(op) if op == "|" => {
                redirected = false;
                segments.last_mut().unwrap().push(t);
            }
            Tok::Op(op) if op == ">" || op == "<" => redirected = true,
            Tok::Op(_) => {
                redirected = false;
                segments.push(Vec::new());
            }
            Tok::Word(_) if redirected => {}
            Tok::Word(_) => segments.last_mut().unwrap().push(t),
        }
    }
    for seg in segments {
        if let Some(args) = invocation(&seg) {
            out.extend(split_alternative_commands(place, line, args, tree));
        }
    }
    Ok(out)
}

/// The tokens after `rillflow` when `seg` invokes it.
fn invocation(seg: &[Tok]) -> Option<Vec<Tok>> {
    let word = |t: &Tok| match t {
        Tok::Word(w) => Some(w.text.clone()),
        Tok::Op(_) => None,
    };
    let mut start = 0;
    while let Some(w) = seg.get(start).and_then(word) {
        let assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if assignment || matches!(w.as_str(), "sudo" | "env" | "time" | "exec" | "nohup") {
            start += 1;
        } else {
            break;
        }
    }
    let first = seg.get(start).and_then(word)?;
    let rest = || seg[start + 1..].to_vec();
    if first == "rillflow" || first.ends_with("/rillflow") {
        return Some(rest());
    }
    let words: Vec<String> = seg[start..].iter().filter_map(word).collect();
    match first.as_str() {
        "cargo" => {
            let runs = words.get(1).map(String::as_str) == Some("run");
            let names = |flag: &str| words.windows(2).any(|p| p[0] == flag && p[1] == "rillflow");
            let bin_flag = words
                .iter()
                .any(|w| w == "--bin" || w.starts_with("--bin="));
            let ours = names("--bin")
                || words.iter().any(|w| w == "--bin=rillflow")
                || (!bin_flag && (names("-p") || names("--package")));
            let dashes = seg[start..]
                .iter()
                .position(|t| matches!(t, Tok::Word(w) if w.text == "--" && !w.quoted))?;
            (runs && ours).then(|| seg[start + dashes + 1..].to_vec())
        }
        "docker" | "kubectl" | "podman" => {
            let at = seg[start..]
                .iter()
                .position(|t| matches!(t, Tok::Word(w) if w.text == "rillflow"))?;
            Some(seg[start + at + 1..].to_vec())
        }
        _ => None,
    }
}

/// The subcommand path at the start of `args` (first alternative of each
/// word), as far as the tree knows it.
fn leading_path(args: &[Word], tree: &Tree) -> Vec<String> {
    let mut path = Vec::new();
    for w in args {
        let first = w.text.split('|').next().unwrap_or_default();
        match tree.get(&path) {
            Some(children) if !w.open && children.contains(first) => path.push(first.to_owned()),
            _ => break,
        }
    }
    path
}

/// Cuts the arguments at a standalone `|`: a sibling subcommand after it
/// starts another command with the same parent; anything else is a shell
/// pipe and ends the command.
fn split_alternative_commands(
    place: &str,
    line: &str,
    toks: Vec<Tok>,
    tree: &Tree,
) -> Vec<DocCommand> {
    let first_alt = |w: &Word| w.text.split('|').next().unwrap_or_default().to_owned();
    let mut commands: Vec<Vec<Word>> = Vec::new();
    let mut current: Vec<Word> = Vec::new();
    // The parent path shared by the alternatives, once the first is known.
    let mut parent: Option<Vec<String>> = None;
    let mut iter = toks.into_iter().peekable();
    while let Some(t) = iter.next() {
        match t {
            Tok::Word(w) => current.push(w),
            // Only `|` is left inside a simple command.
            Tok::Op(_) => {
                let parent_path = parent.clone().unwrap_or_else(|| {
                    let mut p = leading_path(&current, tree);
                    p.pop();
                    p
                });
                let sibling = matches!(
                    iter.peek(),
                    Some(Tok::Word(next)) if tree.get(&parent_path).is_some_and(|c| c.contains(&first_alt(next)))
                );
                commands.push(std::mem::take(&mut current));
                if !sibling {
                    // A shell pipe: what follows is another program.
                    break;
                }
                current = prefix_words(&parent_path);
                parent = Some(parent_path);
            }
        }
    }
    commands.push(current);
    commands
        .into_iter()
        .filter(|args| !args.is_empty())
        .map(|args| DocCommand {
            place: place.to_owned(),
            line: line.to_owned(),
            args,
        })
        .collect()
}

fn prefix_words(path: &[String]) -> Vec<Word> {
    path.iter()
        .map(|p| Word {
            text: p.clone(),
            quoted: false,
            open: false,
            close: false,
        })
        .collect()
}

/// Every rillflow command of one doc file.
fn doc_commands(rel: &str, markdown: &str, tree: &Tree) -> Result<Vec<DocCommand>, String> {
    let mut out = Vec::new();
    for (line_no, line) in shell_lines(markdown) {
        let place = format!("{rel}:{line_no}");
        out.extend(
            commands_in_line(&place, &line, tree).map_err(|e| format!("{place}: {e}: {line}"))?,
        );
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Variants.
// ---------------------------------------------------------------------------

/// How a variant was made from its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No optional group, first alternative everywhere.
    Base,
    /// The base plus one optional group.
    Group,
    /// Another alternative of one word.
    Alternative,
}

/// One concrete shape of a command: words still in doc notation.
#[derive(Debug, Clone, PartialEq)]
struct Variant {
    kind: Kind,
    words: Vec<String>,
}

enum Item {
    Word(Vec<String>),
    Group(Vec<Vec<String>>),
}

fn alternatives(w: &Word) -> Vec<String> {
    if w.quoted {
        vec![w.text.clone()]
    } else {
        w.text.split('|').map(str::to_owned).collect()
    }
}

/// The variants of a command (see the module comment).
fn variants(cmd: &DocCommand) -> Result<Vec<Variant>, String> {
    let mut items = Vec::new();
    let mut group: Option<Vec<Vec<String>>> = None;
    for w in &cmd.args {
        let alts = alternatives(w);
        let dropped = alts == ["..."] || alts == [""];
        if w.open {
            if group.is_some() {
                return Err("nested optional groups are not supported".into());
            }
            group = Some(Vec::new());
        }
        match group.as_mut() {
            Some(g) if !dropped => g.push(alts),
            Some(_) => {}
            None if !dropped => items.push(Item::Word(alts)),
            None => {}
        }
        if w.close {
            let g = group.take().ok_or("`]` without `[`")?;
            items.push(Item::Group(g));
        }
    }
    if group.is_some() {
        return Err("`[` without `]`".into());
    }
    let render = |with_group: Option<usize>, pick: Option<(usize, usize, usize)>| {
        // pick: (item, word in item, alternative)
        let mut words = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let choose = |w: usize, alts: &Vec<String>| match pick {
                Some((pi, pw, pa)) if pi == i && pw == w => alts[pa].clone(),
                _ => alts[0].clone(),
            };
            match item {
                Item::Word(alts) => words.push(choose(0, alts)),
                Item::Group(g) if with_group == Some(i) => {
                    words.extend(g.iter().enumerate().map(|(w, alts)| choose(w, alts)))
                }
                Item::Group(_) => {}
            }
        }
        words
    };
    let mut out = vec![Variant {
        kind: Kind::Base,
        words: render(None, None),
    }];
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Word(alts) => {
                for a in 1..alts.len() {
                    out.push(Variant {
                        kind: Kind::Alternative,
                        words: render(None, Some((i, 0, a))),
                    });
                }
            }
            Item::Group(g) if !g.is_empty() => {
                out.push(Variant {
                    kind: Kind::Group,
                    words: render(Some(i), None),
                });
                for (w, alts) in g.iter().enumerate() {
                    for a in 1..alts.len() {
                        out.push(Variant {
                            kind: Kind::Alternative,
                            words: render(Some(i), Some((i, w, a))),
                        });
                    }
                }
            }
            Item::Group(_) => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Example values for placeholders.
// ---------------------------------------------------------------------------

/// The values placeholders stand for, in one setting (the parser sandbox or
/// the fixture database).
struct Examples {
    url: String,
    /// A stream with events, for the event commands.
    stream: Uuid,
    /// Its version.
    stream_version: u64,
    /// An archived stream with events, for the archive commands (the mover
    /// refuses a stream that is not archived).
    archived: Uuid,
    projection: String,
    projections_file: String,
    cluster: String,
    node: String,
    dead_letter: String,
    out_file: String,
}

fn is_placeholder(word: &str) -> bool {
    let caps = word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-');
    caps || (word.starts_with('<') && word.ends_with('>')) || word.starts_with('$')
}

impl Examples {
    /// The value of placeholder `ph` in a command of `family` (its first
    /// word), given as the value of `flag` (or as a positional argument when
    /// `flag` is None).
    fn value(&self, family: &str, flag: Option<&str>, ph: &str) -> Result<String, String> {
        let ph_key = ph.trim_start_matches('<').trim_end_matches('>');
        let stream = if family == "archive" {
            self.archived
        } else {
            self.stream
        };
        let v = match (flag, ph_key) {
            (_, "$DATABASE_URL" | "${DATABASE_URL}") => self.url.clone(),
            (Some("--stream"), _) => stream.to_string(),
            (Some("--event-id"), _) => Uuid::from_u128(0xd0c5_0001).to_string(),
            (Some("--causation-id"), _) => Uuid::from_u128(0xd0c5_0002).to_string(),
            (Some("--correlation-id"), _) => Uuid::from_u128(0xd0c5_0003).to_string(),
            (Some("--daemon-id"), _) => Uuid::from_u128(0xd0c5_0004).to_string(),
            (Some("--type"), _) => "DocsExample".into(),
            (Some("--data"), _) => r#"{"amount":1}"#.into(),
            (Some("--headers"), _) => "{}".into(),
            (Some("--expected-version"), _) => self.stream_version.to_string(),
            (Some("--idempotency-key"), _) => "docs-example".into(),
            (Some("--schema-version" | "--from" | "--total-partitions"), _) => "1".into(),
            (Some("--partition-key"), _) => "0".into(),
            (Some("--limit" | "--fail-below"), _) => "50".into(),
            (Some("--batch-size"), _) => "100".into(),
            (Some("--max-events-per-sec"), _) => "1000".into(),
            (Some("--wait-secs"), _) => "10".into(),
            (Some("--down"), _) => "1".into(),
            (Some("--partitions"), _) => "2".into(),
            (Some("--name"), _) => self.projection.clone(),
            (Some("--node" | "--node-name"), _) => self.node.clone(),
            (Some("--cluster" | "--cluster-name"), _) => self.cluster.clone(),
            (Some("--projections"), _) => self.projections_file.clone(),
            (Some("--output"), "FILE") => self.out_file.clone(),
            (Some("--health-bind"), _) => "127.0.0.1:9464".into(),
            (Some("--id"), _) => self.dead_letter.clone(),
            (Some("--reason"), _) => "docs example".into(),
            (Some("--by"), _) => "docs".into(),
            (Some("--month"), _) => "2025-01-01".into(),
            (Some("--before"), _) => "2024-01-01T00:00:00Z".into(),
            (None, "NAME") => self.projection.clone(),
            (None, "STREAM" | "UUID" | "stream" | "uuid") => stream.to_string(),
            (None, "POS") => "0".into(),
            (None, "SHELL") => "bash".into(),
            _ => {
                return Err(format!(
                    "no example value for placeholder {ph}{} (add one to Examples::value)",
                    flag.map(|f| format!(" of {f}")).unwrap_or_default()
                ))
            }
        };
        Ok(v)
    }

    /// The arguments of a variant with every placeholder replaced.
    fn concrete(&self, words: &[String]) -> Result<Vec<String>, String> {
        let family = words.first().map(String::as_str).unwrap_or_default();
        let mut out = Vec::new();
        let mut flag: Option<String> = None;
        for w in words {
            if let Some((f, v)) = w.split_once('=').filter(|(f, _)| f.starts_with("--")) {
                let v = if f == "--database-url" {
                    self.url.clone()
                } else if is_placeholder(v) {
                    self.value(family, Some(f), v)?
                } else {
                    v.to_owned()
                };
                out.push(format!("{f}={v}"));
                flag = None;
                continue;
            }
            if w.starts_with('-') {
                out.push(w.clone());
                flag = Some(w.clone());
                continue;
            }
            let value = match flag.as_deref() {
                Some("--database-url") => self.url.clone(),
                // After a switch that takes no value the placeholder is a
                // positional argument: try that reading too.
                f if is_placeholder(w) => self.value(family, f, w).or_else(|e| {
                    if f.is_some() {
                        self.value(family, None, w)
                    } else {
                        Err(e)
                    }
                })?,
                _ => w.clone(),
            };
            out.push(value);
            flag = None;
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// The binary.
// ---------------------------------------------------------------------------

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

/// The subcommand tree, from `--help` of every command (the `Commands:`
/// section lists a command's subcommands; `help` is clap's own).
fn command_tree(bin: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let out = Command::new(bin)
            .args(&path)
            .arg("--help")
            .output()
            .expect("run rillflow --help");
        assert!(
            out.status.success(),
            "rillflow {} --help failed",
            path.join(" ")
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut children = BTreeSet::new();
        let mut in_commands = false;
        for l in text.lines() {
            if l.trim_end() == "Commands:" {
                in_commands = true;
            } else if in_commands && l.trim().is_empty() {
                in_commands = false;
            } else if in_commands {
                if let Some(name) = l.split_whitespace().next().filter(|n| *n != "help") {
                    children.insert(name.to_owned());
                }
            }
        }
        for c in &children {
            let mut p = path.clone();
            p.push(c.clone());
            todo.push(p);
        }
        tree.insert(path, children);
    }
    tree
}

/// Runs `bin args` and waits for it; a run that does not end within
/// `limit` is killed and reported as such (only a hang gets there).
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs-commands-out");
    std::fs::create_dir_all(&dir).unwrap();
    let tag = format!("{}-{}", std::process::id(), rand::random::<u64>());
    let (o, e) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .map_err(|e| format!("cannot run the binary: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    Ok(output)
}

/// A working directory and environment in which the binary can parse its
/// arguments and then do nothing (see the module comment).
struct Sandbox {
    dir: PathBuf,
    no_pg: PathBuf,
}

/// Not a URL: any command that reaches the database fails right away.
const NOT_A_URL: &str = "not-a-database-url";

impl Sandbox {
    fn new() -> Sandbox {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "docs-commands-sandbox-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let dir = base.join("cwd");
        let no_pg = base.join("no-postgres-here");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&no_pg).unwrap();
        Sandbox { dir, no_pg }
    }

    fn examples(&self) -> Examples {
        Examples {
            url: NOT_A_URL.into(),
            stream: Uuid::from_u128(0x5eed),
            stream_version: 1,
            archived: Uuid::from_u128(0xa5eed),
            projection: "account_balances".into(),
            projections_file: root()
                .join("examples/projections.toml")
                .display()
                .to_string(),
            cluster: "billing".into(),
            node: "node-a".into(),
            dead_letter: "1".into(),
            out_file: self.dir.join("bundle.json").display().to_string(),
        }
    }

    /// None when the parser accepts `args`; else what it said.
    fn rejection(&self, bin: &Path, args: &[String]) -> Result<Option<String>, String> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", NOT_A_URL)
            .env("RILLFLOW_PG_BIN", &self.no_pg)
            .env_remove("RUST_LOG")
            .env_remove("PARTITIONS")
            .env_remove("PARTITION_KEY")
            .env_remove("TOTAL_PARTITIONS");
        let out = run_bounded(cmd, Duration::from_secs(60))?;
        Ok((out.status.code() == Some(2)).then(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            err.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(nothing on stderr)")
                .to_owned()
        }))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// Every rillflow command of the docs.
fn all_doc_commands(tree: &Tree) -> Vec<DocCommand> {
    let root = root();
    let mut files: Vec<PathBuf> = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "reference.md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut deploy = Vec::new();
    collect_readmes(&root.join("deploy"), &mut deploy);
    deploy.sort();
    files.extend(deploy);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        out.extend(doc_commands(&rel, &text, tree).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

fn collect_readmes(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_readmes(&p, out);
        } else if p.file_name().is_some_and(|n| n == "README.md") {
            out.push(p);
        }
    }
}

fn describe(cmd: &DocCommand, words: &[String]) -> String {
    format!(
        "{}: `{}`\n    as checked: rillflow {}",
        cmd.place,
        cmd.line,
        words.join(" ")
    )
}

// ---------------------------------------------------------------------------
// Check 1: every command against the parser.
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Check 2: the safe commands for real.
// ---------------------------------------------------------------------------

/// What running a command against the fixture means.
#[derive(Debug, PartialEq)]
enum Plan {
    /// Changes nothing: runs on the shared copy.
    ReadOnly,
    /// Changes something: runs on a fresh copy of its own.
    Writes,
    /// Parse-checked only, for the reason given.
    Skip(&'static str),
}

fn plan(path: &[String], args: &[String]) -> Plan {
    let has = |f: &str| {
        args.iter()
            .any(|a| a == f || a.starts_with(&format!("{f}=")))
    };
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["projections", "run-loop"] => Plan::Skip("a daemon"),
        ["projections", "promote" | "demote"] => Plan::Skip("needs live nodes"),
        ["demo"] => Plan::Skip("covered by tests/demo.rs"),
        ["db", ..] => Plan::Skip("manages a local server"),
        ["events", "tail"] if !has("--once") => Plan::Skip("follows the log forever"),
        ["projections", "list" | "status" | "cluster-status" | "metrics" | "dlq-list" | "owners"]
        | ["health", "score"]
        | ["events", "read" | "tail"]
        | ["archive", "status"]
        | ["diag", "bundle"]
        | ["completions"] => Plan::ReadOnly,
        ["archive", "move"] if has("--dry-run") => Plan::ReadOnly,
        ["archive", "backend"] if !has("--set") => Plan::ReadOnly,
        ["migrate"] if has("--status") => Plan::ReadOnly,
        _ => Plan::Writes,
    }
}

/// A stream, the example projections caught up with one dead letter, two
/// registered hot/cold clusters and two empty tenants (`acme`, a schema
/// tenant, and `globex`, conjoined); returns the values placeholders take.
async fn build_fixture(db: &mut TestDb, bin: &Path, out_dir: &Path) -> Examples {
    let stream = Uuid::from_u128(0xd0c5_5eed_0000_0000_0000_0000_0000_0001);
    let store = db.store().await;
    let events = [
        ("AccountOpened", json!({ "owner": "docs" })),
        ("FundsDeposited", json!({ "amount": 5 })),
        // Not a number: account_balances cannot apply it and, after its
        // retries, dead-letters it.
        ("FundsDeposited", json!({ "amount": "lots" })),
        ("FundsWithdrawn", json!({ "amount": 2 })),
    ];
    for (t, data) in &events {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[NewEvent::new(*t, data.clone())],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    // A second stream, archived (marked, not moved), for the archive
    // commands.
    let archived = Uuid::from_u128(0xd0c5_5eed_0000_0000_0000_0000_0000_0002);
    store
        .append(
            archived,
            ExpectedVersion::Any,
            &[NewEvent::new("AccountOpened", json!({ "owner": "gone" }))],
            &Default::default(),
        )
        .await
        .unwrap();
    let file = root().join("examples/projections.toml");
    let cli = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fixture: {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Retries wait out a backoff between runs, and a transaction open
    // elsewhere on the server can hold the gap-safe horizon back; poll until
    // the dead letter is there, for a bounded while.
    let start = Instant::now();
    let dead_letter = loop {
        cli(&[
            "projections",
            "run-until-idle",
            "--projections",
            file.to_str().unwrap(),
        ]);
        let list: serde_json::Value = serde_json::from_str(&cli(&[
            "projections",
            "dlq-list",
            "account_balances",
            "--output",
            "json",
        ]))
        .unwrap();
        if let Some(id) = list
            .as_array()
            .and_then(|l| l.first())
            .map(|l| l["id"].clone())
        {
            break id.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the poison event was never dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    cli(&[
        "archive",
        "mark",
        &archived.to_string(),
        "--reason",
        "docs fixture",
    ]);
    // Tenants without streams, for the documented `tenants` commands
    // (`add` again is a no-op, `remove` finds them empty).
    cli(&["tenants", "add", "acme", "--mode", "schema"]);
    cli(&["tenants", "add", "globex", "--mode", "conjoined"]);
    let leases = PgLeaseStore::new(db.pool().await);
    for cluster in ["billing", "projections"] {
        for (i, node) in ["node-a", "node-b"].into_iter().enumerate() {
            let id = NodeIdentity {
                cluster: cluster.into(),
                node: node.into(),
                daemon_id: Uuid::from_u128(0xd0c5_0100 + i as u128),
            };
            leases
                .register(&id, 1, &ClusterTiming::default())
                .await
                .unwrap();
        }
    }
    Examples {
        url: db.url.clone(),
        stream,
        stream_version: events.len() as u64,
        archived,
        projection: "account_balances".into(),
        projections_file: file.display().to_string(),
        cluster: "billing".into(),
        node: "node-a".into(),
        dead_letter,
        out_file: out_dir.join("bundle.json").display().to_string(),
    }
}

#[tokio::test]
async fn documented_commands_run_against_a_scratch_database() {
    let bin = rillflow_bin();
    let tree = command_tree(&bin);
    let commands = all_doc_commands(&tree);
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-commands-run-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut fixture = TestDb::migrated().await;
    let mut examples = build_fixture(&mut fixture, &bin, &out_dir).await;
    let mut shared = fixture.copy().await;

    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, BTreeMap::<&str, usize>::new());
    for cmd in &commands {
        // Malformed notation and unknown placeholders are reported by the
        // parser check; here they are only skipped.
        let Ok(variants) = variants(cmd) else {
            continue;
        };
        for v in variants.into_iter().filter(|v| v.kind != Kind::Alternative) {
            let path = leading_path(&prefix_words(&v.words), &tree);
            let plan = plan(&path, &v.words);
            let mut fresh = None;
            let db = match plan {
                Plan::Skip(why) => {
                    *skipped.entry(why).or_default() += 1;
                    continue;
                }
                Plan::ReadOnly => &mut shared,
                Plan::Writes => fresh.insert(fixture.copy().await),
            };
            examples.url = db.url.clone();
            let Ok(args) = examples.concrete(&v.words) else {
                continue;
            };
            ran += 1;
            let mut command = Command::new(&bin);
            command
                .args(&args)
                .current_dir(root())
                .env("DATABASE_URL", &db.url)
                .env_remove("RUST_LOG")
                .env_remove("PARTITIONS")
                .env_remove("PARTITION_KEY")
                .env_remove("TOTAL_PARTITIONS");
            let out = match run_bounded(command, Duration::from_secs(120)) {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("{}\n    {e}", describe(cmd, &args)));
                    continue;
                }
            };
            // `--fail-below` turns a low score into status 3 on purpose.
            let below_threshold = path.first().is_some_and(|p| p == "health")
                && args.iter().any(|a| a.starts_with("--fail-below"))
                && out.status.code() == Some(3);
            if !(out.status.success() || below_threshold) {
                failures.push(format!(
                    "{}\n    failed ({}): {}",
                    describe(cmd, &args),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            drop(fresh);
        }
    }
    drop(shared);
    let _ = std::fs::remove_dir_all(&out_dir);
    eprintln!("{ran} documented command variants run; parse-checked only: {skipped:?}");
    assert!(
        failures.is_empty(),
        "{} documented command(s) failed against the fixture:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The docs hold plenty of runnable commands; finding few means the
    // extraction broke, not that the docs are fine.
    assert!(ran >= 40, "only {ran} documented commands were run");
}

// ---------------------------------------------------------------------------
// The reader itself, on a doc made up for it.
// ---------------------------------------------------------------------------

fn tree_for_tests() -> Tree {
    let mut t = Tree::new();
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    t.insert(
        vec![],
        set(&["projections", "db", "events", "migrate", "completions"]),
    );
    t.insert(
        vec!["projections".into()],
        set(&[
            "list",
            "status",
            "pause",
            "resume",
            "run-once",
            "run-until-idle",
        ]),
    );
    t.insert(vec!["db".into()], set(&["start", "url", "stop"]));
    t.insert(vec!["events".into()], set(&["append", "read"]));
    for leaf in [
        "list",
        "status",
        "pause",
        "resume",
        "run-once",
        "run-until-idle",
    ] {
        t.insert(vec!["projections".into(), leaf.into()], BTreeSet::new());
    }
    t
}

fn shapes(markdown: &str) -> Vec<(String, Vec<(Kind, String)>)> {
    doc_commands("doc.md", markdown, &tree_for_tests())
        .unwrap()
        .iter()
        .map(|c| {
            let vs = variants(c)
                .unwrap()
                .into_iter()
                .map(|v| (v.kind, v.words.join(" ")))
                .collect();
            (c.place.clone(), vs)
        })
        .collect()
}

#[test]
fn extraction_understands_the_doc_notation() {
    let doc = r#"
Prose with `rillflow projections list` inline is not a command.

```sh
# a comment line
cargo run -q --bin rillflow -- projections list   # trailing comment
rillflow projections run-once --projections FILE \
    [--name N] [--output table|json]
rillflow projections list | status NAME | pause NAME
rillflow db start|url|stop [--dir .rillflow]
DATABASE_URL=$(rillflow db url | sed 's#/rillflow$#/postgres#') cargo bench -p rillflow-benches
install -m 0755 target/release/rillflow /usr/local/bin/rillflow
cargo build --release -p rillflow && /usr/local/bin/rillflow migrate --status
docker compose exec node-a rillflow events read --stream UUID > out.txt
rillflow events append --stream UUID --type T --data '{"a": "x|y [z]"}' [...]
rillflow completions bash   # e.g. > /etc/bash_completion.d/rillflow
```

```toml
rillflow = "not a command"
```

```console
$ rillflow migrate
applied 8 migrations
```
"#;
    use Kind::*;
    let s = |v: &str| v.to_owned();
    assert_eq!(
        shapes(doc),
        vec![
            (s("doc.md:6"), vec![(Base, s("projections list"))]),
            (
                s("doc.md:7"),
                vec![
                    (Base, s("projections run-once --projections FILE")),
                    (Group, s("projections run-once --projections FILE --name N")),
                    (
                        Group,
                        s("projections run-once --projections FILE --output table")
                    ),
                    (
                        Alternative,
                        s("projections run-once --projections FILE --output json")
                    ),
                ]
            ),
            (s("doc.md:9"), vec![(Base, s("projections list"))]),
            (s("doc.md:9"), vec![(Base, s("projections status NAME"))]),
            (s("doc.md:9"), vec![(Base, s("projections pause NAME"))]),
            (
                s("doc.md:10"),
                vec![
                    (Base, s("db start")),
                    (Alternative, s("db url")),
                    (Alternative, s("db stop")),
                    (Group, s("db start --dir .rillflow")),
                ]
            ),
            (s("doc.md:11"), vec![(Base, s("db url"))]),
            (s("doc.md:13"), vec![(Base, s("migrate --status"))]),
            (s("doc.md:14"), vec![(Base, s("events read --stream UUID"))]),
            (
                s("doc.md:15"),
                vec![(
                    Base,
                    s(r#"events append --stream UUID --type T --data {"a": "x|y [z]"}"#)
                )]
            ),
            (s("doc.md:16"), vec![(Base, s("completions bash"))]),
            (s("doc.md:24"), vec![(Base, s("migrate"))]),
        ]
    );
}

#[test]
fn placeholders_take_values_by_the_option_they_belong_to() {
    let examples = Examples {
        url: "postgres://u@h/d".into(),
        stream: Uuid::from_u128(7),
        stream_version: 4,
        archived: Uuid::from_u128(8),
        projection: "p".into(),
        projections_file: "/f.toml".into(),
        cluster: "c".into(),
        node: "n".into(),
        dead_letter: "9".into(),
        out_file: "/o.json".into(),
    };
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        examples
            .concrete(&words(
                "projections run-once --name N --total-partitions N --projections FILE --database-url $DATABASE_URL"
            ))
            .unwrap(),
        words("projections run-once --name p --total-partitions 1 --projections /f.toml --database-url postgres://u@h/d")
    );
    assert_eq!(
        examples
            .concrete(&words(
                "projections dlq-requeue NAME --id ID --database-url=postgres://elsewhere/x"
            ))
            .unwrap(),
        words("projections dlq-requeue p --id 9 --database-url=postgres://u@h/d")
    );
    assert_eq!(
        examples
            .concrete(&words(
                "events append --stream <uuid> --expected-version N --data JSON --type Hello"
            ))
            .unwrap(),
        words(
            r#"events append --stream 00000000-0000-0000-0000-000000000007 --expected-version 4 --data {"amount":1} --type Hello"#
        )
    );
    let err = examples
        .concrete(&words("projections status WHATEVER --wibble X"))
        .unwrap_err();
    assert!(err.contains("WHATEVER"), "{err}");
}
