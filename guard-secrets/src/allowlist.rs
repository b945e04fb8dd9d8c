//! The placeholder allowlist: a separate layer applied to each candidate secret after its
//! detector matched, so that documentation, templates and `.env.example` files are not redacted.
//!
//! It is separate on purpose: the example strings in `policies/packs/secrets.toml` are
//! placeholders (`AKIAIOSFODNN7EXAMPLE`) that must match their detector when the policy compiler
//! checks them, and must be left alone when an agent reads a real file containing them.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// Substrings (ASCII case-insensitive) that mark a value as a placeholder. Each is long or odd
/// enough that a random token contains it with negligible probability (e.g. "xxxx" in a 36-char
/// base62 token: about 4e-5).
const PLACEHOLDER_PARTS: &[&str] = &[
    "example",
    "xxxx",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "dummy",
    "redacted",
    "your-",
    "your_",
    "yourapi",
    "yourtoken",
    "yoursecret",
    "yourpassword",
    "mytoken",
    "mysecret",
    "mypassword",
    "notreal",
    "not-real",
    "not_real",
    "fake",
    "sample",
    "<",
    ">",
    "${",
    "{{",
    "}}",
    "%(",
    "$(",
    "...",
    "\u{2026}",
    "****",
];

/// Whole values (ASCII case-insensitive) that are words, not secrets.
const PLACEHOLDER_VALUES: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "secret",
    "token",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "empty",
    "required",
    "optional",
    "string",
    "admin",
    "root",
    "guest",
    "user",
    "test",
    "password1",
    "password123",
    "passw0rd",
    "secret123",
    "admin123",
    "abc123",
    "qwerty",
    "letmein",
    "hunter2",
    "postgres",
    "mysql",
    "mariadb",
    "rabbitmq",
];

/// A run of this many identical bytes (`00000000`, `aaaaaaaa`) or of ascending bytes
/// (`01234567`, `abcdefgh`) marks a made-up value. For a random 64-char hex token the chance of
/// an identical run this long is about 2e-7.
const RUN_LEN: usize = 8;

/// Decides whether a candidate secret is an obvious placeholder.
#[derive(Clone, Debug)]
pub struct Allowlist {
    /// Placeholder words: the automaton is built on first use (most processes that build a
    /// detector set never find a regex match to check), `None` when the list is off.
    parts: Option<std::sync::OnceLock<Option<AhoCorasick>>>,
    values: &'static [&'static str],
    runs: bool,
    env_refs: bool,
}

impl Default for Allowlist {
    /// The built-in placeholder rules.
    fn default() -> Self {
        Allowlist {
            parts: Some(std::sync::OnceLock::new()),
            values: PLACEHOLDER_VALUES,
            runs: true,
            env_refs: true,
        }
    }
}

impl Allowlist {
    fn parts(&self) -> Option<&AhoCorasick> {
        self.parts
            .as_ref()?
            .get_or_init(|| {
                let parts = AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(PLACEHOLDER_PARTS)
                    .ok();
                debug_assert!(
                    parts.is_some(),
                    "the built-in placeholder list must compile"
                );
                parts
            })
            .as_ref()
    }

    /// An allowlist that lets everything through: every regex match is reported. Used to check
    /// a policy's own examples, which are placeholders by design.
    pub fn none() -> Self {
        Allowlist {
            parts: None,
            values: &[],
            runs: false,
            env_refs: false,
        }
    }

    /// True when `secret` (the span a detector would redact) is a placeholder, a template
    /// variable or a reference to one, rather than a secret.
    pub fn is_placeholder(&self, secret: &[u8]) -> bool {
        if let Some(parts) = self.parts()
            && parts.is_match(secret)
        {
            return true;
        }
        if self.env_refs
            && (matches!(secret.first(), Some(b'$' | b'%'))
                || (secret.first() == Some(&b'{') && secret.last() == Some(&b'}')))
        {
            // `$VAR`, `%VAR%`, and `{name}` (format strings, templates).
            return true;
        }
        if self
            .values
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(secret))
        {
            return true;
        }
        self.runs
            && (has_made_up_run(secret) || is_dotted_identifier(secret) || is_constant_name(secret))
    }
}

/// `DOT11_DIALOG_TOKEN`, `MY_API_KEY_2`: the name of a constant or environment variable.
fn is_constant_name(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_uppercase)
        && s.contains(&b'_')
        && s.iter()
            .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `node.colon2_token`, `settings.API_KEY_2`: a reference to a value in code, not a value.
/// Segments are capped at 30 bytes so that a JWT (long base64url segments) never qualifies.
fn is_dotted_identifier(s: &[u8]) -> bool {
    let mut segments = 0;
    for seg in s.split(|&b| b == b'.') {
        let ok = !seg.is_empty()
            && seg.len() <= 30
            && (seg[0].is_ascii_alphabetic() || seg[0] == b'_')
            && seg.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

/// An identical or ascending run of `RUN_LEN` bytes.
fn has_made_up_run(s: &[u8]) -> bool {
    let (mut same, mut up) = (1usize, 1usize);
    for w in s.windows(2) {
        same = if w[1] == w[0] { same + 1 } else { 1 };
        up = if w[0].is_ascii_alphanumeric()
            && w[1].is_ascii_alphanumeric()
            && w[0].checked_add(1) == Some(w[1])
        {
            up + 1
        } else {
            1
        };
        if same >= RUN_LEN || up >= RUN_LEN {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{ALNUM, Rng};

    #[test]
    fn placeholders_are_recognised() {
        let a = Allowlist::default();
        for p in [
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "<token>",
            "<your-api-key>",
            "${GITHUB_TOKEN}",
            "{{ secrets.TOKEN }}",
            "$API_KEY",
            "%(password)s",
            "{db_password}",
            "node.colon2_token",
            "self.settings.api_key_2",
            "DOT11_DIALOG_TOKEN",
            "changeme",
            "ChangeMe123",
            "your-api-key",
            "your_api_key_here",
            "sk-...abcd",
            "********",
            "password",
            "Password123",
            "00000000000000000000",
            "0123456789abcdef",
            "REDACTED_BY_POLICY",
        ] {
            assert!(
                a.is_placeholder(p.as_bytes()),
                "{p} should be a placeholder"
            );
        }
    }

    #[test]
    fn random_tokens_are_not_placeholders() {
        let a = Allowlist::default();
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        // A few hundred random tokens: the allowlist must let real-looking values through.
        for _ in 0..300 {
            let t = rng.string(ALNUM, 40);
            assert!(!a.is_placeholder(t.as_bytes()), "seed {seed}: {t}");
        }
        for v in ["s3cr3t-Pa55w0rd!", "hunter22x", "db-pass-9f2k"] {
            assert!(!a.is_placeholder(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn none_lets_everything_through() {
        let a = Allowlist::none();
        for p in [
            "AKIAIOSFODNN7EXAMPLE",
            "<token>",
            "$X",
            "password",
            "00000000",
        ] {
            assert!(!a.is_placeholder(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn dotted_identifiers() {
        assert!(is_dotted_identifier(b"a.b"));
        assert!(is_dotted_identifier(b"_x.y_2.z"));
        assert!(!is_dotted_identifier(b"abc"));
        assert!(!is_dotted_identifier(b"a..b"));
        assert!(
            !is_dotted_identifier(b"v1.2"),
            "segment starting with a digit"
        );
        assert!(!is_dotted_identifier(b"pass.w0rd!"));
        let jwt_like = format!(
            "eyJ{}.eyJ{}.{}",
            "a".repeat(33),
            "b".repeat(40),
            "c".repeat(43)
        );
        assert!(!is_dotted_identifier(jwt_like.as_bytes()));
    }

    #[test]
    fn constant_names() {
        assert!(is_constant_name(b"MY_API_KEY_2"));
        assert!(
            !is_constant_name(b"AKIA2345ABCDEFGHIJKL"),
            "no underscore: could be a key id"
        );
        assert!(!is_constant_name(b"My_Key_2"));
        assert!(!is_constant_name(b"_X_1"));
    }

    #[test]
    fn runs() {
        assert!(has_made_up_run(b"ab11111111cd"));
        assert!(has_made_up_run(b"xyABCDEFGHzz"));
        assert!(!has_made_up_run(b"a1111111b"));
        assert!(!has_made_up_run(b""));
        // '/' then '0' are adjacent in ASCII, but only alphanumeric runs count.
        assert!(!has_made_up_run(b"q/0123456"));
    }
}
