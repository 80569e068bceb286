//! The env file example beside the systemd unit: it defines what the unit
//! expands, and nothing the unit does not use.

use std::collections::{BTreeMap, BTreeSet};

use crate::read;
use crate::systemd::{exec_start, Unit, UNIT};

const ENV_EXAMPLE: &str = "deploy/systemd/rillflow.env.example";

/// KEY=value lines of an env file, comments and blank lines skipped.
fn env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=value: {l:?}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// The `${NAME}` references in `text`.
fn env_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        let end = rest[at..].find('}').expect("unclosed ${") + at;
        out.insert(rest[at + 2..end].to_owned());
        rest = &rest[end + 1..];
    }
    out
}

#[test]
fn the_env_example_defines_what_the_unit_expands() {
    let env = env_file(&read(ENV_EXAMPLE));
    let url = env.get("DATABASE_URL").expect("DATABASE_URL");
    assert!(
        url.starts_with("postgres://") || url.starts_with("postgresql://"),
        "{url}"
    );
    let unit_text = read(UNIT);
    let unit = Unit::parse(&unit_text);
    let cmd = exec_start(&unit).join(" ");
    let refs = env_refs(&cmd);
    assert!(!refs.is_empty());
    for var in &refs {
        assert!(
            env.contains_key(var),
            "ExecStart uses ${{{var}}}, which {ENV_EXAMPLE} does not define"
        );
    }
    // Every setting of the example is used somewhere (or read by the
    // binary itself), so the example documents nothing that does nothing.
    for key in env.keys() {
        assert!(
            refs.contains(key) || ["DATABASE_URL", "RUST_LOG"].contains(&key.as_str()),
            "{ENV_EXAMPLE}: {key} is not used by the unit"
        );
    }
    let health = env
        .get("RILLFLOW_HEALTH_BIND")
        .expect("RILLFLOW_HEALTH_BIND");
    health
        .parse::<std::net::SocketAddr>()
        .unwrap_or_else(|e| panic!("RILLFLOW_HEALTH_BIND {health}: {e}"));
    let standbys = env
        .get("RILLFLOW_MIN_COLD_STANDBYS")
        .expect("RILLFLOW_MIN_COLD_STANDBYS");
    standbys
        .parse::<u32>()
        .unwrap_or_else(|e| panic!("RILLFLOW_MIN_COLD_STANDBYS {standbys}: {e}"));
}
