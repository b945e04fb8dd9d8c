//! Proves that evaluating file, exec and connect actions on a loaded ruleset performs zero heap
//! allocations (a counting global allocator wraps the system one).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;

use guard_proto::action::NoEnv;
use guard_proto::{Action, Context, Decision, FileAccess, Ruleset};

struct Counting;

thread_local! {
    // Counted per thread so the test harness's own threads cannot disturb the count.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn file_exec_connect_evaluation_allocates_nothing() {
    let bytes = common::sample_bytes();
    let env_pairs: &[(&str, &str)] = &[("TF_WORKSPACE", "prod-eu")];
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let ctx = Context {
        env: &env_pairs,
        cwd: b"/home/u/proj",
        agent: b"claude",
    };
    let noenv = NoEnv;
    let ctx0 = Context {
        env: &noenv,
        cwd: b"/",
        agent: b"",
    };

    let paths: [&[u8]; 6] = [
        b"/home/u/.ssh/id_ed25519",
        b"/home/u/.ssh/id_ed25519.pub",
        b"/home/u/proj/.env",
        b"/srv/certs/server.pem",
        b"/tmp/x/cache/a/b/c.db",
        b"/usr/share/doc/readme.txt",
    ];
    let argvs: [&[&str]; 7] = [
        &["git", "-C", "repo", "push", "--force", "origin", "main"],
        &["git", "commit", "-m", "push --force"],
        &[
            "sudo", "-u", "root", "env", "-i", "FOO=1", "nice", "-n", "5", "rm", "-rf", "/",
        ],
        &["env", "-S", "kubectl -n prod delete pod x"],
        &["TF_WORKSPACE=prod", "terraform", "destroy"],
        &[
            "timeout",
            "-s",
            "KILL",
            "10s",
            "xargs",
            "-n",
            "1",
            "/opt/bin/tool",
        ],
        &["terraform", "destroy"],
    ];
    let ips: [IpAddr; 3] = [
        IpAddr::from([169, 254, 169, 254]),
        "fd00::1".parse().unwrap_or(IpAddr::from([0; 4])),
        IpAddr::from([8, 8, 8, 8]),
    ];

    // Warm up anything lazily initialised outside the evaluator (thread-locals, stdout).
    let _ = rs.evaluate(
        &Action::File {
            path: paths[0],
            access: FileAccess::Read,
        },
        &ctx,
    );

    let mut decisions = Vec::with_capacity(64);
    let before = allocs();
    let mut matched = 0u32;
    for &p in &paths {
        for access in [FileAccess::Read, FileAccess::Write, FileAccess::Delete] {
            let a = Action::File { path: p, access };
            decisions.push(rs.evaluate(&a, &ctx).decision);
            rs.for_each_match(&a, &ctx, &mut |_| matched += 1);
        }
    }
    for argv in &argvs {
        let a = Action::Exec {
            argv,
            program: None,
        };
        decisions.push(rs.evaluate(&a, &ctx).decision);
        decisions.push(rs.evaluate(&a, &ctx0).decision);
        rs.for_each_match(&a, &ctx, &mut |_| matched += 1);
    }
    for ip in ips {
        for (host, port) in [
            (Some(&b"metadata.google.internal"[..]), 80u16),
            (None, 8080),
            (Some(&b"example.com"[..]), 443),
        ] {
            let a = Action::Connect {
                host,
                ip: Some(ip),
                port,
            };
            decisions.push(rs.evaluate(&a, &ctx).decision);
            rs.for_each_match(&a, &ctx, &mut |_| matched += 1);
        }
    }
    let n = rs.env_strip_matches(b"GITHUB_TOKEN");
    let scoped = paths.iter().filter(|p| rs.in_secret_scope(p)).count();
    let after = allocs();
    assert_eq!(
        after - before,
        0,
        "evaluation allocated {} times",
        after - before
    );

    // The evaluations really did work (so the zero above is not vacuous).
    assert!(n);
    assert!(scoped > 0 && scoped < paths.len(), "{scoped}");
    assert!(matched > 10);
    assert_eq!(decisions[0], Decision::Deny); // id_ed25519 read
    assert!(decisions.contains(&Decision::Ask));
    assert!(decisions.contains(&Decision::Redact));
    assert!(decisions.contains(&Decision::Allow));
}
