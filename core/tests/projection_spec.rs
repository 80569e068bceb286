//! Declared SQL projections: placeholder rewriting and file parsing.

use proptest::prelude::*;
use rillflow_core::projection::{
    json_path_text, rewrite, OnError, ParamSource, ProjectionFile, Statement,
};
use serde_json::json;

fn rewritten(sql: &str) -> Statement {
    rewrite(sql).unwrap_or_else(|e| panic!("{sql:?}: {e:?}"))
}

#[test]
fn placeholders_become_numbered_parameters_in_order_of_first_use() {
    use ParamSource::*;
    let cases: Vec<(&str, &str, Vec<ParamSource>)> = vec![
        ("SELECT :stream_id", "SELECT $1", vec![StreamId]),
        (
            "INSERT INTO t VALUES (:stream_id, :version, :stream_id)",
            "INSERT INTO t VALUES ($1, $2, $1)",
            vec![StreamId, Version],
        ),
        (
            "UPDATE t SET n = n + :data.amount::bigint WHERE id = :stream_id",
            "UPDATE t SET n = n + $1::bigint WHERE id = $2",
            vec![DataPath(vec!["amount".into()]), StreamId],
        ),
        (
            "SELECT :data, :headers, :headers.tenant, :data.a.b_2",
            "SELECT $1, $2, $3, $4",
            vec![Data, Headers, HeaderPath(vec!["tenant".into()]), DataPath(vec!["a".into(), "b_2".into()])],
        ),
        (
            "SELECT :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id",
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8",
            vec![Position, TxId, EventId, EventType, SchemaVersion, CreatedAt, CausationId, CorrelationId],
        ),
        // A trailing dot ends the path; it is not part of the name.
        ("SELECT :version.", "SELECT $1.", vec![Version]),
    ];
    for (sql, want, params) in cases {
        assert_eq!(
            rewritten(sql),
            Statement {
                sql: want.into(),
                params
            },
            "{sql}"
        );
    }
}

#[test]
fn text_that_only_looks_like_a_placeholder_is_left_alone() {
    let untouched = [
        "SELECT now()::date",
        "SELECT 'a :literal'",
        "SELECT 'it''s :x'",
        "SELECT E'back\\' :slash'",
        "SELECT \":quoted\" FROM t",
        "SELECT 1 -- :comment\n",
        "SELECT 1 /* :outer /* :nested */ :still */",
        "SELECT $$ :body $$",
        "SELECT $fn$ :tagged $$ :still $fn$",
        "SELECT arr[1:2] FROM t",
        "SELECT arr[lo:hi] FROM t",
        "SELECT price$1 FROM t",
    ];
    for sql in untouched {
        let s = rewritten(sql);
        assert_eq!(s.sql, sql);
        assert!(s.params.is_empty(), "{sql}: {:?}", s.params);
    }
    // And placeholders right after them still count.
    let s = rewritten("SELECT 'x', $$y$$, \"z\", :version -- :no");
    assert_eq!(s.sql, "SELECT 'x', $$y$$, \"z\", $1 -- :no");
}

#[test]
fn unknown_and_positional_parameters_are_refused() {
    for (sql, token) in [
        ("SELECT :nope", ":nope"),
        ("SELECT :version.x", ":version.x"),
        ("SELECT :stream", ":stream"),
        ("SELECT $1", "$1"),
        ("SELECT :data, $12", "$12"),
    ] {
        let e = rewrite(sql).unwrap_err();
        assert_eq!(e.token, token, "{sql}");
        assert_eq!(&sql[e.offset..e.offset + token.len()], token);
    }
    assert!(rewrite("SELECT :nope")
        .unwrap_err()
        .message
        .contains("known: :stream_id"));
}

#[test]
fn json_paths_bind_as_text() {
    let v = json!({"s": "x", "n": 4.5, "b": true, "z": null, "o": {"k": [1, 2]}});
    let p = |s: &str| -> Vec<String> { s.split('.').map(str::to_owned).collect() };
    assert_eq!(json_path_text(&v, &p("s")), Some("x".into()));
    assert_eq!(json_path_text(&v, &p("n")), Some("4.5".into()));
    assert_eq!(json_path_text(&v, &p("b")), Some("true".into()));
    assert_eq!(json_path_text(&v, &p("z")), None);
    assert_eq!(json_path_text(&v, &p("missing")), None);
    assert_eq!(json_path_text(&v, &p("o")), Some("{\"k\":[1,2]}".into()));
    assert_eq!(json_path_text(&v, &p("o.k")), Some("[1,2]".into()));
    assert_eq!(json_path_text(&v, &p("s.deeper")), None);
}

const FILE: &str = r#"
[defaults]
batch_size = 100
on_error = "stop"

[[projections]]
name = "balances"
setup = ["CREATE TABLE IF NOT EXISTS balances (id uuid PRIMARY KEY, n bigint)", "SELECT 1"]
reset = "TRUNCATE balances"
max_retries = 7

[projections.handlers]
Opened = "INSERT INTO balances VALUES (:stream_id, 0)"
"funds.deposited" = [
  "UPDATE balances SET n = n + :data.amount::bigint WHERE id = :stream_id",
  "SELECT :version",
]

[[projections]]
name = "audit"
batch_size = 5
on_error = "dead_letter"
[projections.handlers]
Opened = "INSERT INTO audit VALUES (:event_id)"
"#;

#[test]
fn a_full_file_parses_with_defaults_and_overrides() {
    let file = ProjectionFile::parse(FILE).unwrap();
    let [balances, audit] = &file.projections[..] else {
        panic!("two projections: {file:?}")
    };
    assert_eq!(balances.name.as_str(), "balances");
    assert_eq!(balances.setup.len(), 2);
    assert_eq!(balances.reset, vec!["TRUNCATE balances".to_string()]);
    assert_eq!(
        (balances.batch_size, balances.max_retries, balances.on_error),
        (100, 7, OnError::Stop)
    );
    assert_eq!(
        balances.event_types().collect::<Vec<_>>(),
        vec!["Opened", "funds.deposited"]
    );
    assert!(balances.handles("funds.deposited") && !balances.handles("Closed"));
    let deposited = &balances.handlers["funds.deposited"];
    assert_eq!(
        deposited[0].sql,
        "UPDATE balances SET n = n + $1::bigint WHERE id = $2"
    );
    assert_eq!(deposited[1].params, vec![ParamSource::Version]);
    assert_eq!(
        (audit.batch_size, audit.max_retries, audit.on_error),
        (5, 3, OnError::DeadLetter)
    );
    assert!(audit.setup.is_empty() && audit.reset.is_empty());
}

#[test]
fn errors_name_the_line() {
    let cases: Vec<(&str, usize, &str)> = vec![
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"SELECT :nope\"\n", 4, "unknown placeholder :nope"),
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"\"\"\nSELECT 1,\n  :oops\n\"\"\"\n", 6, ":oops"),
        ("[[projections]]\nname = \"Bad-Name\"\n[projections.handlers]\nX = \"SELECT 1\"\n", 2, "invalid projection name"),
        ("[[projections]]\nname = \"a\"\n", 2, "has no handlers"),
        ("[[projections]]\nname = \"a\"\nbatch_size = 0\n[projections.handlers]\nX = \"SELECT 1\"\n", 3, "batch_size must be between 1 and 10000"),
        ("[[projections]]\nname = \"a\"\non_error = \"ignore\"\n[projections.handlers]\nX = \"SELECT 1\"\n", 3, "on_error must be"),
        ("[[projections]]\nname = \"a\"\nsetup = \"CREATE TABLE t (x int DEFAULT :version)\"\n[projections.handlers]\nX = \"SELECT 1\"\n", 3, "only bound in handlers"),
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"SELECT 1\"\n[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"SELECT 1\"\n", 6, "declared twice"),
        ("[[projections]]\nname = \"a\"\ncolour = 1\n[projections.handlers]\nX = \"SELECT 1\"\n", 3, "unknown field `colour`"),
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = [\"SELECT 1\", \"   \"]\n", 4, "empty SQL statement"),
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"SELECT $1\"\n", 4, "positional parameters"),
        ("[[projections]]\nname = \"a\"\nthis is not toml\n", 3, ""),
        ("# nothing\n", 1, "no projections declared"),
    ];
    for (text, line, needle) in cases {
        let e = ProjectionFile::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("line {line}, column ")),
            "{e}"
        );
    }
}

#[test]
fn versioned_projections_render_their_version() {
    let text = r#"
[[projections]]
name = "balances"
versioned_tables = ["balances"]
setup = "CREATE TABLE IF NOT EXISTS balances_v{version} (id uuid PRIMARY KEY)"
[projections.handlers]
Opened = "INSERT INTO balances_v{version} VALUES (:stream_id)"
"#;
    let spec = ProjectionFile::parse(text).unwrap().projections.remove(0);
    assert!(spec.is_versioned());
    assert_eq!(spec.versioned_tables[0].as_str(), "balances");
    let v3 = spec.at_version(3);
    assert_eq!(
        v3.setup[0],
        "CREATE TABLE IF NOT EXISTS balances_v3 (id uuid PRIMARY KEY)"
    );
    assert_eq!(
        v3.handlers["Opened"][0].sql,
        "INSERT INTO balances_v3 VALUES ($1)"
    );
    assert_eq!(v3.handlers["Opened"][0].params, vec![ParamSource::StreamId]);
    assert_eq!(v3.name, spec.name);

    for (text, line, needle) in [
        ("[[projections]]\nname = \"a\"\n[projections.handlers]\nX = \"SELECT 1 FROM t_v{version}\"\n", 2, "declares no versioned_tables"),
        ("[[projections]]\nname = \"a\"\nversioned_tables = [\"t\"]\n[projections.handlers]\nX = \"SELECT 1\"\n", 2, "never uses {version}"),
        ("[[projections]]\nname = \"a\"\nversioned_tables = [\"T-1\"]\n[projections.handlers]\nX = \"SELECT {version}\"\n", 3, "invalid versioned table"),
    ] {
        let e = ProjectionFile::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
    }
}

/// Fragments that are never placeholders, with a marker between them.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SELECT ".to_string()),
        Just("x::int ".to_string()),
        Just("'a :b' ".to_string()),
        Just("\":c\" ".to_string()),
        Just("-- :d\n".to_string()),
        Just("/* :e */ ".to_string()),
        Just("$$ :f $$ ".to_string()),
        Just("a[1:2] ".to_string()),
        "[a-z ]{0,6}".prop_map(|s| s),
    ]
}

proptest! {
    /// Rewriting changes placeholders and nothing else: putting the names
    /// back where the numbers are gives the original text.
    #[test]
    fn rewriting_round_trips(parts in prop::collection::vec((fragment(), prop::sample::select(vec!["stream_id", "version", "data.a", "headers.h", "data"])), 0..8), tail in fragment()) {
        let mut sql = String::new();
        for (text, name) in &parts {
            sql.push_str(text);
            // A separator keeps the placeholder from gluing onto a word.
            sql.push_str(" :");
            sql.push_str(name);
            sql.push(' ');
        }
        sql.push_str(&tail);
        let s = rewrite(&sql).unwrap();
        let mut names: Vec<&str> = Vec::new();
        for (_, name) in &parts {
            if !names.contains(name) {
                names.push(name);
            }
        }
        prop_assert_eq!(s.params.len(), names.len());
        let mut back = s.sql.clone();
        for (i, name) in names.iter().enumerate().rev() {
            back = back.replace(&format!("${}", i + 1), &format!(":{name}"));
        }
        prop_assert_eq!(back, sql);
    }
}
