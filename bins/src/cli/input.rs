//! Values the command line takes from files or stdin: every read is
//! bounded, so a wrong path (a disk image, /dev/zero) costs an error line,
//! not the machine's memory.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest `--data` payload (`--data @FILE`, `--data -`).
pub const MAX_DATA: u64 = 16 << 20;
/// Largest `--headers` object.
pub const MAX_HEADERS: u64 = 1 << 20;
/// Largest `--projections` file.
pub const MAX_PROJECTIONS_FILE: u64 = 4 << 20;

/// Set once an argument has read stdin: a second one would read nothing.
static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);

/// The text of `arg`: itself, or the file `@PATH` names, or stdin for `-`;
/// at most `limit` bytes.
pub fn text_of(arg: &str, limit: u64) -> Result<String, String> {
    if arg == "-" {
        if STDIN_TAKEN.swap(true, Ordering::SeqCst) {
            return Err("only one option can read stdin".into());
        }
        return bounded(std::io::stdin().lock(), limit, "stdin");
    }
    match arg.strip_prefix('@') {
        Some(path) => read_file(Path::new(path), limit),
        None if arg.len() as u64 > limit => Err(too_big(limit)),
        None => Ok(arg.to_owned()),
    }
}

/// The file at `path`, at most `limit` bytes; the error names the path.
pub fn read_file(path: &Path, limit: u64) -> Result<String, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > limit {
        return Err(format!("{shown}: {}", too_big(limit)));
    }
    // Files that report no size (pipes, /proc) are bounded while reading.
    bounded(file, limit, &shown.to_string())
}

fn bounded(source: impl Read, limit: u64, what: &str) -> Result<String, String> {
    let mut text = String::new();
    source
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if text.len() as u64 > limit {
        return Err(format!("{what}: {}", too_big(limit)));
    }
    Ok(text)
}

fn too_big(limit: u64) -> String {
    format!("larger than the {} MiB allowed", limit >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_their_bound() {
        let dir = std::env::temp_dir().join(format!("rf-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small.json");
        std::fs::write(&small, r#"{"a": 1}"#).unwrap();
        assert_eq!(
            text_of(&format!("@{}", small.display()), 100).unwrap(),
            r#"{"a": 1}"#
        );
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; 2 << 20]).unwrap();
        let err = text_of(&format!("@{}", big.display()), 1 << 20).unwrap_err();
        assert!(err.ends_with("larger than the 1 MiB allowed"), "{err}");
        // /dev/zero reports no size and never ends: the bound ends it.
        let err = read_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
        assert!(text_of("@/nonexistent/x.json", 10)
            .unwrap_err()
            .starts_with("cannot read /nonexistent/x.json"));
        assert_eq!(text_of("{}", 10).unwrap(), "{}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
