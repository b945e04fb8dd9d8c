//! The guard protects itself, whatever the policy says: a guarded process cannot write, delete
//! or rename the policy files, the compiled ruleset, `libguard.so`, `guardctl`, the state
//! directory or the socket directory.
//!
//! The protected paths are `GUARD_PROTECT` (`:`-separated absolute paths, set by the launcher
//! and re-injected into every child like the other `GUARD_*` variables), plus the ruleset this
//! process mapped and this library's own file, which the library knows even when the variable
//! was lost. A file access is checked under every name `eval::file_denied` computed (lexical and
//! kernel-resolved, so symlinks and `..` do not help). A name is refused when it is a protected
//! path or lies below one; a delete (which is also how a rename's source is checked) is refused
//! as well on an ancestor of one, since renaming a parent directory would move the protected
//! tree away. Writes to ancestors stay possible (`mkdir -p` of an existing parent must keep
//! seeing `EEXIST`). Monitor mode does not relax this: it is the guard's integrity, not a
//! policy decision. Events carry rule `guard-self-protection`.

use crate::eval::Outcome;
use crate::state;
use guard_proto::{Decision, FileAccess};

pub const RULE: &str = "guard-self-protection";
const REASON: &str = "guarded processes cannot modify the guard's policy, ruleset, library, binary, state or sockets";

/// Whether `name` is `p`, below `p`, or (with `ancestors`) a proper ancestor of `p` (both
/// absolute and clean).
fn touches(name: &[u8], p: &[u8], ancestors: bool) -> bool {
    let p = trim_slash(p);
    let name = trim_slash(name);
    if p.is_empty() || p.first() != Some(&b'/') || name.is_empty() {
        return false;
    }
    let below = |a: &[u8], b: &[u8]| {
        a.len() > b.len() && a.starts_with(b) && (b == b"/" || a.get(b.len()) == Some(&b'/'))
    };
    // The root itself is an ancestor of everything, but nobody can rename or remove it.
    name == p || below(name, p) || (ancestors && name != b"/" && below(p, name))
}

fn trim_slash(p: &[u8]) -> &[u8] {
    let mut p = p;
    while p.len() > 1 && p.last() == Some(&b'/') {
        p = p.get(..p.len() - 1).unwrap_or(p);
    }
    p
}

/// The first name (of `names`, as `file_denied` built them) that modifies a protected path.
pub fn violation<'a>(names: &[(&'a [u8], bool)], access: FileAccess) -> Option<&'a [u8]> {
    if access == FileAccess::Read {
        return None;
    }
    let c = state::cfg();
    let mut hit = None;
    let mut check = |p: &[u8]| {
        if hit.is_none() {
            hit = names
                .iter()
                .find(|(n, ok)| *ok && touches(n, p, access == FileAccess::Delete))
                .map(|(n, _)| *n);
        }
    };
    for p in c.protect.as_bytes().split(|b| *b == b':') {
        check(p);
    }
    check(c.ruleset_path.as_bytes());
    check(c.self_path.as_bytes());
    hit
}

/// The outcome reported for a refused modification.
pub fn outcome() -> Outcome {
    let mut o = Outcome::from_verdict(Decision::Deny, None, false, false);
    o.builtin = Some((RULE, REASON));
    o
}

#[cfg(test)]
mod tests {
    use super::touches;

    #[test]
    fn protected_trees_and_their_ancestors_are_refused() {
        let p = b"/home/u/.local/state/guard";
        for anc in [false, true] {
            assert!(touches(b"/home/u/.local/state/guard", p, anc));
            assert!(touches(b"/home/u/.local/state/guard/", p, anc));
            assert!(touches(
                b"/home/u/.local/state/guard/sessions/x.jsonl",
                p,
                anc
            ));
            assert!(!touches(b"/home/u/.local/state/guardian", p, anc));
            assert!(!touches(b"/home/u/project/file", p, anc));
            assert!(!touches(b"/", p, anc));
            assert!(!touches(b"/x", b"", anc));
            assert!(!touches(b"/x", b"relative", anc));
        }
        assert!(touches(b"/home/u/.local", p, true));
        assert!(!touches(b"/home/u/.local", p, false));
    }
}
