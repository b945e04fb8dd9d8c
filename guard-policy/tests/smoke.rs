use guard_policy::{CompileContext, Policy, parse_action_in};
use guard_proto::action::NoEnv;
use guard_proto::{Context, Decision, Ruleset};

#[test]
fn default_policy_end_to_end() {
    let p = Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
    let ctx = CompileContext {
        home: "/home/a".into(),
        workspace: "/home/a/proj".into(),
        ..Default::default()
    };
    let bytes = p.compile(&ctx).unwrap_or_else(|e| panic!("{e}"));
    let rs = Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let env = NoEnv;
    let c = Context {
        env: &env,
        cwd: b"/home/a/proj",
        agent: b"",
    };
    let eval = |words: &[&str]| {
        let w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let a = parse_action_in(&w, "/home/a", "/home/a/proj").unwrap_or_else(|e| panic!("{e}"));
        let v = rs.evaluate(&a.as_action(), &c);
        (
            v.decision,
            v.rule.and_then(|r| rs.rule(r)).map(|r| r.id.to_string()),
        )
    };
    assert_eq!(eval(&["read", "~/.ssh/id_rsa"]).0, Decision::Deny);
    assert_eq!(eval(&["read", "~/.ssh/id_rsa.pub"]).0, Decision::Allow);
    assert_eq!(
        eval(&[
            "exec", "--", "sudo", "-u", "x", "git", "-C", "r", "push", "--force"
        ])
        .0,
        Decision::Ask
    );
    assert_eq!(eval(&["connect", "169.254.169.254:80"]).0, Decision::Deny);
    assert!(rs.env_strip_matches(b"GITHUB_TOKEN"));
    assert!(!rs.env_strip_matches(b"GUARD_TOKEN"));
}
