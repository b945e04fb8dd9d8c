//! False-positive corpus: realistic files full of the words "token", "secret", "password" and
//! of documented placeholders must produce no finding; the same files with generated secrets
//! spliced in must have exactly those secrets redacted.

mod common;

use guard_secrets::{Detectors, redact};

const CORPUS: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("corpus/Cargo.toml.txt")),
    ("package.json", include_str!("corpus/package.json.txt")),
    ("README.md", include_str!("corpus/README.md.txt")),
    ("app.py", include_str!("corpus/app.py.txt")),
    (".env.example", include_str!("corpus/env.example.txt")),
    (
        ".github/workflows/ci.yml",
        include_str!("corpus/workflow.yml.txt"),
    ),
];

#[test]
fn realistic_files_without_secrets_have_no_findings() {
    let d = Detectors::builtin();
    let mut problems = Vec::new();
    for (name, text) in CORPUS {
        for f in d.scan(text.as_bytes()) {
            problems.push(format!(
                "{name}: {} flagged {:?}",
                f.detector,
                &text[f.start..f.end]
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_corpus_does_exercise_the_prefilter() {
    // Guard against a vacuous pass: these files must reach the regex stage.
    let d = Detectors::builtin();
    for (name, text) in CORPUS {
        assert!(d.might_contain_secret(text.as_bytes()), "{name}");
    }
}

#[test]
fn generated_secrets_spliced_into_the_corpus_are_redacted() {
    let d = Detectors::builtin();
    let mut rng = common::Rng::from_env();
    let seed = rng.seed;
    for (name, text) in CORPUS {
        let lines = rng.secret_lines();
        // Splice each secret line after a different line of the file.
        let mut out = String::new();
        let file_lines: Vec<&str> = text.lines().collect();
        for (i, l) in file_lines.iter().enumerate() {
            out.push_str(l);
            out.push('\n');
            if let Some((line, _)) = lines.get(i) {
                out.push_str(line);
            }
        }
        let findings = d.scan(out.as_bytes());
        let red = String::from_utf8(redact(out.as_bytes(), &findings)).expect("utf8");
        for (_, secret) in &lines {
            assert!(
                !red.contains(secret.as_str()),
                "seed {seed}: {name}: {secret} survived"
            );
        }
        assert_eq!(
            findings.len(),
            lines.len(),
            "seed {seed}: {name}: {:?}",
            findings
                .iter()
                .map(|f| (f.detector, &out[f.start..f.end]))
                .collect::<Vec<_>>()
        );
        // Everything else is untouched: removing the placeholders and secret lines gives the
        // original file back.
        let mut back = red.clone();
        for (line, secret) in &lines {
            back = back.replacen(&line.replace(secret.as_str(), "REDACTED_BY_POLICY"), "", 1);
        }
        assert_eq!(
            back,
            format!("{}\n", text.trim_end_matches('\n')),
            "seed {seed}: {name}"
        );
    }
}
