//! Set-based handlers in the projections file, and the batched form of a
//! declaration (the generated function's shape; running it is tested on
//! real Postgres in tests/declared_batch.rs).

use rillflow_core::projection::{BatchPlan, ParamSource, ProjectionFile, ProjectionSpec};

fn parse(text: &str) -> Vec<ProjectionSpec> {
    ProjectionFile::parse(text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .projections
}

const SET_BASED: &str = r#"
[[projections]]
name = "counts"
[projections.batch_handlers]
Counted = """
INSERT INTO counts AS c (stream_id, n, total)
SELECT stream_id, count(*), sum(:data.amount::bigint) FROM batch GROUP BY stream_id
ON CONFLICT (stream_id) DO UPDATE SET n = c.n + EXCLUDED.n"""
"#;

#[test]
fn a_set_based_handler_reads_batch_with_fields_as_columns() {
    let specs = parse(SET_BASED);
    let spec = &specs[0];
    assert!(spec.handlers.is_empty());
    assert!(spec.handles("Counted") && !spec.handles("Other"));
    assert_eq!(spec.event_types().collect::<Vec<_>>(), ["Counted"]);
    let statement = &spec.batch_handlers["Counted"][0];
    assert_eq!(
        statement.paths,
        [ParamSource::DataPath(vec!["amount".into()])]
    );
    // The statement as written follows the relation, the field a column.
    assert!(statement
        .sql
        .starts_with("WITH batch AS (SELECT u.seq, u.stream_id,"));
    assert!(statement.sql.ends_with(
        ")\nINSERT INTO counts AS c (stream_id, n, total)\nSELECT stream_id, count(*), sum(\"data.amount\"::bigint) FROM batch GROUP BY stream_id\nON CONFLICT (stream_id) DO UPDATE SET n = c.n + EXCLUDED.n"
    ), "{}", statement.sql);
    // The event type is a parameter, never part of the text.
    assert!(statement.sql.contains("WHERE u.event_type = $1::text)"));
    assert!(!statement.sql.contains("Counted"));
    // No per-event handlers: no function, the statement is sent as it is.
    let plan = BatchPlan::new(spec).unwrap();
    assert_eq!(plan.function, None);
}

fn with_batch(extra: &str, batch: &str) -> String {
    format!("[[projections]]\nname = \"a\"\n{extra}[projections.batch_handlers]\n{batch}")
}

#[test]
fn set_based_mistakes_point_at_the_value_at_fault() {
    let ok = "X = \"SELECT count(*) FROM batch\"\n";
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        (with_batch("", "X = \"INSERT INTO t SELECT :stream_id FROM batch\"\n"), (4, 27), "projection \"a\": batch handler \"X\": :stream_id is a column of batch in set-based SQL: write stream_id (and FROM batch)"),
        (with_batch("", "X = \"\"\"\nINSERT INTO t\nSELECT :tenant_id FROM batch\"\"\"\n"), (6, 8), "projection \"a\": batch handler \"X\": :tenant_id is a column of batch in set-based SQL: write tenant_id (and FROM batch)"),
        (with_batch("", "X = \"INSERT INTO t VALUES (1)\"\n"), (4, 5), "projection \"a\": batch handler \"X\": set-based SQL must read the relation batch (for example SELECT ... FROM batch GROUP BY stream_id)"),
        (with_batch("", "X = \"SELECT 'batch' -- batch\"\n"), (4, 5), "projection \"a\": batch handler \"X\": set-based SQL must read the relation batch (for example SELECT ... FROM batch GROUP BY stream_id)"),
        (with_batch("", &format!("X = \"SELECT :data.{} FROM batch\"\n", "a".repeat(60))), (4, 13), "projection \"a\": batch handler \"X\": :data.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa is too long to be a column of batch (at most 63 bytes after the ':')"),
        (with_batch("", "X = \"SELECT :nope FROM batch\"\n"), (4, 13), "projection \"a\": batch handler \"X\": unknown placeholder :nope (known: :stream_id, :version, :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, :tenant_id, :data.<path>, :headers.<path>)"),
        (with_batch("", "X = \"SELECT 1 FROM batch; SELECT 2\"\n"), (4, 25), "projection \"a\": batch handler \"X\": one statement per string (a handler's statements run one by one: give an array of strings)"),
        (with_batch("", "X = []\n"), (4, 5), "projection \"a\": batch handler \"X\": no SQL statements (give a string or a non-empty array of strings)"),
        (with_batch("", "X = \"SELECT * FROM t_v{version}, batch\"\n"), (4, 23), "projection \"a\": batch handler \"X\": uses {version} but the projection declares no versioned_tables"),
        (with_batch("[projections.handlers]\nX = \"SELECT 1\"\n", ok), (6, 1), "projection \"a\": event type \"X\" has both a handler and a batch handler; give it one or the other"),
        (with_batch("", ""), (3, 1), "projection \"a\" has no handlers (add a [projections.handlers] table mapping event types to SQL, or [projections.batch_handlers] for set-based SQL)"),
    ];
    for (text, (line, column), message) in cases {
        let e = ProjectionFile::parse(&text).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (line, column, message),
            "{text}"
        );
    }
    // Trailing semicolons are fine, and batch may be aliased or quoted.
    parse(&with_batch("", "X = \"SELECT 1 FROM \\\"batch\\\" b;\"\n"));
}

const MIXED: &str = r#"
[[projections]]
name = "mixed"
[projections.handlers]
"O'Brien" = [
  "INSERT INTO t VALUES (:stream_id, :data.x::int)",
  "UPDATE t SET n = n + 1 WHERE id = :stream_id RETURNING n",
  "SELECT pg_notify('c', :event_type)",
  "-- nothing but a comment",
]
[projections.batch_handlers]
Summed = "INSERT INTO s SELECT sum(:data.y::int) FROM batch"
"#;

#[test]
fn the_function_runs_common_statements_statically_and_the_rest_as_prepared() {
    let specs = parse(MIXED);
    let plan = BatchPlan::new(&specs[0]).unwrap();
    assert_eq!(plan.kinds, ["O'Brien", "Summed"]);
    assert_eq!(plan.kind("Summed"), Some(2));
    let f = plan.function.expect("per-event handlers need the function");
    assert!(
        f.name.starts_with("rf_decl_") && f.name.len() == 40,
        "{}",
        f.name
    );
    assert!(f
        .create
        .starts_with(&format!("CREATE FUNCTION pg_temp.{}(", f.name)));
    // A plain INSERT is static SQL with the event's values as variables.
    assert!(
        f.create
            .contains("INSERT INTO t VALUES (rf_decl_v1, rf_decl_v2::int)\n"),
        "{}",
        f.create
    );
    // RETURNING and SELECT keep their prepared text and parameters.
    assert!(f.create.contains("EXECUTE $rf_decl_q$UPDATE t SET n = n + 1 WHERE id = $1 RETURNING n$rf_decl_q$ USING rf_decl_v1;"), "{}", f.create);
    assert!(
        f.create
            .contains("EXECUTE $rf_decl_q$SELECT pg_notify('c', $1)$rf_decl_q$ USING rf_decl_v3;"),
        "{}",
        f.create
    );
    assert!(!f.create.contains("nothing but a comment"));
    // Set-based statements run after the loop, when their kind is present.
    assert!(
        f.create.contains("IF 2 = ANY (rf_decl_kind) THEN"),
        "{}",
        f.create
    );
    // Event types are numbered, never written into the function.
    assert!(!f.create.contains("O'Brien") && !f.create.contains("Summed"));
    // The same declaration gets the same name; another gets another.
    let again = BatchPlan::new(&parse(MIXED)[0]).unwrap().function.unwrap();
    assert_eq!(again.name, f.name);
    let other = BatchPlan::new(&parse(&MIXED.replace("n + 1", "n + 2"))[0]).unwrap();
    assert_ne!(other.function.unwrap().name, f.name);
}

#[test]
fn sql_using_the_generated_names_runs_event_by_event() {
    let text = MIXED.replace("INSERT INTO t", "INSERT INTO RF_DECL_t");
    assert_eq!(BatchPlan::new(&parse(&text)[0]), None);
}

#[test]
fn versions_render_into_set_based_sql() {
    let text = r#"
[[projections]]
name = "v"
versioned_tables = ["c"]
[projections.batch_handlers]
X = "INSERT INTO c_v{version} SELECT count(*) FROM batch"
"#;
    let spec = &parse(text)[0];
    let v7 = spec.at_version(7);
    assert!(v7.batch_handlers["X"][0]
        .sql
        .ends_with("INSERT INTO c_v7 SELECT count(*) FROM batch"));
}
