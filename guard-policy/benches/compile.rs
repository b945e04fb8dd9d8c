//! Compile time of a 10,000-rule policy (TOML parse, validation, layout, every example checked).
//! Run: `cargo bench -p guard-policy --bench compile`. A plain timing, not criterion: one
//! compile takes long enough to measure directly.

use std::fmt::Write as _;
use std::time::Instant;

use guard_policy::{CompileContext, Policy};

fn policy_text(n: usize) -> String {
    let mut s = String::from("[policy]\nname = \"bench\"\n");
    for i in 0..n {
        let (on, body, ex) = match i % 10 {
            0..=2 => (
                "file",
                format!(
                    "paths = [\"~/.config/app{}/sub{i}/credentials-{i}.json\"]",
                    i % 50
                ),
                format!("~/.config/app{}/sub{i}/credentials-{i}.json", i % 50),
            ),
            3 => (
                "file",
                format!("paths = [\"/srv/data{i}/**\"]"),
                format!("/srv/data{i}/x"),
            ),
            4 => (
                "file",
                format!("paths = [\"**/secret-name-{i}\"]"),
                format!("/a/b/secret-name-{i}"),
            ),
            5 => (
                "file",
                format!("paths = [\"**/*.ext{i}\", \"!/tmp/**\"]"),
                format!("/a/b.ext{i}"),
            ),
            6 => (
                "file",
                format!("paths = [\"/var/lib/app{i}/**/cache-*\"]"),
                format!("/var/lib/app{i}/x/cache-1"),
            ),
            7 | 8 => (
                "exec",
                format!("command = \"tool{i} sub{i}\"\nany_arg = [\"--force\", \"-f\"]"),
                format!("tool{i} -x sub{i} --force"),
            ),
            _ => (
                "connect",
                format!("hosts = [\"*.svc{i}.internal\"]\nports = [443, \"8000-8999\"]"),
                format!("a.svc{i}.internal:443"),
            ),
        };
        let _ = write!(
            s,
            "\n[[rule]]\nid = \"rule-{i}\"\non = \"{on}\"\n{body}\ndecision = \"deny\"\nexamples = {{ match = [\"{ex}\"] }}\n"
        );
    }
    s
}

fn main() {
    let dir = std::env::temp_dir().join(format!("guard-compile-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("p.toml");
    for n in [1_000usize, 10_000] {
        if let Err(e) = std::fs::write(&path, policy_text(n)) {
            panic!("{e}");
        }
        let ctx = CompileContext {
            home: "/home/u".into(),
            workspace: "/home/u/proj".into(),
            ..Default::default()
        };
        let t = Instant::now();
        let policy = match Policy::load(std::slice::from_ref(&path)) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let loaded = t.elapsed();
        let bytes = match policy.compile(&ctx) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        println!(
            "compile {n} rules: load+validate {:?}, total (with layout and all examples checked) {:?}, ruleset {} KiB",
            loaded,
            t.elapsed(),
            bytes.len() / 1024
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
