//! The reader itself, on a doc made up for it.

use super::*;

fn tree_for_tests() -> Tree {
    let mut t = Tree::new();
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    t.insert(
        vec![],
        set(&["projections", "db", "events", "migrate", "completions"]),
    );
    let leaves = [
        "list",
        "status",
        "pause",
        "resume",
        "run-once",
        "run-until-idle",
    ];
    t.insert(vec!["projections".into()], set(&leaves));
    t.insert(vec!["db".into()], set(&["start", "url", "stop"]));
    t.insert(vec!["events".into()], set(&["append", "read"]));
    for leaf in leaves {
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
        events_file: "/e.jsonl".into(),
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
