//! Content detection and redaction of secrets, so that secrets never reach the agent.
//!
//! The pipeline for one buffer (what libguard runs on a read it decided to inspect):
//!
//! 1. [`Detectors::might_contain_secret`]: one pass looking for any detector keyword (ASCII
//!    case-insensitive): a Teddy-like AVX2 fingerprint stage and an exact trigram/keyword
//!    check (`fastpre`), or an Aho-Corasick automaton (built on first use) when the keywords
//!    do not fit. Most files contain no keyword, and stop here.
//! 2. [`Detectors::scan`]: when some keyword occurs, the same prefilter reports every
//!    occurrence; each enabled detector's regex (byte regex, ASCII mode) runs only in windows
//!    around its keywords' occurrences (`window`: anchored at the starts its literal head
//!    allows, or over spans of its maximum match length), with the results of a whole-buffer
//!    search. The secret is the capture group named `secret` (the whole match when there is
//!    none); an optional Shannon-entropy floor and the placeholder [`Allowlist`] then drop the
//!    obvious non-secrets. Findings come back sorted and non-overlapping.
//! 3. [`redact`]: each finding's span becomes exactly [`REDACTED`] (`REDACTED_BY_POLICY`).
//!
//! Also here: [`redact_environ`] for `/proc/<pid>/environ` and [`Scope`] / [`in_scope`], the
//! allocation-free decision of which paths are worth scanning at all.
//!
//! This crate allocates (regex caches, result vectors): libguard calls it off the hot path, after
//! the ruleset has said a read must be inspected, never from a vfork child or signal handler.
//!
//! Use by libguard: build one `Detectors` per process lazily, on the first inspected read,
//! with [`Detectors::for_ruleset`]: the set the policy compiler precompiled into the ruleset
//! (`to_image`; ids, regexes and prefilter table borrowed from the mapping, ~0.13 M
//! instructions), or, without a valid image, the set built from the ruleset's `[[secret]]`
//! specs (`from_ruleset`, ~2.4 M instructions). Regexes compile on first use (each
//! ~0.1-2 ms); the set is `Send + Sync` and scans take no lock of ours. Across `fork`, build a new
//! one in the child (tag it with the pid): a regex compiling on first use (`OnceLock`) or the
//! regex crate's internal cache pool (a mutex) held by another thread at the fork would stay
//! held forever in the child. At `open` of a regular file, `Scope::contains` decides
//! (without allocating) whether the fd is flagged for inspection. On the first read-class call
//! on a flagged fd (`read`, `pread`, `readv`, `fread`, `mmap`, `fstat`), read the whole file
//! once, `scan` it, and:
//! - no findings: unflag the fd and let the real call proceed;
//! - `strictest(&findings) == Deny`: fail the call with `EACCES`;
//! - otherwise: write `redact(&content, &findings)` (audit-only findings filtered out first)
//!   into a sealed memfd, `dup2` it over the fd at the same offset, and answer `fstat` with
//!   its size (`redacted_len` gives it without building the copy).
//!
//! Mapping findings to audit events: `Finding::detector` is the rule id.

mod allowlist;
mod builtin;
mod engine;
mod entropy;
mod environ;
mod fastpre;
mod image;
mod scope;
mod window;

#[cfg(test)]
mod detector_tests;
#[cfg(test)]
mod testgen;

pub use allowlist::Allowlist;
pub use builtin::builtin_specs;
pub use engine::{
    Detectors, Finding, SecretSpec, SpecError, redact, redact_into, redacted_len, strictest,
    verify_examples,
};
pub use entropy::shannon_entropy;
pub use environ::{DEFAULT_SECRET_ENV_KEYS, env_key_matches, redact_environ};
pub use guard_proto::Decision;
pub use scope::{Scope, in_scope};

/// The placeholder every redacted span becomes (binding: see DESIGN.md).
pub const REDACTED: &[u8] = b"REDACTED_BY_POLICY";
