//! Reading the docs: fenced shell lines, their words, and the rillflow commands in them.

use super::*;

/// One rillflow command as a doc writes it, before variants are expanded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DocCommand {
    /// `path:line` of the line the command starts on.
    pub(crate) place: String,
    /// The shell line, continuation lines joined, for messages.
    pub(crate) line: String,
    /// The arguments after `rillflow`, still in doc notation.
    pub(crate) args: Vec<Word>,
}

/// A shell word. `open`/`close`: it began with an unquoted `[` or ended with
/// an unquoted `]` (an optional group), which are not part of `text`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Word {
    pub(crate) text: String,
    pub(crate) quoted: bool,
    pub(crate) open: bool,
    pub(crate) close: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word(Word),
    /// A separator (`;`, `&&`, `||`, `&`, `$(`, `(`, `)`), a redirection
    /// (`>`, `<`) or a standalone `|`.
    Op(String),
}

/// The subcommand tree: a command path and the names of its subcommands.
pub(crate) type Tree = BTreeMap<Vec<String>, BTreeSet<String>>;

/// Shell lines of the fenced shell blocks of `markdown`, continuation lines
/// joined: (1-based line number where the line starts, text).
pub(crate) fn shell_lines(markdown: &str) -> Vec<(usize, String)> {
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

/// Splits a shell line into words and operators; see the comment at the top of main.rs.
pub(crate) fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
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
pub(crate) fn commands_in_line(
    place: &str,
    line: &str,
    tree: &Tree,
) -> Result<Vec<DocCommand>, String> {
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
pub(crate) fn invocation(seg: &[Tok]) -> Option<Vec<Tok>> {
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
pub(crate) fn leading_path(args: &[Word], tree: &Tree) -> Vec<String> {
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
pub(crate) fn split_alternative_commands(
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

pub(crate) fn prefix_words(path: &[String]) -> Vec<Word> {
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
pub(crate) fn doc_commands(
    rel: &str,
    markdown: &str,
    tree: &Tree,
) -> Result<Vec<DocCommand>, String> {
    let mut out = Vec::new();
    for (line_no, line) in shell_lines(markdown) {
        let place = format!("{rel}:{line_no}");
        out.extend(
            commands_in_line(&place, &line, tree).map_err(|e| format!("{place}: {e}: {line}"))?,
        );
    }
    Ok(out)
}
