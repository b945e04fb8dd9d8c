//! Embeds every policy file under `policies/` (except `policies/tests/`) into the crate, so
//! `Policy::default_policy()` resolves `default.toml` and the packs it includes from memory
//! whatever packs exist, without a hand-kept list; and the test files under `policies/tests/`
//! (as `TESTS`), which `guardctl policy test` runs for the default policy.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "tests") && p.parent() == Some(root) {
                continue;
            }
            collect(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "toml")
            && let Ok(rel) = p.strip_prefix(root)
        {
            out.push((rel.to_string_lossy().into_owned(), p.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("..").join("policies");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let mut src = String::from("pub static FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in &files {
        println!("cargo:rerun-if-changed={}", abs.display());
        let abs = std::fs::canonicalize(abs).unwrap_or_else(|_| abs.clone());
        src.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    src.push_str("];\n");
    // The default policy's test files, for `guardctl policy test` without `--policy`.
    let tests_dir = root.join("tests");
    let mut tests = Vec::new();
    collect(&tests_dir, &tests_dir, &mut tests);
    src.push_str("pub static TESTS: &[(&str, &str)] = &[\n");
    for (rel, abs) in &tests {
        println!("cargo:rerun-if-changed={}", abs.display());
        let abs = std::fs::canonicalize(abs).unwrap_or_else(|_| abs.clone());
        src.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    src.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("embedded_policies.rs");
    if let Err(e) = std::fs::write(&out, src) {
        panic!("cannot write {}: {e}", out.display());
    }
}
