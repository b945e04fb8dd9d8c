//! `policies/packs/secrets.toml` states exactly the built-in detectors, and its examples hold:
//! each `match` example is found by its own detector with the allowlist off (as the policy
//! compiler checks it), no `no_match` example is, and with the default allowlist the
//! placeholder examples are left alone.

use guard_secrets::{Decision, Detectors, SecretSpec, builtin_specs, verify_examples};
use toml::Value;

const PACK: &str = include_str!("../../policies/packs/secrets.toml");

struct Entry {
    spec: SecretSpec,
    matches: Vec<String>,
    no_matches: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn entries() -> Vec<Entry> {
    let doc: toml::Table = PACK.parse().expect("the pack is valid TOML");
    for key in doc.keys() {
        assert!(
            ["policy", "secret"].contains(&key.as_str()),
            "unexpected table {key}"
        );
    }
    let secrets = doc["secret"].as_array().expect("[[secret]] entries");
    secrets
        .iter()
        .map(|s| {
            let t = s.as_table().expect("table");
            for key in t.keys() {
                assert!(
                    ["id", "regex", "keywords", "decision", "entropy", "examples"]
                        .contains(&key.as_str()),
                    "unknown key {key}"
                );
            }
            let id = t["id"].as_str().expect("id");
            let decision = t["decision"].as_str().expect("decision");
            let examples = t["examples"].as_table().expect("examples table");
            Entry {
                spec: SecretSpec {
                    id: id.to_string(),
                    regex: t["regex"].as_str().expect("regex").to_string(),
                    keywords: strings(t.get("keywords")),
                    decision: Decision::parse(decision).expect("known decision"),
                    min_entropy: t.get("entropy").map(|e| {
                        e.as_float()
                            .or_else(|| e.as_integer().map(|i| i as f64))
                            .expect("number")
                    }),
                },
                matches: strings(examples.get("match")),
                no_matches: strings(examples.get("no_match")),
            }
        })
        .collect()
}

#[test]
fn pack_equals_the_builtin_detectors() {
    let pack: Vec<SecretSpec> = entries().into_iter().map(|e| e.spec).collect();
    let builtin = builtin_specs();
    assert_eq!(pack.len(), builtin.len());
    for (p, b) in pack.iter().zip(&builtin) {
        assert_eq!(p, b, "pack and builtin differ for {}", b.id);
    }
    // And it compiles as a policy-supplied set.
    let d = Detectors::from_specs(&pack).expect("pack compiles");
    assert_eq!(d.len(), builtin.len());
}

#[test]
fn pack_examples_hold_with_the_allowlist_off() {
    for e in entries() {
        assert!(
            !e.matches.is_empty(),
            "{}: needs a match example",
            e.spec.id
        );
        let m: Vec<&str> = e.matches.iter().map(String::as_str).collect();
        let n: Vec<&str> = e.no_matches.iter().map(String::as_str).collect();
        if let Err(err) = verify_examples(&e.spec, &m, &n) {
            panic!("{err}");
        }
    }
}

#[test]
fn pack_examples_are_placeholders_to_the_default_allowlist() {
    // The same examples inside a real file (this pack, a README) are not redacted: the
    // allowlist is the separate layer that recognises them.
    let d = Detectors::builtin();
    for e in entries() {
        for ex in &e.matches {
            let f = d.scan(ex.as_bytes());
            assert!(f.is_empty(), "{}: {ex:?} -> {f:?}", e.spec.id);
        }
    }
    // Hence the pack file itself reads clean.
    let f = d.scan(PACK.as_bytes());
    assert!(
        f.is_empty(),
        "{:?}",
        f.iter()
            .map(|x| (x.detector, &PACK[x.start..x.end]))
            .collect::<Vec<_>>()
    );
}
