//! The concrete variants of a documented command: optional groups and alternatives.

use super::*;

/// How a variant was made from its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No optional group, first alternative everywhere.
    Base,
    /// The base plus one optional group.
    Group,
    /// Another alternative of one word.
    Alternative,
}

/// One concrete shape of a command: words still in doc notation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variant {
    pub(crate) kind: Kind,
    pub(crate) words: Vec<String>,
}

pub(crate) enum Item {
    Word(Vec<String>),
    Group(Vec<Vec<String>>),
}

pub(crate) fn alternatives(w: &Word) -> Vec<String> {
    if w.quoted {
        vec![w.text.clone()]
    } else {
        w.text.split('|').map(str::to_owned).collect()
    }
}

/// The variants of a command (see the comment at the top of main.rs).
pub(crate) fn variants(cmd: &DocCommand) -> Result<Vec<Variant>, String> {
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
