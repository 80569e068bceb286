//! Declared SQL projections: placeholder rewriting and the projections file.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rillflow_core::projection::{
    json_path_text, render_version, rewrite, OnError, ParamSource, PlaceholderError,
    ProjectionFile, ProjectionSpec, Statement,
};
use rillflow_core::Identifier;
use serde_json::json;

fn rewritten(sql: &str) -> Statement {
    rewrite(sql).unwrap_or_else(|e| panic!("{sql:?}: {e}"))
}

fn path(p: &str) -> Vec<String> {
    p.split('.').map(str::to_owned).collect()
}

#[test]
fn placeholders_are_numbered_in_order_of_first_use() {
    use ParamSource::*;
    let cases: Vec<(&str, &str, Vec<ParamSource>)> = vec![
        ("SELECT :stream_id", "SELECT $1", vec![StreamId]),
        (
            "INSERT INTO t VALUES (:stream_id, :version, :stream_id, :version)",
            "INSERT INTO t VALUES ($1, $2, $1, $2)",
            vec![StreamId, Version],
        ),
        (
            "UPDATE t SET n = n + :data.amount::bigint WHERE id = :stream_id",
            "UPDATE t SET n = n + $1::bigint WHERE id = $2",
            vec![DataPath(path("amount")), StreamId],
        ),
        (
            "SELECT :data, :headers, :headers.tenant, :data.a.b_2, :data.a",
            "SELECT $1, $2, $3, $4, $5",
            vec![Data, Headers, HeaderPath(path("tenant")), DataPath(path("a.b_2")), DataPath(path("a"))],
        ),
        (
            "SELECT :position,:tx_id,:event_id,:event_type,:schema_version,:created_at,:causation_id,:correlation_id",
            "SELECT $1,$2,$3,$4,$5,$6,$7,$8",
            vec![Position, TxId, EventId, EventType, SchemaVersion, CreatedAt, CausationId, CorrelationId],
        ),
        // Operators and brackets right before a placeholder do not glue.
        ("SELECT 1=:version,(:position)", "SELECT 1=$1,($2)", vec![Version, Position]),
        // A dot without a segment after it ends the name.
        ("SELECT :version.", "SELECT $1.", vec![Version]),
        ("SELECT :data. x", "SELECT $1. x", vec![Data]),
        // Placeholders inside brackets that are not slice bounds.
        ("SELECT a[:data.i::int]", "SELECT a[$1::int]", vec![DataPath(path("i"))]),
        ("SELECT a[1: :data.hi::int]", "SELECT a[1: $1::int]", vec![DataPath(path("hi"))]),
        ("SELECT ARRAY[:version, :position]", "SELECT ARRAY[$1, $2]", vec![Version, Position]),
        // Non-ASCII around placeholders is copied byte for byte.
        ("SELECT 'é', :stream_id -- ü", "SELECT 'é', $1 -- ü", vec![StreamId]),
    ];
    for (sql, want, params) in cases {
        let want = Statement {
            sql: want.into(),
            params,
        };
        assert_eq!(rewritten(sql), want, "{sql}");
    }
}

/// Each case hides `:x` (which would be an unknown placeholder) in text the
/// scanner must skip, then uses `:version` after it to show the skipped
/// region ends where Postgres ends it.
#[test]
fn text_that_only_looks_like_a_placeholder_is_left_alone() {
    let cases = [
        (
            "cast",
            "SELECT now()::date, :version",
            "SELECT now()::date, $1",
        ),
        ("string", "SELECT 'a :x', :version", "SELECT 'a :x', $1"),
        (
            "doubled quote",
            "SELECT 'it'':x', :version",
            "SELECT 'it'':x', $1",
        ),
        (
            "E-string",
            "SELECT E'it\\':x', :version",
            "SELECT E'it\\':x', $1",
        ),
        (
            "E-string, lowercase",
            "SELECT e'\\\\', :version",
            "SELECT e'\\\\', $1",
        ),
        // Outside E'' a backslash is an ordinary character.
        (
            "plain backslash",
            "SELECT 'a\\', :version",
            "SELECT 'a\\', $1",
        ),
        (
            "word ending in e",
            "SELECT type'\\', :version",
            "SELECT type'\\', $1",
        ),
        (
            "quoted name",
            "SELECT \"a:x\", :version",
            "SELECT \"a:x\", $1",
        ),
        (
            "quoted name, doubled",
            "SELECT \"a\"\":x\", :version",
            "SELECT \"a\"\":x\", $1",
        ),
        (
            "line comment",
            "SELECT 1 -- :x\n, :version",
            "SELECT 1 -- :x\n, $1",
        ),
        (
            "block comment",
            "SELECT /* :x */ :version",
            "SELECT /* :x */ $1",
        ),
        (
            "nested block comment",
            "SELECT /* /* :x */ :x */ :version",
            "SELECT /* /* :x */ :x */ $1",
        ),
        (
            "dollar quote",
            "SELECT $$ :x $$, :version",
            "SELECT $$ :x $$, $1",
        ),
        (
            "tagged dollar quote",
            "SELECT $f$ :x $$ :x $f$, :version",
            "SELECT $f$ :x $$ :x $f$, $1",
        ),
        (
            "numeric slice",
            "SELECT a[1:2], :version",
            "SELECT a[1:2], $1",
        ),
        (
            "named slice",
            "SELECT a[lo:hi], :version",
            "SELECT a[lo:hi], $1",
        ),
        (
            "slice after call",
            "SELECT a[f(1):hi], :version",
            "SELECT a[f(1):hi], $1",
        ),
        (
            "slice in slice",
            "SELECT a[b[1]:hi], :version",
            "SELECT a[b[1]:hi], $1",
        ),
        (
            "dollar in a name",
            "SELECT price$1, a$$b, :version",
            "SELECT price$1, a$$b, $1",
        ),
        ("assignment", "SELECT x := 1, :version", "SELECT x := 1, $1"),
    ];
    for (rule, sql, want) in cases {
        let s = rewrite(sql).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(s.sql, want, "{rule}");
        assert_eq!(s.params, vec![ParamSource::Version], "{rule}");
    }
}

#[test]
fn bad_parameters_are_refused_with_their_position() {
    type Kind = fn(&PlaceholderError) -> bool;
    let unknown: Kind = |e| matches!(e, PlaceholderError::Unknown { .. });
    let positional: Kind = |e| matches!(e, PlaceholderError::Positional { .. });
    let glued: Kind = |e| matches!(e, PlaceholderError::Glued { .. });
    let malformed: Kind = |e| matches!(e, PlaceholderError::Malformed { .. });
    let cases: Vec<(&str, &str, Kind)> = vec![
        ("SELECT :nope", ":nope", unknown),
        ("SELECT :stream", ":stream", unknown),
        ("SELECT :Stream_id", ":Stream_id", unknown),
        ("SELECT :version.x", ":version.x", unknown),
        ("SELECT :data, 'ok', :data_x", ":data_x", unknown),
        ("SELECT $1", "$1", positional),
        ("SELECT :data, $12 ", "$12", positional),
        ("SELECT x:version", ":version", glued),
        ("CASE WHEN a THEN:version END", ":version", glued),
        ("SELECT 1:version", ":version", glued),
        ("SELECT :data.1st", ":data.1", malformed),
        ("SELECT :data.a.\"k\"", ":data.a.\"", malformed),
        ("SELECT :donnée", ":donné", malformed),
    ];
    for (sql, token, kind) in cases {
        let e = rewrite(sql).unwrap_err();
        assert!(kind(&e), "{sql}: {e:?}");
        assert_eq!(e.token(), token, "{sql}");
        assert_eq!(&sql[e.offset()..e.offset() + token.len()], token, "{sql}");
    }
    assert_eq!(
        rewrite("SELECT :nope").unwrap_err().to_string(),
        "unknown placeholder :nope (known: :stream_id, :version, :position, :tx_id, :event_id, \
         :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, \
         :headers, :tenant_id, :data.<path>, :headers.<path>)"
    );
}

#[test]
fn json_paths_bind_as_text() {
    let v = json!({"s": "x \"q\"", "n": 4.5, "i": -3, "b": false, "z": null,
                   "o": {"k": [1, "two"], "e": {}}});
    let cases: [(&str, Option<&str>); 11] = [
        ("s", Some("x \"q\"")),
        ("n", Some("4.5")),
        ("i", Some("-3")),
        ("b", Some("false")),
        ("z", None),
        ("missing", None),
        ("o", Some(r#"{"e":{},"k":[1,"two"]}"#)),
        ("o.k", Some(r#"[1,"two"]"#)),
        ("o.e", Some("{}")),
        ("o.missing", None),
        ("s.deeper", None),
    ];
    for (p, want) in cases {
        assert_eq!(json_path_text(&v, &path(p)).as_deref(), want, "{p}");
    }
    // The empty path is the value itself.
    assert_eq!(json_path_text(&json!("t"), &[]), Some("t".into()));
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
  '''SELECT :version, ':x' ''',
]

[[projections]]
name = "audit"
batch_size = 5
on_error = "dead_letter"
[projections.handlers]
Opened = """
INSERT INTO audit VALUES (:event_id, :headers.user)"""
"#;

#[test]
fn a_full_file_parses_to_exactly_this() {
    let statement = |sql: &str, params: Vec<ParamSource>| Statement {
        sql: sql.into(),
        params,
    };
    let balances = ProjectionSpec {
        name: Identifier::parse("balances").unwrap(),
        setup: vec![
            "CREATE TABLE IF NOT EXISTS balances (id uuid PRIMARY KEY, n bigint)".into(),
            "SELECT 1".into(),
        ],
        reset: vec!["TRUNCATE balances".into()],
        batch_size: 100,
        max_retries: 7,
        on_error: OnError::Stop,
        versioned_tables: vec![],
        batch_handlers: BTreeMap::new(),
        handlers: BTreeMap::from([
            (
                "Opened".to_string(),
                vec![statement(
                    "INSERT INTO balances VALUES ($1, 0)",
                    vec![ParamSource::StreamId],
                )],
            ),
            (
                "funds.deposited".to_string(),
                vec![
                    statement(
                        "UPDATE balances SET n = n + $1::bigint WHERE id = $2",
                        vec![ParamSource::DataPath(path("amount")), ParamSource::StreamId],
                    ),
                    statement("SELECT $1, ':x' ", vec![ParamSource::Version]),
                ],
            ),
        ]),
    };
    let audit = ProjectionSpec {
        name: Identifier::parse("audit").unwrap(),
        setup: vec![],
        reset: vec![],
        batch_size: 5,
        max_retries: 3,
        on_error: OnError::DeadLetter,
        versioned_tables: vec![],
        batch_handlers: BTreeMap::new(),
        handlers: BTreeMap::from([(
            "Opened".to_string(),
            vec![statement(
                "INSERT INTO audit VALUES ($1, $2)",
                vec![ParamSource::EventId, ParamSource::HeaderPath(path("user"))],
            )],
        )]),
    };
    let file = ProjectionFile::parse(FILE).unwrap();
    assert_eq!(
        file,
        ProjectionFile {
            projections: vec![balances, audit]
        }
    );
    let balances = &file.projections[0];
    assert_eq!(
        balances.event_types().collect::<Vec<_>>(),
        ["Opened", "funds.deposited"]
    );
    assert!(balances.handles("funds.deposited"));
    assert!(!balances.handles("Closed") && !balances.handles("opened"));
    assert!(!balances.is_versioned());
}

/// `(defaults, overrides, expected batch_size, max_retries, on_error)`.
#[test]
fn projections_inherit_defaults_unless_they_override_them() {
    let cases = [
        ("", "", (500, 3, OnError::DeadLetter)),
        ("batch_size = 1\n", "", (1, 3, OnError::DeadLetter)),
        (
            "max_retries = 0\non_error = \"stop\"\n",
            "",
            (500, 0, OnError::Stop),
        ),
        (
            "on_error = \"stop\"\n",
            "on_error = \"dead_letter\"\n",
            (500, 3, OnError::DeadLetter),
        ),
        (
            "batch_size = 10\n",
            "batch_size = 10000\nmax_retries = 100\n",
            (10_000, 100, OnError::DeadLetter),
        ),
    ];
    for (defaults, overrides, want) in cases {
        let text = format!(
            "[defaults]\n{defaults}\n[[projections]]\nname = \"p\"\n{overrides}[projections.handlers]\nX = \"SELECT 1\"\n"
        );
        let file = ProjectionFile::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let p = &file.projections[0];
        assert_eq!((p.batch_size, p.max_retries, p.on_error), want, "{text}");
    }
}

/// A one-projection file whose projection has `extra` lines before its
/// handlers and `handlers` as its handler lines. The name is on line 2.
fn one(extra: &str, handlers: &str) -> String {
    format!("[[projections]]\nname = \"a\"\n{extra}[projections.handlers]\n{handlers}")
}

#[test]
fn errors_point_at_the_value_at_fault() {
    let ok = "X = \"SELECT 1\"\n";
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        (one("", "X = \"SELECT :nope\"\n"), (4, 13), "projection \"a\": handler \"X\": unknown placeholder :nope (known: :stream_id, :version, :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, :tenant_id, :data.<path>, :headers.<path>)"),
        // Escapes before the placeholder shift it in the file, not in the SQL.
        (one("", "X = \"SELECT '\\t\\u00e9', :oops\"\n"), (4, 25), "projection \"a\": handler \"X\": unknown placeholder :oops (known: :stream_id, :version, :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, :tenant_id, :data.<path>, :headers.<path>)"),
        (one("", "X = \"\"\"\nSELECT 1,\n  \\\n  :oops\n\"\"\"\n"), (7, 3), "projection \"a\": handler \"X\": unknown placeholder :oops (known: :stream_id, :version, :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, :tenant_id, :data.<path>, :headers.<path>)"),
        (one("", "X = ['SELECT 1', '''\nSELECT $2''']\n"), (5, 8), "projection \"a\": handler \"X\": positional parameter $2 is not allowed; use named placeholders such as :stream_id"),
        (one("", "X = \"SELECT a:version\"\n"), (4, 14), "projection \"a\": handler \"X\": placeholder :version directly follows a word; put a space or an operator before it"),
        (one("", "X = \"SELECT :data.2\"\n"), (4, 13), "projection \"a\": handler \"X\": malformed placeholder :data.2: names and path segments are ASCII letters, digits and '_', not starting with a digit"),
        (one("", "X = [\"SELECT 1\", \"   \"]\n"), (4, 18), "projection \"a\": handler \"X\": empty SQL statement"),
        (one("", "X = []\n"), (4, 5), "projection \"a\": handler \"X\": no SQL statements (give a string or a non-empty array of strings)"),
        (one("", "\" \" = \"SELECT 1\"\n"), (4, 1), "projection \"a\": an event type must not be empty"),
        (one("", "X = 1\n"), (4, 5), "invalid type: integer `1`, expected an SQL string or an array of SQL strings"),
        (one("", "X = [\"SELECT 1\", 2]\n"), (4, 18), "invalid type: integer `2`, expected a string"),
        // One statement per string: a second one is refused where it starts.
        (one("", "X = \"SELECT 1; SELECT 2\"\n"), (4, 14), "projection \"a\": handler \"X\": one statement per string (a handler's statements run one by one: give an array of strings)"),
        (one("", ""), (3, 1), "projection \"a\" has no handlers (add a [projections.handlers] table mapping event types to SQL, or [projections.batch_handlers] for set-based SQL)"),
        ("[[projections]]\nname = \"a\"\n".into(), (2, 8), "projection \"a\" has no handlers (add a [projections.handlers] table mapping event types to SQL, or [projections.batch_handlers] for set-based SQL)"),
        ("[[projections]]\nname = \"Bad-Name\"\n[projections.handlers]\nX = \"SELECT 1\"\n".into(), (2, 8), "invalid projection name: identifier \"Bad-Name\" may only contain lowercase letters, digits and '_', and must not start with a digit"),
        ("[[projections]]\nname = \"pg_x\"\n".into(), (2, 8), "invalid projection name: identifier \"pg_x\" uses the reserved prefix pg_"),
        (format!("{}\n{}", one("", ok), one("", ok)), (7, 8), "projection \"a\" is declared twice (first on line 2)"),
        (one("batch_size = 0\n", ok), (3, 14), "projection \"a\": batch_size must be between 1 and 10000, not 0"),
        (one("batch_size = 10001\n", ok), (3, 14), "projection \"a\": batch_size must be between 1 and 10000, not 10001"),
        (one("max_retries = -1\n", ok), (3, 15), "projection \"a\": max_retries must be between 0 and 100, not -1"),
        (one("max_retries = 4294967297\n", ok), (3, 15), "projection \"a\": max_retries must be between 0 and 100, not 4294967297"),
        (one("batch_size = \"5\"\n", ok), (3, 14), "invalid type: string \"5\", expected i64"),
        (one("on_error = \"ignore\"\n", ok), (3, 12), "projection \"a\": on_error must be \"dead_letter\" or \"stop\", not \"ignore\""),
        (format!("[defaults]\nmax_retries = 101\n{}", one("", ok)), (2, 15), "defaults: max_retries must be between 0 and 100, not 101"),
        (format!("[defaults]\non_error = \"Stop\"\n{}", one("", ok)), (2, 12), "defaults: on_error must be \"dead_letter\" or \"stop\", not \"Stop\""),
        (one("setup = \"CREATE TABLE t (x int DEFAULT :version)\"\n", ok), (3, 40), "projection \"a\": setup: :version is not allowed: setup SQL runs without an event, so it takes no parameters"),
        (one("reset = [\"TRUNCATE t\", \"DELETE FROM t WHERE a = $1\"]\n", ok), (3, 49), "projection \"a\": reset: $1 is not allowed: reset SQL runs without an event, so it takes no parameters"),
        (one("reset = \"\"\n", ok), (3, 9), "projection \"a\": reset: empty SQL statement"),
        (one("colour = 1\n", ok), (3, 1), "unknown field `colour`, expected one of `name`, `setup`, `reset`, `batch_size`, `max_retries`, `on_error`, `versioned_tables`, `handlers`, `batch_handlers`"),
        (format!("[defaults]\nbatchsize = 1\n{}", one("", ok)), (2, 1), "unknown field `batchsize`, expected one of `batch_size`, `max_retries`, `on_error`"),
        (format!("[projection]\n{}", one("", ok)), (1, 2), "unknown field `projection`, expected `defaults` or `projections`"),
        ("[[projections]]\nname = \"a\"\nthis is not toml\n".into(), (3, 6), "expected `.`, `=`"),
        ("[[projections]]\nhandlers = { X = \"SELECT 1\" }\n".into(), (1, 1), "missing field `name`"),
        ("# nothing\n".into(), (1, 1), "no projections declared (add a [[projections]] table)"),
        ("projections = []\n".into(), (1, 15), "no projections declared (add a [[projections]] table)"),
    ];
    for (text, (line, column), message) in cases {
        let e = ProjectionFile::parse(&text).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (line, column, message),
            "{text}"
        );
        assert_eq!(
            e.to_string(),
            format!("line {line}, column {column}: {message}")
        );
    }
}

#[test]
fn versioned_projections_render_their_version() {
    let text = r#"
[[projections]]
name = "balances"
versioned_tables = ["balances", "owners"]
setup = "CREATE TABLE IF NOT EXISTS balances_v{version} (id uuid PRIMARY KEY)"
reset = []
[projections.handlers]
Opened = "INSERT INTO balances_v{version} VALUES (:stream_id, '{version}')"
"#;
    let spec = ProjectionFile::parse(text).unwrap().projections.remove(0);
    assert!(spec.is_versioned());
    let tables: Vec<&str> = spec
        .versioned_tables
        .iter()
        .map(Identifier::as_str)
        .collect();
    assert_eq!(tables, ["balances", "owners"]);
    assert!(spec.reset.is_empty());
    // The declaration keeps the token; each version renders its own SQL.
    assert_eq!(
        spec.handlers["Opened"][0].sql,
        "INSERT INTO balances_v{version} VALUES ($1, '{version}')"
    );
    let v3 = spec.at_version(3);
    assert_eq!(
        v3.setup,
        ["CREATE TABLE IF NOT EXISTS balances_v3 (id uuid PRIMARY KEY)"]
    );
    let opened = &v3.handlers["Opened"][0];
    assert_eq!(opened.sql, "INSERT INTO balances_v3 VALUES ($1, '3')");
    assert_eq!(opened.params, [ParamSource::StreamId]);
    assert_eq!(
        (&v3.name, &v3.versioned_tables, v3.batch_size),
        (&spec.name, &spec.versioned_tables, spec.batch_size)
    );
    assert_eq!(
        render_version("t_v{version}_{version}", 4294967295),
        "t_v4294967295_4294967295"
    );
    assert_eq!(render_version("t_v{ version}", 2), "t_v{ version}");
}

#[test]
fn version_tokens_need_versioned_tables_and_the_reverse() {
    let ok = "X = \"SELECT 1 FROM t_v{version}\"\n";
    let long = "t".repeat(52);
    let cases: Vec<(String, (usize, usize), String)> = vec![
        (one("", "X = \"SELECT 1 FROM t_v{version}\"\n"), (4, 23), "projection \"a\": handler \"X\": uses {version} but the projection declares no versioned_tables".into()),
        (one("setup = ['SELECT 1', '''\nCREATE TABLE t_v{version} ()''']\n", "X = \"SELECT 1\"\n"), (4, 17), "projection \"a\": setup: uses {version} but the projection declares no versioned_tables".into()),
        (one("versioned_tables = []\n", ok), (5, 23), "projection \"a\": handler \"X\": uses {version} but the projection declares no versioned_tables".into()),
        (one("versioned_tables = [\"t\"]\n", "X = \"SELECT 1\"\n"), (3, 20), "projection \"a\" declares versioned_tables but no SQL uses {version} (name the tables <table>_v{version})".into()),
        (one("versioned_tables = [\"t\", \"T-1\"]\n", ok), (3, 26), "projection \"a\": invalid versioned table: identifier \"T-1\" may only contain lowercase letters, digits and '_', and must not start with a digit".into()),
        (one("versioned_tables = [\"t\", \"t\"]\n", ok), (3, 26), "projection \"a\": versioned table \"t\" is listed twice".into()),
        (one(&format!("versioned_tables = [\"{long}\"]\n"), ok), (3, 21), format!("projection \"a\": versioned table \"{long}\" is longer than 51 bytes, which leaves no room for its _v<version> suffix")),
    ];
    for (text, (line, column), message) in cases {
        let e = ProjectionFile::parse(&text).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message),
            (line, column, message),
            "{text}"
        );
    }
    // 51 bytes is the longest name whose every version fits 63 bytes.
    let longest = "t".repeat(51);
    let text = one(&format!("versioned_tables = [\"{longest}\"]\n"), ok);
    let spec = ProjectionFile::parse(&text).unwrap().projections.remove(0);
    let physical = format!("{}_v{}", spec.versioned_tables[0], u32::MAX);
    assert!(Identifier::parse(&physical).is_ok());
}

/// Where the skipped regions and placeholders of a generated statement are.
#[derive(Debug, Clone)]
enum Piece {
    /// Copied as is (and holding `:names` and `$n` that must survive).
    Opaque(String),
    /// A placeholder, optionally followed by a cast.
    Param(ParamSource, bool),
}

/// Text that may hold anything the scanner must not look into.
fn noise() -> impl Strategy<Value = String> {
    "[a-z :$0-9._=\\-]{0,10}"
}

fn opaque() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ,()=+]{0,6}",
        noise().prop_map(|s| format!("'{}'", s.replace('a', "''"))),
        noise().prop_map(|s| format!("E'{}'", s.replace('a', "\\'").replace('b', "\\\\"))),
        noise().prop_map(|s| format!("\"{}\"", s.replace('a', "\"\""))),
        noise().prop_map(|s| format!("--{s}\n")),
        noise().prop_map(|s| format!("/*{s}/*{s}*/{s}*/")),
        noise().prop_map(|s| format!("$${}$$", s.replace('$', ""))),
        noise().prop_map(|s| format!("$q$ {} $q$", s.replace('q', ""))),
        Just("now()::date".to_string()),
        Just("a[1:2]".to_string()),
        Just("a[lo:hi]".to_string()),
    ]
}

fn source() -> impl Strategy<Value = ParamSource> {
    let segments = prop::collection::vec("[a-z_][a-z0-9_]{0,3}", 1..3);
    prop_oneof![
        prop::sample::select(vec![
            ParamSource::StreamId,
            ParamSource::Version,
            ParamSource::Position,
            ParamSource::TxId,
            ParamSource::EventId,
            ParamSource::EventType,
            ParamSource::SchemaVersion,
            ParamSource::CreatedAt,
            ParamSource::CausationId,
            ParamSource::CorrelationId,
            ParamSource::Data,
            ParamSource::Headers,
        ]),
        segments.clone().prop_map(ParamSource::DataPath),
        segments.prop_map(ParamSource::HeaderPath),
    ]
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        opaque().prop_map(Piece::Opaque),
        (source(), any::<bool>()).prop_map(|(s, cast)| Piece::Param(s, cast)),
    ]
}

proptest! {
    /// Rewriting changes placeholders and nothing else: the expected output
    /// is built beside the input, each placeholder numbered by its first
    /// appearance, and every other byte copied.
    #[test]
    fn rewriting_touches_only_placeholders(pieces in prop::collection::vec(piece(), 0..12)) {
        let (mut sql, mut want) = (String::new(), String::new());
        let mut params: Vec<ParamSource> = Vec::new();
        for piece in &pieces {
            // Pieces are separated so that none glues onto the next.
            sql.push(' ');
            want.push(' ');
            match piece {
                Piece::Opaque(text) => {
                    sql.push_str(text);
                    want.push_str(text);
                }
                Piece::Param(source, cast) => {
                    let n = match params.iter().position(|p| p == source) {
                        Some(i) => i + 1,
                        None => {
                            params.push(source.clone());
                            params.len()
                        }
                    };
                    sql.push_str(&source.to_string());
                    want.push_str(&format!("${n}"));
                    if *cast {
                        sql.push_str("::int");
                        want.push_str("::int");
                    }
                }
            }
        }
        let got = rewrite(&sql).map_err(|e| TestCaseError::fail(format!("{sql:?}: {e}")))?;
        prop_assert_eq!(got, Statement { sql: want, params });
    }

    /// Whatever the input, the scanner neither panics nor loops, and text
    /// without a `:` or `$` comes back unchanged.
    #[test]
    fn arbitrary_text_is_scanned_safely(sql in "\\PC{0,40}") {
        let result = rewrite(&sql);
        if !sql.contains([':', '$']) {
            prop_assert_eq!(result.map(|s| s.sql), Ok(sql));
        }
    }

    /// A placeholder error is reported where the placeholder is written,
    /// however TOML had to write the SQL around it (escapes, literal or
    /// multi-line strings).
    #[test]
    fn placeholder_errors_point_into_the_written_string(
        before in "[a-z \\t\\n\\\\é€\u{7}'\"]{0,12}",
        after in "[a-z \\t\\n]{0,5}",
    ) {
        // Quotes would make SQL string literals; keep the SQL neutral.
        let before = before.replace(['\'', '"'], "x");
        let sql = format!("SELECT {before} :nope {after}");
        let mut handlers = toml::Table::new();
        handlers.insert("X".into(), toml::Value::String(sql));
        let mut projection = toml::Table::new();
        projection.insert("name".into(), "a".into());
        projection.insert("handlers".into(), toml::Value::Table(handlers));
        let mut file = toml::Table::new();
        file.insert("projections".into(), toml::Value::Array(vec![projection.into()]));
        let text = toml::to_string(&file).unwrap();
        let e = ProjectionFile::parse(&text).unwrap_err();
        let line = text.lines().nth(e.line - 1).unwrap();
        let rest: String = line.chars().skip(e.column - 1).collect();
        prop_assert!(rest.starts_with(":nope"), "{text:?} -> {e}");
    }
}

#[test]
fn tenant_id_is_a_lookup_of_the_streams_owner_by_its_id() {
    let s = rillflow_core::projection::rewrite(
        "INSERT INTO t VALUES (:tenant_id, :version, :stream_id, :tenant_id::text)",
    )
    .unwrap();
    let owner =
        "(SELECT rf_owner.tenant_id FROM rf_streams rf_owner WHERE rf_owner.stream_id = $1)";
    assert_eq!(
        s.sql,
        format!("INSERT INTO t VALUES ({owner}, $2, $1, {owner}::text)")
    );
    assert_eq!(s.params, vec![ParamSource::StreamId, ParamSource::Version]);
}
