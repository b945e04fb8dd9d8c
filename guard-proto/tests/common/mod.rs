//! A representative ruleset built directly with the writer (guard-proto cannot use the policy
//! compiler, which depends on it).
#![allow(dead_code)]

use guard_proto::Decision;
use guard_proto::ruleset::net::IpNet;
use guard_proto::ruleset::writer::{RuleBody, RuleSpec, RulesetSpec, SecretSpec, WhenSpec, write};

pub fn rule(id: &str, decision: Decision, body: RuleBody) -> RuleSpec {
    RuleSpec {
        id: id.into(),
        reason: format!("reason of {id}"),
        tags: vec!["T1".into(), "T2".into()],
        source: "test.toml".into(),
        line: 1,
        decision,
        inactive: false,
        when: WhenSpec::default(),
        body,
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

pub fn file(include: &[&str], exclude: &[&str], access: u8) -> RuleBody {
    RuleBody::File {
        include: s(include),
        exclude: s(exclude),
        access,
    }
}

pub fn exec(program: &str, words: &[&str], any_arg: &[&str], all_args: &[&str]) -> RuleBody {
    RuleBody::Exec {
        program: program.into(),
        words: s(words),
        any_arg: s(any_arg),
        all_args: all_args.iter().map(|a| vec![a.to_string()]).collect(),
    }
}

pub fn sample_spec() -> RulesetSpec {
    let mut rules = vec![
        rule(
            "ssh-keys",
            Decision::Deny,
            file(&["/home/u/.ssh/id_*"], &["/home/u/.ssh/*.pub"], 3),
        ),
        rule(
            "env-files",
            Decision::Redact,
            file(&["**/.env", "**/.env.*"], &[], 1),
        ),
        rule("pem", Decision::Ask, file(&["**/*.pem"], &[], 7)),
        rule("aws", Decision::Deny, file(&["/home/u/.aws/**"], &[], 7)),
        rule(
            "etc-passwd",
            Decision::Audit,
            file(&["/etc/passwd"], &[], 7),
        ),
        rule(
            "tmp-star",
            Decision::Audit,
            file(&["/tmp/*/cache/**/*.db"], &[], 7),
        ),
        rule(
            "git-force-push",
            Decision::Ask,
            exec("git", &["push"], &["--force", "-f", "+*"], &[]),
        ),
        rule(
            "rm-rf-root",
            Decision::Deny,
            exec("rm", &[], &[], &["-*r*", "/"]),
        ),
        rule(
            "kubectl-delete",
            Decision::Ask,
            exec("kubectl", &["delete"], &[], &[]),
        ),
        rule(
            "abs-tool",
            Decision::Deny,
            exec("/opt/bin/tool", &[], &[], &[]),
        ),
        rule(
            "metadata",
            Decision::Deny,
            RuleBody::Connect {
                hosts: s(&["metadata.google.internal", "*.internal"]),
                nets: vec![
                    IpNet::parse("169.254.169.254").unwrap_or_else(|e| panic!("{e}")),
                    IpNet::parse("fd00::/8").unwrap_or_else(|e| panic!("{e}")),
                ],
                ports: vec![(80, 80), (8000, 8999)],
            },
        ),
        rule(
            "railway",
            Decision::Ask,
            RuleBody::Http {
                hosts: s(&["backboard.railway.app"]),
                methods: s(&["POST"]),
                paths: s(&["/graphql*"]),
                body_contains: vec![],
                body_regex: s(&["(?i)delete"]),
                graphql: s(&["volumeDelete"]),
                graphql_ops: 2,
            },
        ),
    ];
    let mut tf = rule(
        "prod-tf",
        Decision::Deny,
        exec("terraform", &["destroy"], &[], &[]),
    );
    tf.when.env.push(("TF_WORKSPACE".into(), "prod*".into()));
    rules.push(tf);
    RulesetSpec {
        name: "sample".into(),
        default: Decision::Allow,
        monitor: false,
        ask_timeout_ms: 120_000,
        unguardable_exec: Decision::Audit,
        rules,
        secrets: vec![SecretSpec {
            id: "aws-key".into(),
            regex: "(?:AKIA|ASIA)[A-Z2-7]{16}".into(),
            keywords: s(&["AKIA", "ASIA"]),
            decision: Decision::Redact,
            source: "test.toml".into(),
            line: 9,
            min_entropy: Some(3.0),
        }],
        env_strip: s(&["*_TOKEN", "AWS_SECRET_ACCESS_KEY"]),
        env_keep: s(&["GUARD_*"]),
        value_options: vec![("mytool".into(), s(&["-p"]))],
        secret_scope: s(&["/home/u/**"]),
        secret_exclude: s(&["**/node_modules/**"]),
    }
}

pub fn sample_bytes() -> Vec<u8> {
    write(&sample_spec())
}
