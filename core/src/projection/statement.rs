//! A handler statement with its named parameters made positional.

use serde::Serialize;

use super::param_source::ParamSource;
use super::placeholders::{scan, PlaceholderError};

/// A statement ready to prepare: `sql` uses `$1`, `$2`, ... and `params[i]`
/// says where the value of `$i+1` comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// The SQL with positional parameters.
    pub sql: String,
    /// The value of each parameter, in number order.
    pub params: Vec<ParamSource>,
}

/// Rewrites the `:name` placeholders of `sql` to `$n`. Parameters are
/// numbered in order of first appearance and a repeated name reuses its
/// number, so each value is bound once. Everything else is copied as is.
///
/// `:tenant_id` becomes a scalar subquery reading the owner of the event's
/// stream from `rf_streams`, by the stream id's parameter: the reader does
/// not carry owners, and only statements that ask pay for the lookup.
pub fn rewrite(sql: &str) -> Result<Statement, PlaceholderError> {
    let mut out = String::with_capacity(sql.len());
    let mut params: Vec<ParamSource> = Vec::new();
    let mut copied = 0;
    for placeholder in scan(sql)? {
        let owner = placeholder.source == ParamSource::TenantId;
        let source = if owner {
            ParamSource::StreamId
        } else {
            placeholder.source
        };
        let number = match params.iter().position(|p| *p == source) {
            Some(index) => index + 1,
            None => {
                params.push(source);
                params.len()
            }
        };
        out.push_str(&sql[copied..placeholder.range.start]);
        if owner {
            out.push_str(&format!(
                "(SELECT rf_owner.tenant_id FROM rf_streams rf_owner WHERE rf_owner.stream_id = ${number})"
            ));
        } else {
            out.push('$');
            out.push_str(&number.to_string());
        }
        copied = placeholder.range.end;
    }
    out.push_str(&sql[copied..]);
    Ok(Statement { sql: out, params })
}
