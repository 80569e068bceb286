//! The Kubernetes manifests under deploy/k8s: every document parses, and the
//! fields that dynamic and static partitioning depend on say what
//! docs/partitions.md says they do. Needs no database and no cluster.
//!
//! Parses with `yaml-rust2` (dev-dependency, `default-features = false`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rillflow_core::projection::ProjectionFile;
use yaml_rust2::{Yaml, YamlLoader};

/// deploy/k8s, found from this test crate's directory (one level below the
/// workspace root).
fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

/// Every non-empty YAML document of one file.
fn documents(file: &str) -> Vec<Yaml> {
    let path = manifests_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs = YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", path.display()));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn kind(doc: &Yaml) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn name(doc: &Yaml) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The one document of `kind` in `docs`.
fn one<'a>(docs: &'a [Yaml], of: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs.iter().filter(|d| kind(d) == of).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {of}, found {}",
        found.len()
    );
    found[0]
}

fn kinds(docs: &[Yaml]) -> Vec<&str> {
    let mut k: Vec<&str> = docs.iter().map(kind).collect();
    k.sort();
    k
}

/// The container named `rillflow` of a workload's pod template.
fn container(workload: &Yaml) -> &Yaml {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_vec()
        .expect("containers");
    containers
        .iter()
        .find(|c| c["name"].as_str() == Some("rillflow"))
        .expect("a container named rillflow")
}

fn args(container: &Yaml) -> Vec<&str> {
    container["args"]
        .as_vec()
        .expect("container args")
        .iter()
        .map(|a| a.as_str().expect("every arg is a string"))
        .collect()
}

/// The value following `flag` in `args`, if the flag is there.
fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| *a == name)?;
    Some(
        args.get(at + 1)
            .copied()
            .unwrap_or_else(|| panic!("{name} has no value")),
    )
}

fn env<'a>(container: &'a Yaml, var: &str) -> Option<&'a Yaml> {
    container["env"]
        .as_vec()?
        .iter()
        .find(|e| e["name"].as_str() == Some(var))
}

fn int(y: &Yaml, what: &str) -> i64 {
    y.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {y:?}"))
}

/// A probe's port, resolved through the container's named ports.
fn probe_port(container: &Yaml, port: &Yaml) -> i64 {
    match port {
        Yaml::Integer(p) => *p,
        Yaml::String(named) => container["ports"]
            .as_vec()
            .expect("ports")
            .iter()
            .find(|p| p["name"].as_str() == Some(named))
            .map(|p| int(&p["containerPort"], "containerPort"))
            .unwrap_or_else(|| panic!("no container port named {named}")),
        other => panic!("unexpected probe port {other:?}"),
    }
}

fn labels(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or_default().to_owned(),
                        v.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `selector` picks out the pods of `template_labels`.
fn selects(selector: &Yaml, template_labels: &Yaml) -> bool {
    let want = labels(selector);
    let have = labels(template_labels);
    !want.is_empty() && want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// The projections file a workload runs: mounted from a ConfigMap of the
/// same manifest, and a valid projections file.
fn check_projections_file(docs: &[Yaml], workload: &Yaml) {
    let c = container(workload);
    let file = flag(&args(c), "--projections").expect("--projections FILE");
    let (dir, key) = file.rsplit_once('/').expect("an absolute path");
    let mount = c["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = workload["spec"]["template"]["spec"]["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let map_name = volume["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap volume");
    let map = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap" && name(d) == map_name)
        .unwrap_or_else(|| panic!("ConfigMap {map_name} is not in the manifest"));
    let toml = map["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{map_name} has no {key}"));
    if let Err(e) = ProjectionFile::parse(toml) {
        panic!("{map_name}/{key} is not a valid projections file: {e}");
    }
}

#[test]
fn every_manifest_parses_and_names_its_objects() {
    let mut files: Vec<String> = std::fs::read_dir(manifests_dir())
        .expect("deploy/k8s")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "hotcold-deployment.yaml",
            "projections-autoscaled.yaml",
            "projections-static.yaml"
        ],
        "a new manifest needs checks here or in tests/deploy_artifacts/"
    );
    for file in files.iter().filter(|f| f.starts_with("projections-")) {
        let docs = documents(file);
        assert!(!docs.is_empty(), "{file}: no documents");
        for doc in &docs {
            assert!(
                doc["apiVersion"].as_str().is_some(),
                "{file}: a document without apiVersion"
            );
            assert!(!kind(doc).is_empty(), "{file}: a document without kind");
            assert!(
                !name(doc).is_empty(),
                "{file}: a {} without a name",
                kind(doc)
            );
        }
        // Nothing in deploy/k8s autoscales anything but a Deployment.
        for hpa in docs.iter().filter(|d| kind(d) == "HorizontalPodAutoscaler") {
            assert_eq!(
                hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
                Some("Deployment"),
                "{file}: only auto-mode Deployments may be autoscaled"
            );
        }
    }
}

#[test]
fn the_autoscaled_deployment_runs_auto_mode_under_an_hpa() {
    let docs = documents("projections-autoscaled.yaml");
    assert_eq!(
        kinds(&docs),
        ["ConfigMap", "Deployment", "HorizontalPodAutoscaler"]
    );

    let deployment = one(&docs, "Deployment");
    assert_eq!(deployment["apiVersion"].as_str(), Some("apps/v1"));
    assert!(
        deployment["spec"]["replicas"].is_badvalue(),
        "the HPA owns the replica count; a fixed one is reset by every apply"
    );
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        &deployment["spec"]["template"]["metadata"]["labels"]
    ));

    let c = container(deployment);
    assert_eq!(c["image"].as_str(), Some("rillflow:latest"));
    let a = args(c);
    assert!(
        a.windows(2).any(|w| w == ["projections", "run-loop"]),
        "runs the daemon: {a:?}"
    );
    assert!(
        a.windows(2).any(|w| w == ["--partitions", "auto"]),
        "auto mode: {a:?}"
    );
    assert_eq!(
        flag(&a, "--node-name"),
        Some("$(POD_NAME)"),
        "unique node name per pod"
    );
    assert_eq!(flag(&a, "--partition-key"), None, "refused in auto mode");
    assert_eq!(
        flag(&a, "--cluster-mode"),
        None,
        "hotcold is refused with auto"
    );
    assert!(env(c, "PARTITION_KEY").is_none(), "refused in auto mode");
    let total: i64 = flag(&a, "--total-partitions")
        .expect("--total-partitions N")
        .parse()
        .expect("a number");
    assert!(total >= 1);

    let pod_name = env(c, "POD_NAME").expect("POD_NAME");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.name"),
        "POD_NAME from the downward API"
    );
    let db = env(c, "DATABASE_URL").expect("DATABASE_URL");
    assert!(
        db["valueFrom"]["secretKeyRef"]["name"].as_str().is_some(),
        "DATABASE_URL from a Secret"
    );

    // Timings: ttl more than twice the heartbeat (what the daemon's own
    // check refuses otherwise); SIGTERM leaves room for a batch (bounded by
    // the lease ttl) and the release.
    let heartbeat: i64 = flag(&a, "--heartbeat-secs").unwrap_or("5").parse().unwrap();
    let ttl: i64 = flag(&a, "--lease-ttl-secs")
        .unwrap_or("30")
        .parse()
        .unwrap();
    assert!(
        ttl > 2 * heartbeat,
        "lease ttl {ttl} <= 2 x heartbeat {heartbeat}"
    );
    let grace = int(
        &deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    );
    assert!(
        grace > ttl,
        "grace period {grace}s must outlast a batch ({ttl}s lease)"
    );

    // Health server on 0.0.0.0:9090, probed there; readiness on `/`.
    let bind = flag(&a, "--health-bind").expect("--health-bind");
    assert_eq!(bind, "0.0.0.0:9090");
    let readiness = &c["readinessProbe"]["httpGet"];
    assert_eq!(readiness["path"].as_str(), Some("/"));
    assert_eq!(probe_port(c, &readiness["port"]), 9090);
    let liveness = &c["livenessProbe"];
    let live_port = if liveness["httpGet"].is_badvalue() {
        &liveness["tcpSocket"]["port"]
    } else {
        &liveness["httpGet"]["port"]
    };
    assert_eq!(probe_port(c, live_port), 9090);
    assert!(
        !c["resources"]["requests"]["cpu"].is_badvalue(),
        "a CPU request, which the HPA's utilization is measured against"
    );

    check_projections_file(&docs, deployment);

    let hpa = one(&docs, "HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["apiVersion"].as_str(), Some("apps/v1"));
    assert_eq!(target["kind"].as_str(), Some("Deployment"));
    assert_eq!(target["name"].as_str(), Some(name(deployment)));
    assert_eq!(int(&hpa["spec"]["minReplicas"], "minReplicas"), 1);
    let max = int(&hpa["spec"]["maxReplicas"], "maxReplicas");
    assert!(
        (1..=total).contains(&max),
        "maxReplicas {max} must not exceed the partition count {total}"
    );
    let metrics = hpa["spec"]["metrics"].as_vec().expect("metrics");
    assert!(
        metrics
            .iter()
            .any(|m| m["type"].as_str() == Some("Resource")
                && m["resource"]["name"].as_str() == Some("cpu")),
        "CPU-based"
    );
    let down = &hpa["spec"]["behavior"]["scaleDown"];
    assert!(
        int(
            &down["stabilizationWindowSeconds"],
            "stabilizationWindowSeconds"
        ) > 0
    );
    let policies = down["policies"].as_vec().expect("scaleDown policies");
    assert!(!policies.is_empty());
    for p in policies {
        assert_eq!(p["type"].as_str(), Some("Pods"), "scale down by pods");
        assert_eq!(int(&p["value"], "value"), 1, "one pod per period");
        assert!(
            int(&p["periodSeconds"], "periodSeconds") >= ttl + heartbeat,
            "a removal must be absorbed (ttl + heartbeat) before the next"
        );
    }
}

#[test]
fn the_static_statefulset_derives_its_partition_from_the_ordinal() {
    let docs = documents("projections-static.yaml");
    assert_eq!(kinds(&docs), ["ConfigMap", "Service", "StatefulSet"]);

    let set = one(&docs, "StatefulSet");
    assert_eq!(set["apiVersion"].as_str(), Some("apps/v1"));
    let template_labels = &set["spec"]["template"]["metadata"]["labels"];
    assert!(selects(
        &set["spec"]["selector"]["matchLabels"],
        template_labels
    ));
    assert_eq!(
        set["spec"]["podManagementPolicy"].as_str(),
        Some("Parallel"),
        "every partition's pod starts without waiting for the others to be ready"
    );

    let c = container(set);
    assert_eq!(c["image"].as_str(), Some("rillflow:latest"));
    let a = args(c);
    assert!(a.windows(2).any(|w| w == ["projections", "run-loop"]));
    assert_eq!(flag(&a, "--partitions"), None, "static mode, not auto");
    assert_eq!(
        flag(&a, "--partition-key"),
        None,
        "the key comes from the ordinal"
    );
    assert_eq!(
        flag(&a, "--total-partitions"),
        None,
        "the count is TOTAL_PARTITIONS"
    );

    let key = env(c, "PARTITION_KEY").expect("PARTITION_KEY");
    assert_eq!(
        key["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.labels['apps.kubernetes.io/pod-index']"),
        "PARTITION_KEY from the pod ordinal label"
    );
    let total: i64 = env(c, "TOTAL_PARTITIONS").expect("TOTAL_PARTITIONS")["value"]
        .as_str()
        .expect("TOTAL_PARTITIONS as a string")
        .parse()
        .expect("a number");
    assert_eq!(
        int(&set["spec"]["replicas"], "replicas"),
        total,
        "one pod per partition: replicas must equal TOTAL_PARTITIONS"
    );
    assert!(
        env(c, "DATABASE_URL").expect("DATABASE_URL")["valueFrom"]["secretKeyRef"]["name"]
            .as_str()
            .is_some()
    );

    let service = one(&docs, "Service");
    assert_eq!(name(service), set["spec"]["serviceName"].as_str().unwrap());
    assert_eq!(
        service["spec"]["clusterIP"].as_str(),
        Some("None"),
        "headless"
    );
    assert!(selects(&service["spec"]["selector"], template_labels));

    check_projections_file(&docs, set);
}
