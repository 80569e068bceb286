//! The docker-compose cluster: Postgres, a one-shot migration and three
//! hot/cold nodes.

use std::collections::{BTreeMap, BTreeSet};

use rillflow_core::projection::ProjectionFile;
use yaml_rust2::Yaml;

use crate::{checked_ttl, flag, root, seconds, strings, yaml};

pub(crate) const COMPOSE: &str = "deploy/docker-compose.yml";

/// The URL's user, password, host and database.
fn url_parts(url: &str) -> (String, String, String, String) {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("not a postgres URL: {url}"));
    let (auth, rest) = rest.split_once('@').expect("user@host");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, db) = rest.split_once('/').expect("host/database");
    let host = hostport.split(':').next().unwrap();
    let db = db.split('?').next().unwrap();
    (user.into(), password.into(), host.into(), db.into())
}

#[test]
fn compose_runs_postgres_a_migration_and_three_hotcold_nodes() {
    let docs = yaml(COMPOSE);
    assert_eq!(docs.len(), 1);
    let services = docs[0]["services"].as_hash().expect("services");
    let service = |name: &str| {
        services
            .get(&Yaml::String(name.into()))
            .unwrap_or_else(|| panic!("no service {name}"))
    };
    let postgres = service("postgres");
    assert!(
        postgres["image"]
            .as_str()
            .is_some_and(|i| i == "postgres:15" || i.starts_with("postgres:15")),
        "Postgres 15"
    );
    assert!(
        !postgres["healthcheck"]["test"].is_badvalue(),
        "postgres has a healthcheck the others wait for"
    );
    let pg_env = &postgres["environment"];
    let pg = (
        pg_env["POSTGRES_USER"].as_str().expect("POSTGRES_USER"),
        pg_env["POSTGRES_PASSWORD"]
            .as_str()
            .expect("POSTGRES_PASSWORD"),
        pg_env["POSTGRES_DB"].as_str().expect("POSTGRES_DB"),
    );

    let condition = |svc: &Yaml, on: &str| {
        svc["depends_on"][on]["condition"]
            .as_str()
            .map(str::to_owned)
    };
    let check_rillflow = |name: &str, svc: &Yaml| {
        assert_eq!(svc["image"].as_str(), Some("rillflow:latest"), "{name}");
        assert_eq!(
            svc["build"]["dockerfile"].as_str(),
            Some("deploy/Dockerfile"),
            "{name}"
        );
        let context = svc["build"]["context"].as_str().expect("build context");
        assert_eq!(
            root().join("deploy").join(context).canonicalize().unwrap(),
            root(),
            "{name}: the build context is the workspace"
        );
        let url = svc["environment"]["DATABASE_URL"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: DATABASE_URL"));
        let (user, password, host, db) = url_parts(url);
        assert_eq!(host, "postgres", "{name}: {url}");
        assert_eq!(
            (user.as_str(), password.as_str(), db.as_str()),
            pg,
            "{name}: DATABASE_URL does not match the postgres service"
        );
        assert_eq!(
            condition(svc, "postgres").as_deref(),
            Some("service_healthy"),
            "{name}"
        );
    };

    let migrate = service("migrate");
    check_rillflow("migrate", migrate);
    assert_eq!(strings(&migrate["command"]), ["migrate"]);
    assert_eq!(migrate["restart"].as_str(), Some("no"), "a one-shot job");

    let mut nodes = BTreeMap::new();
    let mut clusters = BTreeSet::new();
    for (key, svc) in services {
        let name = key.as_str().unwrap();
        if svc["command"].as_vec().is_none() || !strings(&svc["command"]).contains(&"run-loop") {
            continue;
        }
        check_rillflow(name, svc);
        let args = strings(&svc["command"]);
        assert_eq!(&args[..2], ["projections", "run-loop"], "{name}");
        assert_eq!(flag(&args, "--cluster-mode"), Some("hotcold"), "{name}");
        clusters.insert(
            flag(&args, "--cluster-name")
                .expect("--cluster-name")
                .to_owned(),
        );
        let node = flag(&args, "--node-name").expect("--node-name");
        assert!(
            nodes.insert(node.to_owned(), name.to_owned()).is_none(),
            "node name {node} used twice"
        );
        assert_eq!(
            condition(svc, "migrate").as_deref(),
            Some("service_completed_successfully"),
            "{name}: the daemon does not migrate; it must wait for `migrate`"
        );
        let ttl = checked_ttl(&args, name);
        let grace = seconds(
            svc["stop_grace_period"]
                .as_str()
                .expect("stop_grace_period"),
        );
        assert!(
            grace > ttl,
            "{name}: stop_grace_period {grace}s <= ttl {ttl}s"
        );

        let bind = flag(&args, "--health-bind").expect("--health-bind");
        let addr: std::net::SocketAddr = bind.parse().expect("--health-bind ADDR:PORT");
        assert!(
            addr.ip().is_unspecified(),
            "{name}: bind 0.0.0.0 so the published port reaches it"
        );
        let check = strings(&svc["healthcheck"]["test"]).join(" ");
        assert!(
            check.contains(&format!("/{}", addr.port())),
            "{name}: the healthcheck probes the health port {}: {check}",
            addr.port()
        );
        let projections = flag(&args, "--projections").expect("--projections");
        let mount = strings(&svc["volumes"])
            .into_iter()
            .find(|v| v.split(':').nth(1) == Some(projections))
            .unwrap_or_else(|| panic!("{name}: {projections} is not mounted"));
        let host_file = root().join("deploy").join(mount.split(':').next().unwrap());
        let toml = std::fs::read_to_string(&host_file)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}", host_file.display()));
        ProjectionFile::parse(&toml).unwrap_or_else(|e| panic!("{}: {e}", host_file.display()));
    }
    assert_eq!(
        nodes.values().cloned().collect::<Vec<_>>(),
        ["node-a", "node-b", "node-c"],
        "three nodes"
    );
    assert_eq!(clusters.len(), 1, "one cluster: {clusters:?}");
}
