//! Projections files written for one test.

use std::path::PathBuf;

use crate::test_db::target_dir;

/// Writes `text` to a fresh file named after `name` under
/// `target/tmp/projection-files`, and returns its path.
pub fn projection_file(name: &str, text: &str) -> PathBuf {
    let dir = target_dir().join("tmp").join("projection-files");
    std::fs::create_dir_all(&dir).expect("projection files directory");
    let path = dir.join(format!("{name}-{:x}.toml", rand::random::<u64>()));
    std::fs::write(&path, text).expect("write the projections file");
    path
}
