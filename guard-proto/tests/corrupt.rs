//! Damaged rulesets: every one is refused with the right `LoadError`, nothing panics, and a
//! deterministic fuzz loop that flips bytes (with and without a recomputed checksum) never
//! makes load or evaluation panic or read out of bounds.

mod common;

use std::net::IpAddr;

use guard_proto::ruleset::format::*;
use guard_proto::ruleset::writer::seal;
use guard_proto::ruleset::{LoadError, RegexCache};
use guard_proto::{Action, Context, FileAccess, Ruleset};

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn section(b: &[u8], i: usize) -> (usize, usize) {
    let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
    (rd_u64(b, e) as usize, rd_u64(b, e + 8) as usize)
}

/// Applies `f` to a copy of a valid ruleset, fixes the checksum, and loads it.
fn resealed(f: impl FnOnce(&mut Vec<u8>)) -> Result<(), LoadError> {
    let mut b = common::sample_bytes();
    f(&mut b);
    seal(&mut b);
    Ruleset::load(&b).map(|_| ())
}

#[test]
fn valid_file_loads_and_reports_metadata() {
    let b = common::sample_bytes();
    let rs = Ruleset::load(&b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.policy_name(), "sample");
    assert_eq!(rs.rule_count() as usize, common::sample_spec().rules.len());
    assert_eq!(rs.rule(0).map(|r| r.id), Some("ssh-keys"));
    assert_eq!(rs.rule(0).map(|r| r.tags), Some("T1,T2"));
    assert!(rs.rule(rs.rule_count()).is_none());
    assert_eq!(rs.secret(0).map(|s| s.id), Some("aws-key"));
    assert_eq!(rs.secret_keywords(0).collect::<Vec<_>>(), ["AKIA", "ASIA"]);
    assert_eq!(b.len() % 8, 0);
}

#[test]
fn truncated_at_every_length() {
    let b = common::sample_bytes();
    for n in 0..b.len() {
        let r = Ruleset::load(&b[..n]);
        if n < HEADER_LEN {
            assert_eq!(r.err(), Some(LoadError::TooShort { len: n }), "len {n}");
        } else {
            assert_eq!(
                r.err(),
                Some(LoadError::LengthMismatch {
                    header: b.len() as u64,
                    actual: n as u64
                }),
                "len {n}"
            );
        }
    }
    let mut padded = b.clone();
    padded.extend_from_slice(&[0; 8]);
    assert!(matches!(
        Ruleset::load(&padded),
        Err(LoadError::LengthMismatch { .. })
    ));
}

#[test]
fn each_header_field_flipped() {
    let b = common::sample_bytes();
    let flip = |off: usize| {
        let mut c = b.clone();
        c[off] ^= 0x41;
        Ruleset::load(&c).err()
    };
    for off in 0..8 {
        assert_eq!(flip(off), Some(LoadError::BadMagic));
    }
    assert!(
        matches!(flip(8), Some(LoadError::UnsupportedVersion { found, supported: FORMAT_VERSION }) if found != FORMAT_VERSION)
    );
    assert_eq!(flip(12), Some(LoadError::Malformed("header length")));
    assert!(matches!(flip(16), Some(LoadError::LengthMismatch { .. })));
    for off in 24..32 {
        assert_eq!(flip(off), Some(LoadError::ChecksumMismatch));
    }
    assert_eq!(flip(32), Some(LoadError::Malformed("section count")));
    // The detector image's checksum is checked when the image is used: flipped, the image
    // reads as absent (guard-secrets then builds the set from the records).
    for off in IMAGE_SUM_AT..IMAGE_SUM_AT + 8 {
        let mut c = b.clone();
        c[off] ^= 0x41;
        let rs = Ruleset::load(&c).expect("the rules are intact");
        assert!(rs.secret_image().is_empty(), "offset {off}");
    }
    for off in (36..HEADER_LEN).filter(|o| !(IMAGE_SUM_AT..IMAGE_SUM_AT + 8).contains(o)) {
        assert_eq!(
            flip(off),
            Some(LoadError::Malformed("reserved header bytes are not zero")),
            "offset {off}"
        );
    }
}

#[test]
fn wrong_version_and_checksum() {
    let mut b = common::sample_bytes();
    put_u32(&mut b, 8, FORMAT_VERSION + 1);
    assert_eq!(
        Ruleset::load(&b).err(),
        Some(LoadError::UnsupportedVersion {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        })
    );
    // The last byte before the detector image (the last section) is under the load checksum;
    // the image's own bytes are under the image checksum, checked on use.
    let mut b = common::sample_bytes();
    let image_at = guard_proto::ruleset::format::main_end(&b);
    b[image_at - 1] ^= 1;
    assert_eq!(Ruleset::load(&b).err(), Some(LoadError::ChecksumMismatch));
    let image = [0x5au8; 64];
    let mut b = guard_proto::ruleset::writer::with_section(
        &common::sample_bytes(),
        SEC_SECRET_IMAGE,
        &image,
    )
    .expect("resealed with an image");
    assert_eq!(Ruleset::load(&b).expect("loads").secret_image(), &image[..]);
    let last = b.len() - 1;
    b[last] ^= 1;
    let rs = Ruleset::load(&b).expect("the rules are intact");
    assert!(
        rs.secret_image().is_empty(),
        "a damaged image reads as absent"
    );
    let mut b = common::sample_bytes();
    b[HEADER_LEN + 3] ^= 0x80;
    assert_eq!(Ruleset::load(&b).err(), Some(LoadError::ChecksumMismatch));
}

#[test]
fn random_bytes_are_not_a_ruleset() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [0usize, 7, 64, 65, 200, 4096] {
        let mut v = vec![0u8; len];
        for b in &mut v {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let r = Ruleset::load(&v);
        if len < HEADER_LEN {
            assert_eq!(r.err(), Some(LoadError::TooShort { len }));
        } else {
            assert_eq!(r.err(), Some(LoadError::BadMagic));
        }
    }
}

#[test]
fn offsets_out_of_bounds_with_valid_checksum() {
    let m = |s: &'static str| Err(LoadError::Malformed(s));
    // Section beyond the end of the file.
    assert_eq!(
        resealed(|b| {
            let n = b.len() as u64;
            put_u64(b, HEADER_LEN + SEC_RULES * 16, n + 8)
        }),
        m("section out of bounds")
    );
    // Length overflowing u64.
    assert_eq!(
        resealed(|b| put_u64(b, HEADER_LEN + SEC_RULES * 16 + 8, u64::MAX)),
        m("section out of bounds")
    );
    // Section overlapping the header.
    assert_eq!(
        resealed(|b| put_u64(b, HEADER_LEN + SEC_STRINGS * 16, 8)),
        m("section out of bounds")
    );
    // Misaligned section.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_PATS);
            put_u64(b, HEADER_LEN + SEC_PATS * 16, o as u64 + 4)
        }),
        Err(LoadError::Misaligned)
    );
    // Partial record.
    assert_eq!(
        resealed(|b| {
            let (_, l) = section(b, SEC_RULES);
            put_u64(b, HEADER_LEN + SEC_RULES * 16 + 8, l as u64 - 1)
        }),
        m("section length is not a whole number of records")
    );
    // A rule's id pointing past the string blob.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_RULES);
            put_u32(b, o + RULE_ID, u32::MAX - 2)
        }),
        m("string out of bounds")
    );
    // A rule's range pointing past the patterns.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_RULES);
            put_u32(b, o + RULE_RANGES + 4, 1 << 30)
        }),
        m("rule range")
    );
    // Unknown kind and decision.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_RULES);
            b[o + RULE_KIND] = 9
        }),
        m("unknown rule kind")
    );
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_RULES);
            b[o + RULE_DECISION] = 5
        }),
        m("unknown decision in rule")
    );
    // Invalid UTF-8 where a &str is handed out (the first string byte belongs to the policy name).
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_META);
            let (so, _) = section(b, SEC_STRINGS);
            let off = rd_u32(b, o + META_NAME) as usize;
            b[so + off] = 0xff
        }),
        m("string is not UTF-8")
    );
    // A list naming a rule that does not exist.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_LISTS);
            put_u32(b, o, 10_000)
        }),
        m("rule list entry out of range")
    );
    // Hash buckets out of order, and an entry naming a missing rule.
    assert_eq!(
        resealed(|b| {
            let (o, l) = section(b, SEC_PROG_B);
            put_u32(b, o + l - 4, 999)
        }),
        m("hash table buckets")
    );
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_PROG_E);
            put_u32(b, o + ENTRY_VALUES + 4, 1 << 20)
        }),
        m("hash entry values out of range")
    );
    // Bucket count not a power of two plus one.
    assert_eq!(
        resealed(|b| {
            let (_, l) = section(b, SEC_ANCHOR_B);
            put_u64(b, HEADER_LEN + SEC_ANCHOR_B * 16 + 8, l as u64 - 4)
        }),
        m("hash table bucket count")
    );
    // Meta missing.
    assert_eq!(
        resealed(|b| put_u64(b, HEADER_LEN + SEC_META * 16 + 8, 0)),
        m("meta section")
    );
    // A secret pointing at a non-regex pattern.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_SECRETS);
            put_u32(b, o + SECRET_REGEX_PAT, 0)
        }),
        m("secret regex")
    );
    // Unknown secret flags, and an entropy floor that is not a number.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_SECRETS);
            b[o + SECRET_FLAGS] = 2;
        }),
        m("bad secret flags or entropy")
    );
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_SECRETS);
            put_u64(b, o + SECRET_ENTROPY, f64::NAN.to_bits())
        }),
        m("bad secret flags or entropy")
    );
    // The secret scan scope pointing past the patterns.
    assert_eq!(
        resealed(|b| {
            let (o, _) = section(b, SEC_META);
            put_u32(b, o + META_SECRET_SCOPE + 4, 1 << 20)
        }),
        m("secret scope range")
    );
}

#[test]
fn string_cut_inside_a_multibyte_character_is_refused() {
    let mut spec = common::sample_spec();
    spec.rules[0].reason = "clé privé".into();
    let mut b = guard_proto::ruleset::writer::write(&spec);
    assert!(Ruleset::load(&b).is_ok());
    let (o, _) = section(&b, SEC_RULES);
    // Shorten the reason by one byte: it now ends inside the final `é`.
    let len = rd_u32(&b, o + RULE_REASON + 4);
    put_u32(&mut b, o + RULE_REASON + 4, len - 1);
    seal(&mut b);
    assert_eq!(
        Ruleset::load(&b).err(),
        Some(LoadError::Malformed("string is not UTF-8"))
    );
}

fn exercise(rs: &Ruleset<'_>, with_regex: bool) {
    let env: &[(&str, &str)] = &[("TF_WORKSPACE", "prod")];
    let ctx = Context {
        env: &env,
        cwd: b"/home/u",
        agent: b"a",
    };
    for p in [
        &b"/home/u/.ssh/id_rsa"[..],
        b"/x/.env",
        b"/a/b.pem",
        b"/",
        b"",
    ] {
        for access in [FileAccess::Read, FileAccess::Write, FileAccess::Delete] {
            let a = Action::File { path: p, access };
            let _ = rs.evaluate(&a, &ctx);
            rs.for_each_match(&a, &ctx, &mut |_| {});
        }
    }
    let argvs: [&[&str]; 4] = [
        &["git", "-C", "r", "push", "-f"],
        &["sudo", "env", "-S", "rm -rf /", "x"],
        &["TF_WORKSPACE=prod", "terraform", "destroy"],
        &[],
    ];
    for argv in &argvs {
        let a = Action::Exec {
            argv,
            program: Some(b"/opt/bin/tool"),
        };
        let _ = rs.evaluate(&a, &ctx);
        rs.for_each_match(&a, &ctx, &mut |_| {});
    }
    let a = Action::Connect {
        host: Some(b"metadata.google.internal"),
        ip: Some(IpAddr::from([169, 254, 169, 254])),
        port: 80,
    };
    let _ = rs.evaluate(&a, &ctx);
    let h = Action::Http {
        method: b"POST",
        host: b"backboard.railway.app",
        path: b"/graphql/v2",
        body: br#"{"query":"mutation { volumeDelete }"}"#,
    };
    if with_regex {
        // Regex compilation is slow in debug builds, so only some iterations pay for it.
        let cache = RegexCache::new(rs);
        let _ = rs.evaluate_with(&h, &ctx, Some(&cache));
        rs.scan_secrets(&cache, b"key AKIAIOSFODNN7EXAMPLE here", &mut |_, _, _| {});
    }
    let _ = rs.env_strip_matches(b"X_TOKEN");
    for i in 0..rs.rule_count() + 2 {
        let _ = rs.rule(i);
    }
    for i in 0..rs.secret_count() + 1 {
        let _ = rs.secret(i);
        let _ = rs.secret_keywords(i).count();
    }
    let _ = (
        rs.policy_name(),
        rs.default_decision(),
        rs.monitor_mode(),
        rs.ask_timeout_ms(),
        rs.unguardable_exec(),
        rs.rule_counts(),
    );
}

#[test]
fn fuzz_flipped_bytes_never_panic() {
    let base = common::sample_bytes();
    exercise(
        &Ruleset::load(&base).unwrap_or_else(|e| panic!("{e}")),
        true,
    );
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut loaded, mut refused) = (0u32, 0u32);
    for i in 0..20_000u32 {
        let mut b = base.clone();
        let flips = 1 + (next() % 4) as usize;
        for _ in 0..flips {
            let off = (next() as usize) % b.len();
            b[off] ^= 1 << (next() % 8);
        }
        // Most iterations fix the checksum so the structural validation is what gets tested.
        if i % 8 != 0 {
            seal(&mut b);
        }
        match Ruleset::load(&b) {
            Ok(rs) => {
                loaded += 1;
                exercise(&rs, i % 512 == 0);
            }
            Err(_) => refused += 1,
        }
        if i % 8 == 0 {
            // Without a fixed checksum a flip in the body is always caught.
            let body_flipped = b[HEADER_LEN..] != base[HEADER_LEN..];
            assert!(!body_flipped || Ruleset::load(&b).is_err());
        }
    }
    // Both paths were exercised.
    assert!(loaded > 100, "loaded {loaded}");
    assert!(refused > 100, "refused {refused}");
}
