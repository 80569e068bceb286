//! The hot/cold Kubernetes Deployment: standbys kept, SIGTERM handed over
//! within the grace period, a disruption budget, and no autoscaler.

use rillflow_core::projection::ProjectionFile;
use yaml_rust2::Yaml;

use crate::{checked_ttl, flag, read, root, strings, yaml};

pub(crate) const HOTCOLD: &str = "deploy/k8s/hotcold-deployment.yaml";

pub(crate) fn kind(doc: &Yaml) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn int(y: &Yaml, what: &str) -> i64 {
    y.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {y:?}"))
}

#[test]
fn the_hotcold_deployment_keeps_standbys_and_hands_over_on_sigterm() {
    let docs = yaml(HOTCOLD);
    let mut kinds: Vec<&str> = docs.iter().map(kind).collect();
    kinds.sort();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "PodDisruptionBudget"]);
    let of = |k: &str| docs.iter().find(|d| kind(d) == k).unwrap();
    let deployment = of("Deployment");
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"], *labels,
        "the selector picks the template's pods"
    );

    let container = pod["spec"]["containers"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str() == Some("rillflow"))
        .expect("container rillflow");
    assert_eq!(container["image"].as_str(), Some("rillflow:latest"));
    let args = strings(&container["args"]);
    assert!(args.windows(2).any(|w| w == ["projections", "run-loop"]));
    assert_eq!(flag(&args, "--cluster-mode"), Some("hotcold"));
    assert_eq!(flag(&args, "--cluster-name"), Some("projections"));
    assert_eq!(flag(&args, "--node-name"), Some("$(POD_NAME)"));
    assert_eq!(
        flag(&args, "--partitions"),
        None,
        "auto is refused with hotcold"
    );
    let pod_name = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("POD_NAME"))
        .expect("POD_NAME");
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.name")
    );

    // One hot node plus the standbys it requires.
    let replicas = int(&deployment["spec"]["replicas"], "replicas");
    assert_eq!(replicas, 3);
    let standbys: i64 = flag(&args, "--min-cold-standbys")
        .unwrap_or("1")
        .parse()
        .unwrap();
    assert!(
        replicas > standbys,
        "{replicas} replicas cannot give one hot node and {standbys} standbys"
    );

    // SIGTERM: the batch (cut at the ttl), then the handover.
    let ttl = checked_ttl(&args, HOTCOLD);
    let grace = int(
        &pod["spec"]["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    ) as f64;
    assert!(
        grace > ttl,
        "grace period {grace}s must outlast the lease ttl {ttl}s"
    );

    // Readiness on the health server's `/`, on the port it binds.
    let bind: std::net::SocketAddr = flag(&args, "--health-bind")
        .expect("--health-bind")
        .parse()
        .unwrap();
    assert!(bind.ip().is_unspecified());
    let readiness = &container["readinessProbe"]["httpGet"];
    assert_eq!(readiness["path"].as_str(), Some("/"));
    let port = match &readiness["port"] {
        Yaml::Integer(p) => *p,
        Yaml::String(named) => container["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(named))
            .map(|p| int(&p["containerPort"], "containerPort"))
            .expect("the named port"),
        other => panic!("probe port {other:?}"),
    };
    assert_eq!(port, i64::from(bind.port()));

    // At most one pod out at a time, and never all of them.
    let pdb = of("PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"].as_str(), Some("policy/v1"));
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *labels);
    let min = int(&pdb["spec"]["minAvailable"], "minAvailable");
    assert_eq!(min, 2);
    assert!(
        min < replicas,
        "a budget of every pod would block every drain"
    );

    // Not autoscaled: no HPA in deploy/k8s targets this Deployment.
    let name = deployment["metadata"]["name"].as_str().unwrap();
    for entry in std::fs::read_dir(root().join("deploy/k8s")).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            continue;
        }
        let rel = format!("deploy/k8s/{}", path.file_name().unwrap().to_string_lossy());
        for doc in yaml(&rel) {
            if kind(&doc) == "HorizontalPodAutoscaler" {
                assert_ne!(
                    doc["spec"]["scaleTargetRef"]["name"].as_str(),
                    Some(name),
                    "{rel}: the hot/cold Deployment must not be autoscaled"
                );
            }
        }
    }
    assert!(
        read(HOTCOLD).contains("HorizontalPodAutoscaler"),
        "the manifest explains why it is not autoscaled"
    );

    // The projections file it mounts is the ConfigMap's, and valid.
    let file = flag(&args, "--projections").expect("--projections");
    let (dir, key) = file.rsplit_once('/').unwrap();
    let mount = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .expect("the projections mount");
    let volume = pod["spec"]["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let map = of("ConfigMap");
    assert_eq!(volume["configMap"]["name"], map["metadata"]["name"]);
    ProjectionFile::parse(map["data"][key].as_str().expect("projections.toml"))
        .unwrap_or_else(|e| panic!("{HOTCOLD}: projections file: {e}"));
}
