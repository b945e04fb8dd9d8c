//! Evaluation, load and layout benchmarks for the compiled ruleset.
//!
//! Run: `cargo bench -p guard-proto --bench eval`. Sample sizes are small so the whole run
//! stays within a few minutes on a shared machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use guard_proto::action::NoEnv;
use guard_proto::ruleset::writer::{RuleBody, RuleSpec, RulesetSpec, WhenSpec, write};
use guard_proto::{Action, Context, Decision, FileAccess, Ruleset};

/// CPU time of this thread (excludes time spent descheduled, unlike criterion's wall clock),
/// so the per-op figure is meaningful on a machine shared with other builds.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Median over 15 rounds of the CPU time per call of `f`.
fn cpu_per_op(name: &str, iters: u32, mut f: impl FnMut()) {
    let mut rounds = Vec::new();
    for _ in 0..15 {
        let t = thread_cpu_ns();
        for _ in 0..iters {
            f();
        }
        rounds.push((thread_cpu_ns() - t) as f64 / f64::from(iters));
    }
    rounds.sort_by(|a, b| a.total_cmp(b));
    println!(
        "cpu-time {name}: median {:.0} ns/op (min {:.0})",
        rounds[7], rounds[0]
    );
}

fn rule(i: usize, decision: Decision, body: RuleBody) -> RuleSpec {
    RuleSpec {
        id: format!("rule-{i}"),
        reason: format!("generated rule {i}"),
        tags: vec!["BENCH".into()],
        source: "bench.toml".into(),
        line: i as u32 + 1,
        decision,
        inactive: false,
        when: WhenSpec::default(),
        body,
    }
}

/// A realistic mix: literal files, `dir/**`, `**/name`, `**/*.ext`, wildcard globs.
fn file_rules(n: usize) -> Vec<RuleSpec> {
    (0..n)
        .map(|i| {
            let g = match i % 20 {
                0..=5 => format!("/home/u/.config/app{}/sub{i}/credentials-{i}.json", i % 50),
                6..=9 => format!("/srv/data{i}/**"),
                10..=13 => format!("**/secret-name-{i}"),
                14..=16 => format!("**/*.ext{i}"),
                17 => format!("/home/u/proj{i}/*.log"),
                18 => format!("/var/lib/app{i}/**/cache-*"),
                _ => format!("/home/u/.cache/tool{}/v[0-9]/key-{i}?", i % 7),
            };
            rule(
                i,
                if i % 3 == 0 {
                    Decision::Deny
                } else {
                    Decision::Audit
                },
                RuleBody::File {
                    include: vec![g],
                    exclude: vec![],
                    access: 7,
                },
            )
        })
        .collect()
}

fn exec_rules(n: usize) -> Vec<RuleSpec> {
    let progs = [
        "git",
        "kubectl",
        "docker",
        "terraform",
        "aws",
        "npm",
        "cargo",
        "helm",
    ];
    (0..n)
        .map(|i| {
            let program = if i < 8 {
                progs[i].to_string()
            } else {
                format!("tool{i}")
            };
            rule(
                i,
                Decision::Ask,
                RuleBody::Exec {
                    program,
                    words: vec![format!("sub{i}")],
                    any_arg: vec!["--force".into(), "-f".into(), "+*".into()],
                    all_args: vec![],
                },
            )
        })
        .chain(std::iter::once(rule(
            n,
            Decision::Ask,
            RuleBody::Exec {
                program: "git".into(),
                words: vec!["push".into()],
                any_arg: vec!["--force".into(), "-f".into()],
                all_args: vec![],
            },
        )))
        .collect()
}

fn spec(rules: Vec<RuleSpec>) -> RulesetSpec {
    RulesetSpec {
        name: "bench".into(),
        default: Decision::Allow,
        monitor: false,
        ask_timeout_ms: 120_000,
        unguardable_exec: Decision::Audit,
        rules,
        secrets: vec![],
        env_strip: vec![],
        env_keep: vec![],
        value_options: vec![],
        secret_scope: vec![],
        secret_exclude: vec![],
    }
}

// 100 bytes, 12 components: every ancestor is looked up.
const PATH_MISS: &[u8] = b"/home/u/.config/app7/sub12345/some/deeper/directory/structure/for/benchmarks/file-name-here.txt.bak";
// Same length, matched by a `/srv/dataN/**` rule.
const PATH_HIT: &[u8] = b"/srv/data6/some/deeper/directory/structure/for/the/benchmark/purposes/of/this/file-name-here.txt.bk";

fn bench_file(c: &mut Criterion) {
    assert_eq!((PATH_MISS.len(), PATH_HIT.len()), (99, 99));
    let env = NoEnv;
    let ctx = Context {
        env: &env,
        cwd: b"/home/u",
        agent: b"",
    };
    let mut g = c.benchmark_group("file_eval");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for n in [10usize, 1_000, 10_000] {
        let bytes = write(&spec(file_rules(n)));
        let rs = match Ruleset::load(&bytes) {
            Ok(rs) => rs,
            Err(e) => panic!("{e}"),
        };
        let hit = rs.evaluate(
            &Action::File {
                path: PATH_HIT,
                access: FileAccess::Read,
            },
            &ctx,
        );
        assert!(hit.rule.is_some(), "the hit path must match at n={n}");
        cpu_per_op(&format!("file_eval/miss_{n}_rules"), 20_000, || {
            black_box(rs.evaluate(
                &Action::File {
                    path: black_box(PATH_MISS),
                    access: FileAccess::Read,
                },
                &ctx,
            ));
        });
        cpu_per_op(&format!("file_eval/hit_{n}_rules"), 20_000, || {
            black_box(rs.evaluate(
                &Action::File {
                    path: black_box(PATH_HIT),
                    access: FileAccess::Read,
                },
                &ctx,
            ));
        });
        g.bench_function(format!("miss_{n}_rules"), |b| {
            b.iter(|| {
                rs.evaluate(
                    &Action::File {
                        path: black_box(PATH_MISS),
                        access: FileAccess::Read,
                    },
                    &ctx,
                )
            })
        });
        g.bench_function(format!("hit_{n}_rules"), |b| {
            b.iter(|| {
                rs.evaluate(
                    &Action::File {
                        path: black_box(PATH_HIT),
                        access: FileAccess::Read,
                    },
                    &ctx,
                )
            })
        });
    }
    g.finish();
}

fn bench_exec(c: &mut Criterion) {
    let env = NoEnv;
    let ctx = Context {
        env: &env,
        cwd: b"/home/u",
        agent: b"",
    };
    let argv: &[&str] = &[
        "git",
        "-C",
        "repo",
        "push",
        "--force",
        "origin",
        "main",
        "--verbose",
    ];
    let wrapped: &[&str] = &["sudo", "-u", "root", "nice", "-n", "5", "git", "push"];
    let mut g = c.benchmark_group("exec_eval");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for n in [10usize, 1_000] {
        let bytes = write(&spec(exec_rules(n)));
        let rs = match Ruleset::load(&bytes) {
            Ok(rs) => rs,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            rs.evaluate(
                &Action::Exec {
                    argv: &argv,
                    program: None
                },
                &ctx
            )
            .decision,
            Decision::Ask
        );
        cpu_per_op(&format!("exec_eval/argv8_{n}_rules"), 20_000, || {
            black_box(rs.evaluate(
                &Action::Exec {
                    argv: black_box(&argv),
                    program: None,
                },
                &ctx,
            ));
        });
        cpu_per_op(
            &format!("exec_eval/argv8_wrapped_{n}_rules"),
            20_000,
            || {
                black_box(rs.evaluate(
                    &Action::Exec {
                        argv: black_box(&wrapped),
                        program: None,
                    },
                    &ctx,
                ));
            },
        );
        g.bench_function(format!("argv8_{n}_rules"), |b| {
            b.iter(|| {
                rs.evaluate(
                    &Action::Exec {
                        argv: black_box(&argv),
                        program: None,
                    },
                    &ctx,
                )
            })
        });
        g.bench_function(format!("argv8_wrapped_{n}_rules"), |b| {
            b.iter(|| {
                rs.evaluate(
                    &Action::Exec {
                        argv: black_box(&wrapped),
                        program: None,
                    },
                    &ctx,
                )
            })
        });
    }
    g.finish();
}

fn bench_load(c: &mut Criterion) {
    let bytes = write(&spec(file_rules(10_000)));
    let mut g = c.benchmark_group("load");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    cpu_per_op("load/validate_10000_rules", 50, || {
        black_box(
            Ruleset::load(black_box(&bytes))
                .map(|r| r.rule_count())
                .ok(),
        );
    });
    g.bench_function(
        format!("validate_10000_rules_{}KiB", bytes.len() / 1024),
        |b| b.iter(|| Ruleset::load(black_box(&bytes)).map(|r| r.rule_count())),
    );
    g.finish();
    // Layout (the writer's part of a compile) at 10,000 rules, timed once.
    let s = spec(file_rules(10_000));
    let t = Instant::now();
    let out = write(&s);
    println!(
        "layout (writer) of 10000 file rules: {:?}, {} bytes",
        t.elapsed(),
        out.len()
    );
}

criterion_group!(benches, bench_file, bench_exec, bench_load);
criterion_main!(benches);
