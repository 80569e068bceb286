//! The raw Postgres baselines the append benchmarks measure rillflow
//! against, and the rows both sides write.

use rillflow_core::partition_hash;
use sqlx::PgPool;
use uuid::Uuid;

const COLUMNS: &str = "position bigint NOT NULL, tx_id bigint NOT NULL, stream_id uuid NOT NULL,
    version bigint NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,
    schema_version integer NOT NULL, data jsonb NOT NULL, headers jsonb NOT NULL,
    causation_id uuid, correlation_id uuid, partition_hash integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()";

/// The baseline tables:
/// - `raw_indexed`: a plain table (no partitions, no trigger, no function)
///   with the same columns and the same read indexes as `events`; the ratio
///   to it is what the store's own machinery costs (head row, version and
///   idempotency checks, partition routing);
/// - `raw_bare`: the same columns with only a primary key, which nobody
///   could read a stream or the global feed from efficiently; the ratio to
///   it adds the cost of those indexes.
pub const BASELINES: [&str; 2] = ["raw_indexed", "raw_bare"];

/// Streams that receive single-event appends, as commands on live
/// aggregates do.
pub const LIVE_STREAMS: u64 = 10_000;

/// Creates the baseline tables and their position sequence.
pub async fn create_baselines(pool: &PgPool) {
    let ddl = [
        format!("CREATE TABLE raw_indexed ({COLUMNS})"),
        "CREATE INDEX ON raw_indexed (stream_id, version)".to_owned(),
        "CREATE INDEX ON raw_indexed (tx_id, position)".to_owned(),
        "CREATE INDEX ON raw_indexed USING brin (position)".to_owned(),
        format!("CREATE TABLE raw_bare ({COLUMNS}, PRIMARY KEY (position))"),
        "CREATE SEQUENCE raw_position_seq".to_owned(),
    ];
    for sql in ddl {
        sqlx::query(&sql)
            .execute(pool)
            .await
            .expect("baseline table");
    }
}

/// The payload of the `i`-th event of an append.
pub fn payload(i: usize) -> serde_json::Value {
    serde_json::json!({ "order": i, "sku": "ABC-123", "qty": 2, "price": "19.99" })
}

/// The live stream the `n`-th single append goes to.
pub fn live_stream(n: u64) -> Uuid {
    Uuid::from_u128(((0xB0_u128) << 120) | (n % LIVE_STREAMS) as u128)
}

/// The rows `rf_append` writes for `rows` events, in one multi-row INSERT
/// into `table`.
pub async fn raw_insert(pool: PgPool, table: &'static str, stream: Uuid, rows: usize) {
    let versions: Vec<i64> = (1..=rows as i64).collect();
    let data: Vec<serde_json::Value> = (0..rows).map(payload).collect();
    let sql = format!(
        "INSERT INTO {table} (position, tx_id, stream_id, version, event_id, event_type, schema_version,
                              data, headers, causation_id, correlation_id, partition_hash)
         SELECT nextval('raw_position_seq'), pg_current_xact_id()::text::bigint, $1, v, gen_random_uuid(),
                'ItemAdded', 1, d, '{{}}'::jsonb, NULL, NULL, $2
           FROM unnest($3::bigint[], $4::jsonb[]) AS t(v, d)"
    );
    sqlx::query(&sql)
        .bind(stream)
        .bind(partition_hash(stream))
        .bind(&versions)
        .bind(&data)
        .execute(&pool)
        .await
        .expect("raw insert");
}
