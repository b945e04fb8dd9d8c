//! Compiled regexes for http `body_regex` and `[[secret]]` detectors, built lazily on first use.
//!
//! The ruleset stores regex source text; compiling it needs the heap, so it happens once per
//! regex per cache (one `OnceLock` slot each) and never on the file/exec/connect path.

use std::sync::OnceLock;

use regex::bytes::{Regex, RegexBuilder};

/// Size limit for one compiled regex: large enough for real detectors, small enough that a
/// hostile policy cannot make a process allocate without bound.
const SIZE_LIMIT: usize = 8 << 20;

/// Compiles a policy regex with the limits the evaluator uses (the compiler calls this too, so
/// a policy that compiles never holds a regex the evaluator refuses). Classes such as `\w` and
/// `\s` are ASCII: Unicode classes make detector sets orders of magnitude larger and slower
/// (see `../shared/notes/dependencies.md` §8), and secrets and HTTP syntax are ASCII anyway.
pub fn build_regex(text: &str) -> Result<Regex, String> {
    RegexBuilder::new(text)
        .unicode(false)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// One lazily compiled slot per regex of a ruleset. Keep it next to the mapped ruleset for as
/// long as that ruleset is in use.
pub struct RegexCache {
    slots: Vec<OnceLock<Option<Regex>>>,
}

impl RegexCache {
    pub fn new(ruleset: &super::Ruleset<'_>) -> RegexCache {
        RegexCache::with_len(ruleset.regex_count() as usize)
    }

    pub fn with_len(n: usize) -> RegexCache {
        RegexCache {
            slots: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The compiled regex `id` (source `text`), or None when it does not compile or `id` is not
    /// a slot of this cache.
    pub fn get(&self, id: u32, text: &str) -> Option<&Regex> {
        self.slots
            .get(id as usize)?
            .get_or_init(|| build_regex(text).ok())
            .as_ref()
    }
}
