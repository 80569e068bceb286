//! The binary: its subcommand tree, bounded runs, the parser sandbox, and where docs are read from.

use super::*;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root")
}

/// The subcommand tree, from `--help` of every command (the `Commands:`
/// section lists a command's subcommands; `help` is clap's own).
pub(crate) fn command_tree(bin: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let out = Command::new(bin)
            .args(&path)
            .arg("--help")
            .output()
            .expect("run rillflow --help");
        assert!(
            out.status.success(),
            "rillflow {} --help failed",
            path.join(" ")
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut children = BTreeSet::new();
        let mut in_commands = false;
        for l in text.lines() {
            if l.trim_end() == "Commands:" {
                in_commands = true;
            } else if in_commands && l.trim().is_empty() {
                in_commands = false;
            } else if in_commands {
                if let Some(name) = l.split_whitespace().next().filter(|n| *n != "help") {
                    children.insert(name.to_owned());
                }
            }
        }
        for c in &children {
            let mut p = path.clone();
            p.push(c.clone());
            todo.push(p);
        }
        tree.insert(path, children);
    }
    tree
}

/// Runs `bin args` and waits for it; a run that does not end within
/// `limit` is killed and reported as such (only a hang gets there).
pub(crate) fn run_bounded(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs-commands-out");
    std::fs::create_dir_all(&dir).unwrap();
    let tag = format!("{}-{}", std::process::id(), rand::random::<u64>());
    let (o, e) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .map_err(|e| format!("cannot run the binary: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    Ok(output)
}

/// A working directory and environment in which the binary can parse its
/// arguments and then do nothing (see the comment at the top of main.rs).
pub(crate) struct Sandbox {
    pub(crate) dir: PathBuf,
    pub(crate) no_pg: PathBuf,
}

/// Not a URL: any command that reaches the database fails right away.
pub(crate) const NOT_A_URL: &str = "not-a-database-url";

impl Sandbox {
    pub(crate) fn new() -> Sandbox {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "docs-commands-sandbox-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let dir = base.join("cwd");
        let no_pg = base.join("no-postgres-here");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&no_pg).unwrap();
        Sandbox { dir, no_pg }
    }

    pub(crate) fn examples(&self) -> Examples {
        Examples {
            url: NOT_A_URL.into(),
            stream: Uuid::from_u128(0x5eed),
            stream_version: 1,
            archived: Uuid::from_u128(0xa5eed),
            projection: "account_balances".into(),
            projections_file: root()
                .join("examples/projections.toml")
                .display()
                .to_string(),
            cluster: "billing".into(),
            node: "node-a".into(),
            dead_letter: "1".into(),
            out_file: self.dir.join("bundle.json").display().to_string(),
            events_file: self.dir.join("events.jsonl").display().to_string(),
        }
    }

    /// None when the parser accepts `args`; else what it said.
    pub(crate) fn rejection(&self, bin: &Path, args: &[String]) -> Result<Option<String>, String> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .current_dir(&self.dir)
            .env("DATABASE_URL", NOT_A_URL)
            .env("RILLFLOW_PG_BIN", &self.no_pg)
            .env_remove("RUST_LOG")
            .env_remove("PARTITIONS")
            .env_remove("PARTITION_KEY")
            .env_remove("TOTAL_PARTITIONS");
        let out = run_bounded(cmd, Duration::from_secs(60))?;
        Ok((out.status.code() == Some(2)).then(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            err.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(nothing on stderr)")
                .to_owned()
        }))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// Every rillflow command of the docs.
pub(crate) fn all_doc_commands(tree: &Tree) -> Vec<DocCommand> {
    let root = root();
    let mut files: Vec<PathBuf> = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .filter(|p| p.file_name().is_some_and(|n| n != "reference.md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut deploy = Vec::new();
    collect_readmes(&root.join("deploy"), &mut deploy);
    deploy.sort();
    files.extend(deploy);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        out.extend(doc_commands(&rel, &text, tree).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

pub(crate) fn collect_readmes(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_readmes(&p, out);
        } else if p.file_name().is_some_and(|n| n == "README.md") {
            out.push(p);
        }
    }
}

pub(crate) fn describe(cmd: &DocCommand, words: &[String]) -> String {
    format!(
        "{}: `{}`\n    as checked: rillflow {}",
        cmd.place,
        cmd.line,
        words.join(" ")
    )
}
