//! Evaluator behaviour at the ruleset level: precedence, the default, match reporting past the
//! fixed-size match buffer, and http/secret evaluation with and without a regex cache.

mod common;

use common::{exec, file, rule};
use guard_proto::action::NoEnv;
use guard_proto::ruleset::RegexCache;
use guard_proto::ruleset::writer::{RuleBody, write};
use guard_proto::{Action, Context, Decision, FileAccess, Ruleset};

fn ctx() -> Context<'static> {
    static ENV: NoEnv = NoEnv;
    Context {
        env: &ENV,
        cwd: b"/",
        agent: b"",
    }
}

fn read(p: &str) -> Action<'_> {
    Action::File {
        path: p.as_bytes(),
        access: FileAccess::Read,
    }
}

#[test]
fn strictest_wins_and_ties_go_to_the_first_rule() {
    let mut spec = common::sample_spec();
    spec.default = Decision::Ask;
    spec.rules = vec![
        rule("allow-1", Decision::Allow, file(&["/x/**"], &[], 7)),
        rule("audit-1", Decision::Audit, file(&["/x/a/**"], &[], 7)),
        rule("redact-1", Decision::Redact, file(&["/x/a/b/**"], &[], 1)),
        rule("deny-1", Decision::Deny, file(&["/x/a/b/c"], &[], 7)),
        rule("deny-2", Decision::Deny, file(&["/x/a/b/c"], &[], 7)),
        rule("ask-1", Decision::Ask, file(&["/x/a/b/**"], &[], 7)),
    ];
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let v = |p: &str| {
        let v = rs.evaluate(&read(p), &ctx());
        (v.decision, v.rule.and_then(|r| rs.rule(r)).map(|r| r.id))
    };
    assert_eq!(v("/x/a/b/c"), (Decision::Deny, Some("deny-1")));
    assert_eq!(v("/x/a/b/d"), (Decision::Ask, Some("ask-1")));
    assert_eq!(v("/x/a/z"), (Decision::Audit, Some("audit-1")));
    assert_eq!(v("/x/z"), (Decision::Allow, Some("allow-1")));
    assert_eq!(v("/y"), (Decision::Ask, None));
    let mut m = Vec::new();
    rs.for_each_match(&read("/x/a/b/c"), &ctx(), &mut |r| m.push(r));
    assert_eq!(m, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn more_matches_than_the_buffer_are_all_reported_in_order() {
    let mut spec = common::sample_spec();
    // 700 matching rules spread across every index kind, plus non-matching ones in between.
    spec.rules = (0..1400)
        .map(|i| {
            let g = match i % 8 {
                0 => "/big/**".to_string(),
                2 => "**/f.txt".to_string(),
                4 => "**/*.txt".to_string(),
                6 => "/big/d*/f.txt".to_string(),
                _ => format!("/other{i}/**"),
            };
            rule(&format!("r{i}"), Decision::Audit, file(&[&g], &[], 7))
        })
        .collect();
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let mut m = Vec::new();
    rs.for_each_match(&read("/big/dir/f.txt"), &ctx(), &mut |r| m.push(r));
    let want: Vec<u32> = (0..1400).filter(|i| i % 2 == 0).collect();
    assert_eq!(m, want);
    assert_eq!(rs.evaluate(&read("/big/dir/f.txt"), &ctx()).rule, Some(0));
}

#[test]
fn exec_program_resolution() {
    let mut spec = common::sample_spec();
    spec.rules = vec![
        rule("by-name", Decision::Audit, exec("python3", &[], &[], &[])),
        rule(
            "by-path",
            Decision::Deny,
            exec("/usr/bin/python3", &[], &[], &[]),
        ),
    ];
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let argv: &[&str] = &["python", "-c", "x"];
    let ids = |program: Option<&[u8]>| {
        let mut m = Vec::new();
        rs.for_each_match(
            &Action::Exec {
                argv: &argv,
                program,
            },
            &ctx(),
            &mut |r| m.push(r),
        );
        m
    };
    // argv[0] is a different name; the resolved executable decides.
    assert_eq!(ids(Some(b"/usr/bin/python3")), [0, 1]);
    assert_eq!(ids(Some(b"/opt/python3")), [0]);
    assert!(ids(None).is_empty());
    let argv2: &[&str] = &["/usr/bin/python3"];
    let mut m = Vec::new();
    rs.for_each_match(
        &Action::Exec {
            argv: &argv2,
            program: None,
        },
        &ctx(),
        &mut |r| m.push(r),
    );
    assert_eq!(m, [0, 1]);
}

#[test]
fn http_regex_with_and_without_cache() {
    let bytes = common::sample_bytes();
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let cache = RegexCache::new(&rs);
    assert_eq!(rs.regex_count(), 2);
    let body = br#"{"query":"mutation { volumeDelete(volumeId: \"v\") }"}"#;
    let a = Action::Http {
        method: b"POST",
        host: b"backboard.railway.app",
        path: b"/graphql/v2",
        body,
    };
    let with = rs.evaluate_with(&a, &ctx(), Some(&cache));
    let without = rs.evaluate(&a, &ctx());
    assert_eq!(with, without);
    assert_eq!(with.decision, Decision::Ask);
    // The regex (`(?i)delete`) must also hold: a mutation without it does not match.
    let body2 = br#"{"query":"mutation { volumeRename }"}"#;
    let a2 = Action::Http {
        method: b"POST",
        host: b"backboard.railway.app",
        path: b"/graphql",
        body: body2,
    };
    assert_eq!(
        rs.evaluate_with(&a2, &ctx(), Some(&cache)).decision,
        Decision::Allow
    );
    // A cache of the wrong size never panics; it just finds no regex.
    let small = RegexCache::with_len(0);
    assert_eq!(
        rs.evaluate_with(&a, &ctx(), Some(&small)).decision,
        Decision::Allow
    );
}

#[test]
fn inactive_rules_and_when_flags() {
    let mut spec = common::sample_spec();
    let mut r = rule("inactive", Decision::Deny, file(&["/w/**"], &[], 7));
    r.inactive = true;
    let mut a = rule("agent", Decision::Ask, file(&["/w/**"], &[], 7));
    a.when.agent = vec!["claude*".into()];
    let mut c = rule("cwd", Decision::Audit, file(&["/w/**"], &[], 7));
    c.when.cwd = vec!["/prod/**".into()];
    spec.rules = vec![
        r,
        a,
        c,
        rule(
            "x",
            Decision::Allow,
            RuleBody::Connect {
                hosts: vec![],
                nets: vec![],
                ports: vec![(1, 2)],
            },
        ),
    ];
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let env = NoEnv;
    let run = |agent: &'static [u8], cwd: &'static [u8]| {
        let cx = Context {
            env: &env,
            cwd,
            agent,
        };
        rs.evaluate(&read("/w/f"), &cx).rule
    };
    assert_eq!(run(b"claude-code", b"/prod/x"), Some(1));
    assert_eq!(run(b"cursor", b"/prod/x"), Some(2));
    assert_eq!(run(b"cursor", b"/dev"), None);
    // Example mode ignores when.agent/cwd and the inactive flag.
    assert!(rs.rule_matches_example(0, &read("/w/f"), &ctx(), None));
    assert!(rs.rule_matches_example(1, &read("/w/f"), &ctx(), None));
    let conn = |port| Action::Connect {
        host: None,
        ip: None,
        port,
    };
    assert_eq!(rs.evaluate(&conn(2), &ctx()).rule, Some(3));
    assert_eq!(rs.evaluate(&conn(3), &ctx()).rule, None);
}

#[test]
fn value_options_builtin_and_user() {
    let mut spec = common::sample_spec();
    spec.rules.push(rule(
        "mytool-nuke",
        Decision::Deny,
        exec("mytool", &["nuke"], &[], &[]),
    ));
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let id = |argv: &[&str]| {
        let v = rs.evaluate(
            &Action::Exec {
                argv: &argv,
                program: None,
            },
            &ctx(),
        );
        v.rule.and_then(|r| rs.rule(r)).map(|r| r.id)
    };
    assert_eq!(
        id(&["git", "-C", "repo", "push", "-f"]),
        Some("git-force-push")
    );
    // `-C` consumes `push`: the subcommand is `status`.
    assert_eq!(id(&["git", "-C", "push", "status", "-f"]), None);
    // Unknown options do not consume a value.
    assert_eq!(id(&["git", "--bare", "push", "-f"]), Some("git-force-push"));
    assert_eq!(
        id(&["git", "--git-dir=x", "push", "-f"]),
        Some("git-force-push")
    );
    assert_eq!(id(&["mytool", "-p", "nuke", "run"]), None);
    assert_eq!(id(&["mytool", "-p", "prof", "nuke"]), Some("mytool-nuke"));
    assert_eq!(
        id(&["kubectl", "-n", "prod", "delete", "pod"]),
        Some("kubectl-delete")
    );
    assert_eq!(id(&["kubectl", "-n", "delete", "get"]), None);
}

#[test]
fn all_args_groups_need_one_member_each() {
    let mut spec = common::sample_spec();
    spec.rules = vec![rule(
        "rm-root",
        Decision::Deny,
        RuleBody::Exec {
            program: "rm".into(),
            words: vec![],
            any_arg: vec![],
            all_args: vec![vec!["-rf".into(), "-fr".into()], vec!["/".into()]],
        },
    )];
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let d = |words: &[&str]| {
        rs.evaluate(
            &Action::Exec {
                argv: &words,
                program: None,
            },
            &ctx(),
        )
        .decision
    };
    assert_eq!(d(&["rm", "-rf", "/"]), Decision::Deny);
    assert_eq!(d(&["rm", "-fr", "/"]), Decision::Deny);
    assert_eq!(d(&["rm", "/", "-fr"]), Decision::Deny);
    // One group satisfied is not enough.
    assert_eq!(d(&["rm", "-rf", "/tmp/x"]), Decision::Allow);
    assert_eq!(d(&["rm", "/"]), Decision::Allow);
}

#[test]
fn secret_entropy_and_scan_scope_survive_the_file() {
    let bytes = common::sample_bytes();
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let s = rs.secret(0).unwrap_or_else(|| panic!("no secret"));
    assert_eq!(s.min_entropy, Some(3.0));
    assert!(rs.in_secret_scope(b"/home/u/project/.env"));
    assert!(!rs.in_secret_scope(b"/home/u/project/node_modules/x/.env"));
    assert!(!rs.in_secret_scope(b"/etc/passwd"));
    let mut spec = common::sample_spec();
    spec.secrets[0].min_entropy = None;
    spec.secret_scope.clear();
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.secret(0).and_then(|s| s.min_entropy), None);
    // No scope: nothing is inspected.
    assert!(!rs.in_secret_scope(b"/home/u/project/.env"));
}

#[test]
fn path_only_file_verdicts_are_detected() {
    let build = |rules| {
        let mut spec = common::sample_spec();
        spec.rules = rules;
        write(&spec)
    };
    let plain = build(vec![rule("p", Decision::Deny, file(&["/w/**"], &[], 7))]);
    let rs = Ruleset::load(&plain).unwrap_or_else(|e| panic!("{e}"));
    assert!(rs.file_verdicts_are_path_only());
    // `when.agent` is fixed for a process: still path-only.
    let mut a = rule("agent", Decision::Ask, file(&["/w/**"], &[], 7));
    a.when.agent = vec!["claude*".into()];
    let bytes = build(vec![a]);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(rs.file_verdicts_are_path_only());
    // `when.cwd` and `when.env` change within a process.
    let mut c = rule("cwd", Decision::Audit, file(&["/w/**"], &[], 7));
    c.when.cwd = vec!["/prod/**".into()];
    let bytes = build(vec![c]);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(!rs.file_verdicts_are_path_only());
    let mut e = rule("env", Decision::Audit, file(&["/w/**"], &[], 7));
    e.when.env = vec![("STAGE".into(), "prod".into())];
    let bytes = build(vec![e]);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(!rs.file_verdicts_are_path_only());
}

#[test]
fn http_body_matters_only_where_a_matching_rule_reads_or_redacts_bodies() {
    let mut spec = common::sample_spec();
    spec.rules.push(rule(
        "api-deletes",
        Decision::Deny,
        RuleBody::Http {
            hosts: vec!["api.example.com".into()],
            methods: vec!["DELETE".into()],
            paths: vec![],
            body_contains: vec![],
            body_regex: vec![],
            graphql: vec![],
            graphql_ops: 0,
        },
    ));
    spec.rules.push(rule(
        "scrub-uploads",
        Decision::Redact,
        RuleBody::Http {
            hosts: vec!["uploads.example.com".into()],
            methods: vec![],
            paths: vec!["/in/*".into()],
            body_contains: vec![],
            body_regex: vec![],
            graphql: vec![],
            graphql_ops: 0,
        },
    ));
    let bytes = write(&spec);
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let m = |method: &str, host: &str, path: &str| {
        rs.http_body_matters(method.as_bytes(), host.as_bytes(), path.as_bytes())
    };
    // The railway rule (POST /graphql*, graphql + regex) needs the body; a port is ignored.
    assert!(m("POST", "backboard.railway.app", "/graphql/v2"));
    assert!(m("post", "BACKBOARD.railway.app:443", "/graphql"));
    // Its method or path does not match: the body cannot change the verdict.
    assert!(!m("GET", "backboard.railway.app", "/graphql"));
    assert!(!m("POST", "backboard.railway.app", "/upload"));
    assert!(!m("POST", "other.example", "/graphql"));
    // A head-only deny rule does not need the body; a redact rule does.
    assert!(!m("DELETE", "api.example.com", "/v1/x"));
    assert!(m("PUT", "uploads.example.com", "/in/a"));
    assert!(!m("PUT", "uploads.example.com", "/out/a"));
    // Where it says false, the verdict is the same with and without a body.
    let body = br#"{"query":"mutation { volumeDelete(volumeId: \"v\") }"} delete"#;
    for (method, host, path) in [
        ("GET", "backboard.railway.app", "/graphql"),
        ("DELETE", "api.example.com", "/v1/x"),
    ] {
        let v = |body: &'static [u8]| {
            rs.evaluate(
                &Action::Http {
                    method: method.as_bytes(),
                    host: host.as_bytes(),
                    path: path.as_bytes(),
                    body,
                },
                &ctx(),
            )
        };
        assert_eq!(v(body), v(b""), "{method} {host}{path}");
    }
}
