//! `guardctl doctor`.
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs) -> ExitCode {
    ExitCode::from(1)
}
