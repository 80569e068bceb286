//! Check 2: the safe documented commands run against a scratch database.

use super::*;

/// What running a command against the fixture means.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    /// Changes nothing: runs on the shared copy.
    ReadOnly,
    /// Changes something: runs on a fresh copy of its own.
    Writes,
    /// Parse-checked only, for the reason given.
    Skip(&'static str),
}

pub(crate) fn plan(path: &[String], args: &[String]) -> Plan {
    let has = |f: &str| {
        args.iter()
            .any(|a| a == f || a.starts_with(&format!("{f}=")))
    };
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["projections", "run-loop"] => Plan::Skip("a daemon"),
        ["projections", "promote" | "demote"] => Plan::Skip("needs live nodes"),
        // Roles belong to the whole server, not to the scratch database.
        ["projections", "handler-role", "create"] => Plan::Skip("creates a server-wide role"),
        ["projections", "handler-role", "list"] => Plan::ReadOnly,
        ["demo"] => Plan::Skip("covered by tests/demo.rs"),
        ["db", ..] => Plan::Skip("manages a local server"),
        // The URL names the tenant's own server, which is not here;
        // tests/tenancy_databases.rs registers database tenants for real.
        ["tenants", "add"] if has("--url") => Plan::Skip("needs the tenant's own server"),
        ["events", "tail"] if !has("--once") => Plan::Skip("follows the log forever"),
        ["projections", "list" | "status" | "cluster-status" | "metrics" | "dlq-list" | "owners"]
        | ["health", "score"]
        | ["events", "read" | "tail"]
        | ["archive", "status"]
        | ["diag", "bundle"]
        | ["completions"] => Plan::ReadOnly,
        ["archive", "move"] if has("--dry-run") => Plan::ReadOnly,
        ["archive", "backend"] if !has("--set") => Plan::ReadOnly,
        ["migrate"] if has("--status") => Plan::ReadOnly,
        _ => Plan::Writes,
    }
}

/// A stream, the example projections caught up with one dead letter, two
/// registered hot/cold clusters and two empty tenants (`acme`, a schema
/// tenant, and `globex`, conjoined); returns the values placeholders take.
pub(crate) async fn build_fixture(db: &mut TestDb, bin: &Path, out_dir: &Path) -> Examples {
    let stream = Uuid::from_u128(0xd0c5_5eed_0000_0000_0000_0000_0000_0001);
    let store = db.store().await;
    let events = [
        ("AccountOpened", json!({ "owner": "docs" })),
        ("FundsDeposited", json!({ "amount": 5 })),
        // Not a number: account_balances cannot apply it and, after its
        // retries, dead-letters it.
        ("FundsDeposited", json!({ "amount": "lots" })),
        ("FundsWithdrawn", json!({ "amount": 2 })),
    ];
    for (t, data) in &events {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                &[NewEvent::new(*t, data.clone())],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    // A second stream, archived (marked, not moved), for the archive
    // commands.
    let archived = Uuid::from_u128(0xd0c5_5eed_0000_0000_0000_0000_0000_0002);
    store
        .append(
            archived,
            ExpectedVersion::Any,
            &[NewEvent::new("AccountOpened", json!({ "owner": "gone" }))],
            &Default::default(),
        )
        .await
        .unwrap();
    let file = root().join("examples/projections.toml");
    let cli = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fixture: {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Retries wait out a backoff between runs, and a transaction open
    // elsewhere on the server can hold the gap-safe horizon back; poll until
    // the dead letter is there, for a bounded while.
    let start = Instant::now();
    let dead_letter = loop {
        cli(&[
            "projections",
            "run-until-idle",
            "--projections",
            file.to_str().unwrap(),
        ]);
        let list: serde_json::Value = serde_json::from_str(&cli(&[
            "projections",
            "dlq-list",
            "account_balances",
            "--output",
            "json",
        ]))
        .unwrap();
        if let Some(id) = list
            .as_array()
            .and_then(|l| l.first())
            .map(|l| l["id"].clone())
        {
            break id.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the poison event was never dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    cli(&[
        "archive",
        "mark",
        &archived.to_string(),
        "--reason",
        "docs fixture",
    ]);
    // Tenants without streams, for the documented `tenants` commands
    // (`add` again is a no-op, `remove` finds them empty).
    cli(&["tenants", "add", "acme", "--mode", "schema"]);
    cli(&["tenants", "add", "globex", "--mode", "conjoined"]);
    let leases = PgLeaseStore::new(db.pool().await);
    for cluster in ["billing", "projections"] {
        for (i, node) in ["node-a", "node-b"].into_iter().enumerate() {
            let id = NodeIdentity {
                cluster: cluster.into(),
                node: node.into(),
                daemon_id: Uuid::from_u128(0xd0c5_0100 + i as u128),
            };
            leases
                .register(&id, 1, &ClusterTiming::default())
                .await
                .unwrap();
        }
    }
    // Lines for `events append --from-file`, to a stream of their own.
    let events_file = out_dir.join("events.jsonl");
    let loaded = Uuid::from_u128(0xd0c5_5eed_0000_0000_0000_0000_0000_0003);
    let lines: Vec<String> = (0..3)
        .map(|i| {
            json!({ "stream": loaded, "type": "Deposited", "data": { "amount": i } }).to_string()
        })
        .collect();
    std::fs::write(&events_file, lines.join("\n") + "\n").unwrap();
    Examples {
        url: db.url.clone(),
        stream,
        stream_version: events.len() as u64,
        archived,
        projection: "account_balances".into(),
        projections_file: file.display().to_string(),
        cluster: "billing".into(),
        node: "node-a".into(),
        dead_letter,
        out_file: out_dir.join("bundle.json").display().to_string(),
        events_file: events_file.display().to_string(),
    }
}

#[tokio::test]
pub(crate) async fn documented_commands_run_against_a_scratch_database() {
    let bin = rillflow_bin();
    let tree = command_tree(&bin);
    let commands = all_doc_commands(&tree);
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("docs-commands-run-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut fixture = TestDb::migrated().await;
    let mut examples = build_fixture(&mut fixture, &bin, &out_dir).await;
    let mut shared = fixture.copy().await;

    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, BTreeMap::<&str, usize>::new());
    for cmd in &commands {
        // Malformed notation and unknown placeholders are reported by the
        // parser check; here they are only skipped.
        let Ok(variants) = variants(cmd) else {
            continue;
        };
        for v in variants.into_iter().filter(|v| v.kind != Kind::Alternative) {
            let path = leading_path(&prefix_words(&v.words), &tree);
            let plan = plan(&path, &v.words);
            let mut fresh = None;
            let db = match plan {
                Plan::Skip(why) => {
                    *skipped.entry(why).or_default() += 1;
                    continue;
                }
                Plan::ReadOnly => &mut shared,
                Plan::Writes => fresh.insert(fixture.copy().await),
            };
            examples.url = db.url.clone();
            let Ok(args) = examples.concrete(&v.words) else {
                continue;
            };
            ran += 1;
            let mut command = Command::new(&bin);
            command
                .args(&args)
                .current_dir(root())
                .env("DATABASE_URL", &db.url)
                .env_remove("RUST_LOG")
                .env_remove("PARTITIONS")
                .env_remove("PARTITION_KEY")
                .env_remove("TOTAL_PARTITIONS");
            let out = match run_bounded(command, Duration::from_secs(120)) {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("{}\n    {e}", describe(cmd, &args)));
                    continue;
                }
            };
            // `--fail-below` turns a low score into status 3 on purpose.
            let below_threshold = path.first().is_some_and(|p| p == "health")
                && args.iter().any(|a| a.starts_with("--fail-below"))
                && out.status.code() == Some(3);
            if !(out.status.success() || below_threshold) {
                failures.push(format!(
                    "{}\n    failed ({}): {}",
                    describe(cmd, &args),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            drop(fresh);
        }
    }
    drop(shared);
    let _ = std::fs::remove_dir_all(&out_dir);
    eprintln!("{ran} documented command variants run; parse-checked only: {skipped:?}");
    assert!(
        failures.is_empty(),
        "{} documented command(s) failed against the fixture:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The docs hold plenty of runnable commands; finding few means the
    // extraction broke, not that the docs are fine.
    assert!(ran >= 40, "only {ran} documented commands were run");
}
