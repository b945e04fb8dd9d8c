//! The compiled ruleset: a versioned binary file that libguard maps read-only and evaluates
//! in place, with no parsing and no heap allocation per evaluation.
//!
//! `guard-policy` writes it; this module reads it. The layout (header, section table, indexes)
//! is documented in `format.rs`. `~` and `{workspace}` were substituted at compile time, so a
//! ruleset is specific to one HOME and one launch directory.
//!
//! STUB: the skeleton only fixes the public API; the engine fills it in.

use crate::action::{Action, Context};
use crate::decision::Decision;

/// The outcome of evaluating one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// Index of the winning rule (see [`Ruleset::rule`]); `None` when the default decided.
    pub rule: Option<u32>,
}

/// What kind of action a rule governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    File,
    Exec,
    Connect,
    Http,
}

/// A rule's metadata, borrowed from the mapped file.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo<'a> {
    pub id: &'a str,
    pub kind: RuleKind,
    pub decision: Decision,
    pub reason: &'a str,
    /// Tags separated by `,` (OWASP LLM Top 10 / MITRE ATLAS ids).
    pub tags: &'a str,
}

/// Why a ruleset file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    TooShort { len: usize },
    BadMagic,
    UnsupportedVersion { found: u32, supported: u32 },
    LengthMismatch { header: u64, actual: u64 },
    ChecksumMismatch,
    Misaligned,
    Malformed(&'static str),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::TooShort { len } => write!(f, "ruleset too short ({len} bytes)"),
            LoadError::BadMagic => f.write_str("not a guard ruleset (bad magic)"),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "ruleset format version {found} is not supported (this build reads {supported})"
            ),
            LoadError::LengthMismatch { header, actual } => write!(
                f,
                "ruleset truncated or padded: header says {header} bytes, file has {actual}"
            ),
            LoadError::ChecksumMismatch => f.write_str("ruleset checksum mismatch (corrupt file)"),
            LoadError::Misaligned => f.write_str("ruleset buffer is not 8-byte aligned"),
            LoadError::Malformed(what) => write!(f, "malformed ruleset: {what}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A validated view over ruleset bytes (usually a read-only mmap).
#[derive(Clone, Copy)]
pub struct Ruleset<'a> {
    bytes: &'a [u8],
}

impl<'a> Ruleset<'a> {
    /// Validates the header, length, checksum and every offset, so evaluation can trust them.
    pub fn load(bytes: &'a [u8]) -> Result<Ruleset<'a>, LoadError> {
        let _ = bytes;
        Err(LoadError::Malformed("not implemented"))
    }

    /// The strictest decision among matching rules, or the policy default.
    pub fn evaluate(&self, action: &Action<'_>, ctx: &Context<'_>) -> Verdict {
        let _ = (action, ctx, self.bytes);
        Verdict {
            decision: Decision::Allow,
            rule: None,
        }
    }

    /// Calls `f` with the index of every rule that matches (for `explain`), in rule order.
    pub fn for_each_match(&self, action: &Action<'_>, ctx: &Context<'_>, f: &mut dyn FnMut(u32)) {
        let _ = (action, ctx, f);
    }

    pub fn rule(&self, index: u32) -> Option<RuleInfo<'a>> {
        let _ = index;
        None
    }

    pub fn rule_count(&self) -> u32 {
        0
    }

    pub fn policy_name(&self) -> &'a str {
        ""
    }

    pub fn default_decision(&self) -> Decision {
        Decision::Allow
    }

    /// `mode = "monitor"`: record what enforce would do, never block.
    pub fn monitor_mode(&self) -> bool {
        false
    }

    pub fn ask_timeout_ms(&self) -> u32 {
        120_000
    }

    /// Decision for an exec the in-process layer cannot follow (static or setuid binary).
    pub fn unguardable_exec(&self) -> Decision {
        Decision::Audit
    }

    /// Whether `[env] strip` removes variable `name` from children.
    pub fn env_strip_matches(&self, name: &[u8]) -> bool {
        let _ = name;
        false
    }
}
