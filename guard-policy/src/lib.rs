//! The policy language and its compiler.
//!
//! Owns: parsing the human-written TOML policies (with includes of packs), validating them with
//! errors that name `file:line:col`, substituting `~` and `{workspace}`, checking every rule's
//! examples, and writing the binary ruleset that `guard_proto::Ruleset` evaluates. The default
//! policy under `policies/` is embedded here.
//!
//! Must never: be linked into libguard (it allocates freely and pulls a TOML parser), or accept
//! a policy whose examples fail.

// STUB API (the engine fills these in; signatures are the contract with guardctl).

use std::path::PathBuf;

/// Paths substituted for the placeholders of `policies/LANGUAGE.md`.
#[derive(Clone, Debug, Default)]
pub struct CompileContext {
    pub home: String,
    pub workspace: String,
    pub state_dir: String,
    pub policy_dir: String,
    pub guard_lib: String,
    pub guard_exe: String,
}

/// A policy error that names where it is: `file:line:col: message`.
#[derive(Clone, Debug)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)
    }
}

impl std::error::Error for PolicyError {}

/// A parsed, validated policy (all includes resolved), not yet specialised to a context.
#[derive(Clone, Debug)]
pub struct Policy {
    _private: (),
}

impl Policy {
    /// Loads top-level policy files (several `--policy` files are merged, first one's
    /// `[policy]` settings win) with their includes.
    pub fn load(files: &[PathBuf]) -> Result<Policy, PolicyError> {
        let _ = files;
        Err(PolicyError {
            file: PathBuf::new(),
            line: 0,
            col: 0,
            message: "not implemented".into(),
        })
    }

    /// The default policy embedded in this crate (from `policies/default.toml` and its packs).
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::load(&[])
    }

    /// Compiles to ruleset bytes (loadable by `guard_proto::Ruleset::load`). Fails, naming the
    /// rule and the example, when a rule's own examples do not hold.
    pub fn compile(&self, ctx: &CompileContext) -> Result<Vec<u8>, PolicyError> {
        let _ = ctx;
        Err(PolicyError {
            file: PathBuf::new(),
            line: 0,
            col: 0,
            message: "not implemented".into(),
        })
    }
}

