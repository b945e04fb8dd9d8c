//! `guardctl policy compile|check|test|explain`.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Compile policy files into a binary ruleset.
    Compile,
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Compile => {
            eprintln!("guardctl policy compile: not implemented");
            ExitCode::from(2)
        }
    }
}
