//! Scans files with the built-in detectors, repeated to a size, many times: for profilers
//! (`perf record`, `valgrind --tool=callgrind`), which the criterion bench is too noisy for.
//!
//! `cargo run -p guard-secrets --profile bench --example scan_file -- SIZE_KIB ROUNDS FILE...`

use guard_secrets::Detectors;

/// The timed rounds, a function of its own so that callgrind can count just these:
/// `valgrind --tool=callgrind --toggle-collect=scan_file::measured ...`.
#[inline(never)]
fn measured(d: &Detectors, buf: &[u8], rounds: usize) -> usize {
    let mut findings = 0;
    for _ in 0..rounds {
        findings += d.scan(std::hint::black_box(buf)).len();
    }
    findings
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kib), Some(rounds)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: scan_file SIZE_KIB ROUNDS FILE...");
        std::process::exit(2);
    };
    let mut chunk = Vec::new();
    for f in &args[2..] {
        match std::fs::read(f) {
            Ok(b) => chunk.extend_from_slice(&b),
            Err(e) => eprintln!("{f}: {e}"),
        }
    }
    if chunk.is_empty() {
        eprintln!("no input");
        std::process::exit(2);
    }
    let mut buf = Vec::with_capacity(kib << 10);
    while buf.len() < kib << 10 {
        let n = chunk.len().min((kib << 10) - buf.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    let d = Detectors::builtin();
    // One unmeasured round compiles the regexes the input needs.
    let _ = d.scan(&buf);
    let t = std::time::Instant::now();
    let findings = measured(&d, &buf, rounds);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} bytes x {rounds}: {findings} findings, {:.1} MiB/s",
        buf.len(),
        (buf.len() * rounds) as f64 / secs / (1 << 20) as f64
    );
}
