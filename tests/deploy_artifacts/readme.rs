//! The deploy guide: it mentions every artifact.

use crate::read;

#[test]
fn the_deploy_readme_covers_every_artifact() {
    let readme = read("deploy/README.md");
    for artifact in [
        "systemd/rillflow@.service",
        "systemd/rillflow.env.example",
        "Dockerfile",
        "docker-compose.yml",
        "k8s/hotcold-deployment.yaml",
        "k8s/projections-autoscaled.yaml",
        "k8s/projections-static.yaml",
        "prometheus/rillflow-alerts.yml",
        "grafana/rillflow-dashboard.json",
    ] {
        assert!(
            readme.contains(artifact),
            "deploy/README.md does not mention {artifact}"
        );
    }
}
