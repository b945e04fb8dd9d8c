//! Contracts between `libguard` (inside the guarded process) and `guardctl` (the user's tool).
//!
//! This crate owns:
//! - [`Decision`] and its strictness order (deny > ask > redact > audit > allow);
//! - [`action`]: the normalised description of what a process is about to do;
//! - [`ruleset`]: the compiled, versioned binary ruleset and its evaluator, which runs straight
//!   from a read-only memory map;
//! - [`wire`]: the framed messages between libguard and the broker.
//!
//! It must never: allocate or lock while evaluating an action against a loaded ruleset, panic on
//! any input bytes (rulesets and frames come from files and sockets), or depend on anything that
//! pulls a runtime, a logger or global state into the processes libguard is injected into.

pub mod action;
pub mod decision;
pub mod ruleset;
pub mod wire;

pub use action::{Action, Argv, Context, EnvLookup, FileAccess};
pub use decision::Decision;
pub use ruleset::{LoadError, RuleInfo, Ruleset, Verdict};
