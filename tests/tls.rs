//! Managed PostgreSQL services require TLS: the binary speaks it. A server
//! of its own with `ssl = on` and a throwaway self-signed certificate;
//! `sslmode=require` encrypts (as libpq's does, without verifying the
//! certificate), and `sslmode=verify-full` refuses a certificate nobody
//! vouches for.

use std::path::{Path, PathBuf};
use std::process::Command;

use rillflow_adapters::{connect, ClusterSettings, LocalCluster, PoolConfig};
use rillflow_testkit::one_line_failure;

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

/// A self-signed certificate and key in `dir`, readable by the server.
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // The server insists on a private key only its owner can read; as root
    // it runs as `postgres`, which must own the files.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    if running_as_root() {
        for f in [&crt, &key] {
            let out = Command::new("chown")
                .arg("postgres:postgres")
                .arg(f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "chown: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    (crt, key)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Stops the server and removes its files however the test ends.
struct StopOnDrop(LocalCluster, PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop().ok();
        std::fs::remove_dir_all(&self.1).ok();
    }
}

#[tokio::test]
async fn the_binary_connects_over_tls_and_verifies_when_asked() {
    // CI installs openssl (.ci/run); elsewhere its absence is said, not failed.
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("note: openssl is not installed; the TLS test is skipped");
        return;
    }
    let root = std::env::temp_dir().join(format!("rillflow-tls-{:x}", rand::random::<u64>()));
    let certs = root.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    // The server (maybe another user) must be able to reach the files.
    for d in [&root, &certs] {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let (crt, key) = make_certificate(&certs);
    let mut settings = ClusterSettings::for_tests();
    settings.config.extend([
        ("ssl".to_owned(), "on".to_owned()),
        ("ssl_cert_file".to_owned(), crt.display().to_string()),
        ("ssl_key_file".to_owned(), key.display().to_string()),
    ]);
    let pg_dir = root.join("pg");
    let cluster = tokio::task::spawn_blocking(move || LocalCluster::start(&pg_dir, &settings))
        .await
        .unwrap()
        .expect("start a TLS server");
    let _stop = StopOnDrop(cluster.clone(), root.clone());
    cluster.ensure_database("rillflow").await.unwrap();
    let url = cluster.url("rillflow");
    let with_mode = |mode: &str| {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}sslmode={mode}")
    };

    let pool = connect(&with_mode("require"), &PoolConfig::default())
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require must encrypt");
    pool.close().await;

    let migrate = Command::new(BIN)
        .args(["migrate", "--database-url", &with_mode("require")])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );

    let refused = Command::new(BIN)
        .args([
            "archive",
            "status",
            "--database-url",
            &with_mode("verify-full"),
        ])
        .output()
        .unwrap();
    let line = one_line_failure(&refused, Some(1));
    assert!(line.contains("cannot connect"), "{line}");
}
