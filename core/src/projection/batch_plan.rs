//! How a declared projection applies a whole batch in one round trip.
//!
//! The batch travels as arrays, one element per event, bound as parameters.
//! A projection with per-event handlers gets a PL/pgSQL function, created
//! by the session in its own temporary schema: it walks the events in order
//! and runs each one's statements, so every statement sees what the ones
//! before it wrote, exactly as when they run one by one. Statements of the
//! common shapes (INSERT, UPDATE, DELETE) are written into the function as
//! static SQL, whose plans the session caches; others run through `EXECUTE`
//! with the very text and parameters the per-event path prepares. Then the
//! set-based statements run, each once over its events. A projection with
//! only set-based handlers needs no function: its statements are sent as
//! they are.
//!
//! Failures: the loop sits in one block with an exception handler (one
//! subtransaction per call, not per event), which rolls the call's effects
//! back and returns the failing event's index and the error, so the caller
//! learns which event failed without aborting its transaction. Statement
//! cancellation is not caught, so a batch's time budget still ends it.
//!
//! Nothing of an event reaches the function's text: values are parameters,
//! the event types are numbered (the numbers and the names travel as
//! arrays), and the user's SQL is placed between dollar quotes whose tag
//! it may not contain.

use std::fmt::Write;

use super::batch_statement::{array_type, sql_type, BatchStatement, BATCH_COLUMNS};
use super::param_source::ParamSource;
use super::spec::ProjectionSpec;
use super::sql_lex;
use super::statement::Statement;

/// Every name the generated code uses starts with this; SQL that contains
/// it cannot be batched (a user's column could shadow a variable).
const RESERVED: &str = "rf_decl_";

/// The batched form of one (version-rendered) projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// The handled event types; an event's kind is its index here plus 1.
    pub kinds: Vec<String>,
    /// After the kinds (`$1`, integer[]) and the type names (`$2`,
    /// text[]), the call binds one array per entry, in this order.
    pub arrays: Vec<ParamSource>,
    /// The function, when there are per-event handlers.
    pub function: Option<BatchFunction>,
}

/// A generated function and how to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFunction {
    /// Its name in `pg_temp`: `rf_decl_` and a hash of its definition, so
    /// that two definitions never share a name and one session can hold the
    /// functions of every projection and version it runs.
    pub name: String,
    /// `CREATE FUNCTION pg_temp.<name> ...`, without parameters.
    pub create: String,
    /// The call: returns one row `(failed integer, state text, message
    /// text)`, all NULL when every event applied.
    pub call: String,
}

impl BatchPlan {
    /// The plan for `spec`, or None when its SQL uses the reserved prefix
    /// `rf_decl_` (then it runs event by event).
    pub fn new(spec: &ProjectionSpec) -> Option<BatchPlan> {
        let all_sql = spec
            .handlers
            .values()
            .flatten()
            .map(|s| s.sql.as_str())
            .chain(
                spec.batch_handlers
                    .values()
                    .flatten()
                    .map(|s| s.sql.as_str()),
            );
        if all_sql
            .clone()
            .any(|sql| sql.to_ascii_lowercase().contains(RESERVED))
        {
            return None;
        }
        let kinds: Vec<String> = spec.event_types().map(str::to_owned).collect();
        let mut arrays: Vec<ParamSource> = Vec::new();
        let mut add = |source: &ParamSource| {
            if !arrays.contains(source) {
                arrays.push(source.clone());
            }
        };
        for statement in spec.handlers.values().flatten() {
            statement.params.iter().for_each(&mut add);
        }
        for statement in spec.batch_handlers.values().flatten() {
            // In the order of `BATCH_COLUMNS`, so that plans do not depend
            // on the order statements happen to name them.
            BATCH_COLUMNS
                .iter()
                .filter(|(_, s)| statement.needs.contains(s))
                .for_each(|(_, s)| add(s));
            statement.paths.iter().for_each(&mut add);
        }
        let function = (!spec.handlers.is_empty()).then(|| function(spec, &kinds, &arrays));
        Some(BatchPlan {
            kinds,
            arrays,
            function,
        })
    }

    /// The kind number of `event_type`, if handled.
    pub fn kind(&self, event_type: &str) -> Option<i32> {
        self.kinds
            .iter()
            .position(|k| k == event_type)
            .map(|i| i as i32 + 1)
    }
}

fn array(j: usize) -> String {
    format!("{RESERVED}a{j}")
}

fn var(j: usize) -> String {
    format!("{RESERVED}v{j}")
}

fn index_of(arrays: &[ParamSource], source: &ParamSource) -> usize {
    arrays
        .iter()
        .position(|s| s == source)
        .expect("every source a statement uses has an array")
        + 1
}

fn function(spec: &ProjectionSpec, kinds: &[String], arrays: &[ParamSource]) -> BatchFunction {
    let mut params = format!("{RESERVED}kind integer[], {RESERVED}types text[]");
    let mut declare = format!(
        "DECLARE\n  {RESERVED}i integer := 0;\n  {RESERVED}n integer := coalesce(array_length({RESERVED}kind, 1), 0);\n"
    );
    for (j, source) in arrays.iter().enumerate() {
        let _ = write!(params, ", {} {}[]", array(j + 1), array_type(source));
        let _ = writeln!(declare, "  {} {};", var(j + 1), sql_type(source));
    }
    params.push_str(&format!(
        ", OUT {RESERVED}failed integer, OUT {RESERVED}state text, OUT {RESERVED}message text"
    ));
    let mut body = String::new();
    let _ = writeln!(
        body,
        "    WHILE {RESERVED}i < {RESERVED}n LOOP\n      {RESERVED}i := {RESERVED}i + 1;\n      CASE {RESERVED}kind[{RESERVED}i]"
    );
    for (k, event_type) in kinds.iter().enumerate() {
        let Some(statements) = spec.handlers.get(event_type) else {
            continue;
        };
        let _ = writeln!(body, "      WHEN {} THEN", k + 1);
        let mut used: Vec<usize> = statements
            .iter()
            .flat_map(|s| s.params.iter().map(|p| index_of(arrays, p)))
            .collect();
        used.sort_unstable();
        used.dedup();
        for j in used {
            let source = &arrays[j - 1];
            let cast = if array_type(source) == sql_type(source) {
                String::new()
            } else {
                format!("::{}", sql_type(source))
            };
            let _ = writeln!(
                body,
                "        {} := {}[{RESERVED}i]{cast};",
                var(j),
                array(j)
            );
        }
        for statement in statements {
            per_event(&mut body, statement, arrays);
        }
    }
    let _ = writeln!(body, "      ELSE NULL;\n      END CASE;\n    END LOOP;");
    // A set-based statement's failure belongs to no single event.
    let _ = writeln!(body, "    {RESERVED}i := 0;");
    for (k, event_type) in kinds.iter().enumerate() {
        for statement in spec.batch_handlers.get(event_type).into_iter().flatten() {
            set_based(&mut body, k + 1, statement, arrays);
        }
    }
    let text = format!(
        "({params})\nLANGUAGE plpgsql VOLATILE AS $rf_decl_body$\n#variable_conflict use_column\n{declare}BEGIN\n  BEGIN\n{body}  EXCEPTION WHEN OTHERS THEN\n    GET STACKED DIAGNOSTICS {RESERVED}state = RETURNED_SQLSTATE, {RESERVED}message = MESSAGE_TEXT;\n    {RESERVED}failed := greatest({RESERVED}i - 1, 0);\n  END;\nEND\n$rf_decl_body$"
    );
    let name = format!("{RESERVED}{:032x}", fnv1a_128(text.as_bytes()));
    let mut call = format!(
        "SELECT {RESERVED}failed, {RESERVED}state, {RESERVED}message FROM pg_temp.{name}($1::integer[], $2::text[]"
    );
    for (j, source) in arrays.iter().enumerate() {
        let _ = write!(call, ", ${}::{}[]", j + 3, array_type(source));
    }
    call.push(')');
    BatchFunction {
        create: format!("CREATE FUNCTION pg_temp.{name}{text}"),
        name,
        call,
    }
}

/// One per-event statement inside the loop: static when PL/pgSQL runs it
/// exactly as a prepared statement would (a data-changing statement that
/// returns nothing), else `EXECUTE` of the prepared text.
fn per_event(body: &mut String, statement: &Statement, arrays: &[ParamSource]) {
    let (sql, _) = sql_lex::single_statement(&statement.sql);
    if sql_lex::tokens(sql).is_empty() {
        // Blank or only comments: Postgres runs nothing.
        return;
    }
    let vars: Vec<String> = statement
        .params
        .iter()
        .map(|p| var(index_of(arrays, p)))
        .collect();
    let is_static = matches!(
        sql_lex::first_word(sql).as_deref(),
        Some("insert" | "update" | "delete")
    ) && !sql_lex::mentions(sql, "returning");
    if is_static {
        let text = sql_lex::replace_params(sql, |n| vars[n - 1].clone());
        let _ = writeln!(body, "        {text}\n        ;");
    } else {
        let _ = writeln!(
            body,
            "        EXECUTE $rf_decl_q${sql}$rf_decl_q${};",
            using(&vars)
        );
    }
}

/// One set-based statement after the loop, run when the batch holds events
/// of its kind.
fn set_based(body: &mut String, kind: usize, statement: &BatchStatement, arrays: &[ParamSource]) {
    let mut args = vec![format!("{RESERVED}types[{kind}]")];
    for (_, source) in BATCH_COLUMNS.iter() {
        args.push(if statement.needs.contains(source) {
            array(index_of(arrays, source))
        } else {
            // A column it cannot reach: NULL in every row.
            format!("NULL::{}[]", array_type(source))
        });
    }
    for path in &statement.paths {
        args.push(array(index_of(arrays, path)));
    }
    let _ = writeln!(
        body,
        "    IF {kind} = ANY ({RESERVED}kind) THEN\n      EXECUTE $rf_decl_q${}$rf_decl_q${};\n    END IF;",
        statement.sql,
        using(&args)
    );
}

fn using(args: &[String]) -> String {
    if args.is_empty() {
        String::new()
    } else {
        format!(" USING {}", args.join(", "))
    }
}

/// FNV-1a, 128 bits: a stable name for a definition (not a defence against
/// anyone: only this session can create functions in its `pg_temp`).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}
