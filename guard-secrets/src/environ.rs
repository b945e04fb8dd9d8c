//! Redaction of `/proc/<pid>/environ` content: NUL-separated `KEY=VALUE` records.
//!
//! An agent that cannot read `.env` can still read its own (or a sibling's) environment through
//! procfs. Records whose key is on the strip list, or whose value holds something a detector
//! finds, come back with the value (or just the secret part of it) replaced.

use crate::{Detectors, Finding, REDACTED};

/// Keys whose value is redacted whatever it looks like (globs: `*` any run, `?` one byte).
/// Mirrors the intent of the default policy's `[env] strip`.
pub const DEFAULT_SECRET_ENV_KEYS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "*_TOKEN",
    "*_SECRET",
    "*_SECRET_*",
    "*_SECRET_KEY",
    "*_PASSWORD",
    "*_PASSWD",
    "*_API_KEY",
    "*_APIKEY",
    "*_ACCESS_KEY",
    "*_PRIVATE_KEY",
    "*_CREDENTIALS",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "API_KEY",
    "PGPASSWORD",
    "MYSQL_PWD",
];

/// Glob match of an environment key (`*` any run of bytes, `?` one byte), case-sensitive like
/// environment names. Iterative with one backtrack point: linear in practice, no allocation.
pub fn env_key_matches(glob: &[u8], key: &[u8]) -> bool {
    let (mut g, mut k) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while k < key.len() {
        if g < glob.len() && (glob[g] == b'?' || glob[g] == key[k]) {
            g += 1;
            k += 1;
        } else if g < glob.len() && glob[g] == b'*' {
            star = Some((g, k));
            g += 1;
        } else if let Some((sg, sk)) = star {
            g = sg + 1;
            k = sk + 1;
            star = Some((sg, sk + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// Redacts an environ block. `strip` lists key globs whose whole value is replaced; `keep`
/// lists key globs never touched (e.g. `GUARD_*`, which the guard itself needs). Other values
/// are scanned as `KEY=VALUE` (so `DB_PASSWORD=...` is seen by the assignment detector) and only
/// findings inside the value are redacted. Separators, record order and a trailing NUL are
/// preserved; a record without `=` is scanned as a whole.
pub fn redact_environ(
    detectors: &Detectors,
    environ: &[u8],
    strip: &[&str],
    keep: &[&str],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(environ.len());
    let mut first = true;
    for record in environ.split(|&b| b == 0) {
        if !first {
            out.push(0);
        }
        first = false;
        redact_record(detectors, record, strip, keep, &mut out);
    }
    out
}

fn redact_record(
    detectors: &Detectors,
    record: &[u8],
    strip: &[&str],
    keep: &[&str],
    out: &mut Vec<u8>,
) {
    let eq = record.iter().position(|&b| b == b'=');
    let key = &record[..eq.unwrap_or(0)];
    let any = |globs: &[&str]| globs.iter().any(|g| env_key_matches(g.as_bytes(), key));
    if let Some(eq) = eq {
        if any(keep) {
            out.extend_from_slice(record);
            return;
        }
        if any(strip) && eq + 1 < record.len() {
            out.extend_from_slice(&record[..=eq]);
            out.extend_from_slice(REDACTED);
            return;
        }
    }
    let value_start = eq.map_or(0, |e| e + 1);
    // Findings are clamped to the value: the key itself is never replaced.
    let findings: Vec<Finding<'_>> = detectors
        .scan(record)
        .into_iter()
        .filter_map(|mut f| {
            f.start = f.start.max(value_start);
            (f.start < f.end).then_some(f)
        })
        .collect();
    crate::redact_into(record, &findings, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{ALNUM, Rng};

    #[test]
    fn globs() {
        assert!(env_key_matches(b"*_TOKEN", b"GITHUB_TOKEN"));
        assert!(!env_key_matches(b"*_TOKEN", b"TOKEN"));
        assert!(!env_key_matches(b"*_TOKEN", b"GITHUB_TOKENS"));
        assert!(env_key_matches(b"*_SECRET*", b"MY_SECRET_VALUE"));
        assert!(env_key_matches(b"GUARD_*", b"GUARD_SOCKET"));
        assert!(env_key_matches(b"A?C", b"ABC"));
        assert!(!env_key_matches(b"A?C", b"AC"));
        assert!(env_key_matches(b"*", b""));
        assert!(!env_key_matches(b"", b"X"));
        assert!(env_key_matches(b"*a*b*c", b"xxaxxbxxbxc"));
        assert!(
            !env_key_matches(b"*_token", b"GITHUB_TOKEN"),
            "case-sensitive"
        );
    }

    #[test]
    fn environ_redaction() {
        let mut rng = Rng::from_env();
        let seed = rng.seed();
        let d = Detectors::builtin();
        let gh = format!("gh{}_{}", "p", rng.string(ALNUM, 36));
        let pw = format!("{}9!{}", rng.string(ALNUM, 10), rng.string(ALNUM, 6));
        let dbpass = format!("q{}", rng.string(ALNUM, 11));
        let env = format!(
            "PATH=/usr/bin:/bin\0HOME=/home/agent\0GITHUB_TOKEN={gh}\0\
             DATABASE_URL=postgres://app:{pw}@db.internal:5432/app\0\
             NOTE=uses {gh} inside\0DB_PASSWORD={dbpass}\0\
             GUARD_SESSION=s-{pw}\0PWD=/home/agent/project\0EMPTY_TOKEN=\0NOEQUALS\0"
        );
        let out = redact_environ(&d, env.as_bytes(), DEFAULT_SECRET_ENV_KEYS, &["GUARD_*"]);
        let out = String::from_utf8(out).expect("utf8 in, utf8 out");
        let records: Vec<&str> = out.split('\0').collect();
        assert_eq!(
            records,
            [
                "PATH=/usr/bin:/bin",
                "HOME=/home/agent",
                "GITHUB_TOKEN=REDACTED_BY_POLICY",
                "DATABASE_URL=postgres://app:REDACTED_BY_POLICY@db.internal:5432/app",
                "NOTE=uses REDACTED_BY_POLICY inside",
                "DB_PASSWORD=REDACTED_BY_POLICY",
                &format!("GUARD_SESSION=s-{pw}"),
                "PWD=/home/agent/project",
                "EMPTY_TOKEN=",
                "NOEQUALS",
                "",
            ],
            "seed {seed}"
        );
    }

    #[test]
    fn detector_only_redaction_keeps_the_key() {
        // Without a strip list the assignment detector still catches a secret-named key, and
        // the replacement never eats the key.
        let d = Detectors::builtin();
        let mut rng = Rng::from_env();
        let v = format!("{}7{}", rng.string(ALNUM, 10), rng.string(ALNUM, 10));
        let env = format!("SERVICE_API_KEY={v}\0LANG=C.UTF-8");
        let out = redact_environ(&d, env.as_bytes(), &[], &[]);
        assert_eq!(
            out,
            b"SERVICE_API_KEY=REDACTED_BY_POLICY\0LANG=C.UTF-8",
            "seed {}",
            rng.seed()
        );
        assert!(redact_environ(&d, b"", &[], &[]).is_empty());
    }
}
