//! What a guarded process pays for its first content-scanned read: building the detector set
//! from the compiled default policy (as libguard's `redact::build` does) and scanning a 4 KiB
//! clean file. For callgrind, which counts just `first_scan`:
//!
//! ```text
//! cargo build -p guard-policy --release --example detector_setup
//! valgrind --tool=callgrind --toggle-collect=detector_setup::first_scan \
//!     target/release/examples/detector_setup [runtime|image]
//! ```
//!
//! `runtime` builds the set from the ruleset's `[[secret]]` specs; `image` (the default) uses
//! the precompiled detector image the compiler stores in the ruleset, as libguard does.

use guard_policy::{CompileContext, Policy};
use guard_proto::Ruleset;
use guard_secrets::{Detectors, SecretSpec};

/// libguard's fallback: the set built from the ruleset's specs.
fn runtime(rs: &Ruleset<'static>) -> Detectors {
    let mut specs = Vec::with_capacity(rs.secret_count() as usize);
    for i in 0..rs.secret_count() {
        let Some(s) = rs.secret(i) else { continue };
        let kw: Vec<&str> = rs.secret_keywords(i).collect();
        let mut spec = SecretSpec::new(s.id, s.regex, &kw);
        spec.decision = s.decision;
        spec.min_entropy = s.min_entropy;
        specs.push(spec);
    }
    Detectors::builtin_with_validated(&specs)
}

#[inline(never)]
fn first_scan(rs: &Ruleset<'static>, image: bool, content: &[u8]) -> usize {
    let d = if image {
        Detectors::from_image(rs.secret_image()).unwrap_or_else(|| runtime(rs))
    } else {
        runtime(rs)
    };
    let found = d.scan(content).len();
    std::hint::black_box(&d);
    found
}

fn main() {
    let image = std::env::args().nth(1).as_deref() != Some("runtime");
    let policy = match Policy::default_policy() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("default policy: {e}");
            std::process::exit(1);
        }
    };
    let bytes: &'static [u8] = policy
        .compile_unchecked(&CompileContext::canonical())
        .leak();
    let rs = match Ruleset::load(bytes) {
        Ok(rs) => rs,
        Err(e) => {
            eprintln!("ruleset: {e}");
            std::process::exit(1);
        }
    };
    // 4 KiB of ordinary code without detector keywords.
    let line = b"    let total = items.iter().map(|x| x.len()).sum::<usize>();\n";
    let content: Vec<u8> = line.iter().copied().cycle().take(4096).collect();
    let found = first_scan(&rs, image, &content);
    println!(
        "{} detectors source, image section {} bytes, {found} findings",
        if image { "image" } else { "runtime" },
        rs.secret_image().len()
    );
}
