//! `guardctl run`: the launcher.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {
    /// The command to run, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub fn run(args: RunArgs) -> ExitCode {
    let _ = args;
    eprintln!("guardctl run: not implemented");
    ExitCode::from(2)
}
