//! `rillflow completions SHELL`: a completion script on stdout, generated
//! from the clap definitions themselves.

use std::io::{ErrorKind, Write};

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    // Generated into memory first: clap_complete panics on a failed write,
    // and `rillflow completions bash | head` closes the pipe early.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "rillflow", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
