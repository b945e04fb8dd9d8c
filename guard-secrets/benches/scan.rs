//! Scanning throughput of the built-in detectors.
//!
//! Inputs (built at start-up, nothing committed that looks like a secret):
//! - clean source: the workspace's own Rust sources and the test corpus, minus every line that
//!   holds a detector keyword, repeated to 1 MiB and 16 MiB: the common case, where the keyword
//!   prefilter answers alone;
//! - keyword-rich text without secrets: the false-positive corpus (README, app.py, .env.example,
//!   ...) repeated to 1 MiB: every detector's regex runs and finds nothing;
//! - the clean source with a generated secret every 4 KiB;
//! - `redact` of that buffer with its findings;
//! - realistic files as they are (keywords included, so the regexes run where a keyword
//!   occurs): the workspace's Rust sources, its Markdown, its `Cargo.lock`, JSON fixtures, and
//!   all of them mixed, each repeated to 4 MiB;
//! - building the built-in detector set, and loading it from its precompiled image (what
//!   libguard does with a compiled ruleset): paid once per process.
//!
//! Run: `cargo bench -p guard-secrets --bench scan`.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use guard_secrets::{Detectors, redact};

const MIB: usize = 1 << 20;

fn sources() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "../guard-proto/src",
        "../guard-proto/src/ruleset",
        "../guard-policy/src",
        "../libguard/src",
        "../guardctl/src",
        "../tests/src",
        "src",
        "tests/corpus",
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path()) {
                out.push(s);
            }
        }
    }
    out
}

/// Files under `dir` (relative to the workspace root, recursively, skipping `target`) whose
/// name ends with one of `exts`, concatenated.
fn files_like(dir: &str, exts: &[&str]) -> String {
    fn walk(p: &Path, exts: &[&str], out: &mut String) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if e.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&e, exts, out);
                }
            } else if exts.iter().any(|x| name.ends_with(x))
                && let Ok(s) = std::fs::read_to_string(&e)
            {
                out.push_str(&s);
            }
        }
    }
    let mut out = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir),
        exts,
        &mut out,
    );
    out
}

fn repeat_to(chunk: &str, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + chunk.len());
    while v.len() < size {
        v.extend_from_slice(chunk.as_bytes());
    }
    v.truncate(size);
    v
}

/// SplitMix64 for generated secrets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn s(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

fn secret_line(rng: &mut Rng, i: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const HEX: &[u8] = b"0123456789abcdef";
    match i % 4 {
        0 => format!("GH={}\n", ["gh", "p_", &rng.s(ALNUM, 36)].concat()),
        1 => format!("DB_PASSWORD={}9{}\n", rng.s(ALNUM, 10), rng.s(ALNUM, 10)),
        2 => format!("DO={}\n", ["do", "p_v1_", &rng.s(HEX, 64)].concat()),
        _ => format!("url = \"https://svc:{}@host/\"\n", rng.s(ALNUM, 20)),
    }
}

fn bench(c: &mut Criterion) {
    let d = Detectors::builtin();
    let all = sources();

    let clean_chunk: String = all
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| !d.might_contain_secret(l.as_bytes()))
        .flat_map(|l| [l, "\n"])
        .collect();
    let keyword_chunk: String =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
    assert!(clean_chunk.len() > 4096, "not enough clean source text");

    let clean_1 = repeat_to(&clean_chunk, MIB);
    let clean_16 = repeat_to(&clean_chunk, 16 * MIB);
    assert!(!d.might_contain_secret(&clean_16));
    let kw_1 = repeat_to(&keyword_chunk, MIB);
    assert!(
        d.scan(&kw_1).is_empty(),
        "the corpus must stay free of findings"
    );

    let mut rng = Rng(0x005e_c2e7);
    let mut with_secrets = |size: usize| {
        let mut v = Vec::with_capacity(size + 4096);
        let mut i = 0;
        while v.len() < size {
            let line = secret_line(&mut rng, i);
            let fill = 4096 - line.len();
            let start = (i * 977) % (clean_chunk.len() - fill);
            // Cut at char boundaries: the source is UTF-8.
            let mut a = start;
            while !clean_chunk.is_char_boundary(a) {
                a += 1;
            }
            let mut b = (a + fill).min(clean_chunk.len());
            while !clean_chunk.is_char_boundary(b) {
                b -= 1;
            }
            v.extend_from_slice(line.as_bytes());
            v.extend_from_slice(&clean_chunk.as_bytes()[a..b]);
            v.push(b'\n');
            i += 1;
        }
        (v, i)
    };
    let (sec_1, n1) = with_secrets(MIB);
    let (sec_16, _) = with_secrets(16 * MIB);
    let f1 = d.scan(&sec_1);
    assert_eq!(f1.len(), n1, "every inserted secret is found");

    let mut g = c.benchmark_group("scan");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));

    for (name, buf) in [
        ("clean_source_1MiB", &clean_1),
        ("clean_source_16MiB", &clean_16),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| d.scan(std::hint::black_box(buf))));
    }
    g.throughput(Throughput::Bytes(clean_16.len() as u64));
    g.bench_function("might_contain_secret_16MiB", |b| {
        b.iter(|| d.might_contain_secret(std::hint::black_box(&clean_16)))
    });
    g.throughput(Throughput::Bytes(kw_1.len() as u64));
    g.bench_function("keyword_rich_no_secrets_1MiB", |b| {
        b.iter(|| d.scan(std::hint::black_box(&kw_1)))
    });
    for (name, buf) in [
        ("secret_every_4KiB_1MiB", &sec_1),
        ("secret_every_4KiB_16MiB", &sec_16),
    ] {
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| d.scan(std::hint::black_box(buf))));
    }
    g.throughput(Throughput::Bytes(sec_1.len() as u64));
    g.bench_function("redact_secret_every_4KiB_1MiB", |b| {
        b.iter(|| redact(std::hint::black_box(&sec_1), &f1))
    });
    g.finish();

    // Realistic files as they are. Findings here would be false positives (the workspace holds
    // no secrets): the assertion keeps the measurement about content without secrets.
    let rust = files_like(".", &[".rs"]);
    let markdown = files_like(".", &[".md"]);
    let lock = files_like(".", &["Cargo.lock"]);
    let json = files_like("guard-http/tests/fixtures", &[".json"]);
    let mixed: String = [&rust, &markdown, &lock, &json]
        .iter()
        .flat_map(|s| s.lines().take(2000))
        .flat_map(|l| [l, "\n"])
        .collect();
    let mut g = c.benchmark_group("realistic");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, text) in [
        ("rust_sources_4MiB", &rust),
        ("markdown_4MiB", &markdown),
        ("cargo_lock_4MiB", &lock),
        ("json_4MiB", &json),
        ("mixed_4MiB", &mixed),
    ] {
        if text.len() < 1024 {
            continue;
        }
        let buf = repeat_to(text, 4 * MIB);
        let found = d.scan(&buf);
        eprintln!(
            "{name}: {} findings, keywords present: {}",
            found.len(),
            d.might_contain_secret(&buf)
        );
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| d.scan(std::hint::black_box(&buf))));
    }
    g.finish();

    // What each process pays once, lazily, before its first inspected read.
    let mut g = c.benchmark_group("build");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("detectors_builtin", |b| b.iter(Detectors::builtin));
    // What libguard does instead with a compiled ruleset: load the precompiled image.
    let image: &'static [u8] = Detectors::builtin().to_image().leak();
    g.bench_function("detectors_from_image", |b| {
        b.iter(|| Detectors::from_image(std::hint::black_box(image)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
