//! Every feature of policies/LANGUAGE.md, end to end: TOML → compile → load → evaluate.

mod common;

use common::*;
use guard_proto::Decision::{self, *};

const FILES: &str = r#"
[policy]
name = "files"

[[rule]]
id = "ssh-private-keys"
on = "file"
paths = ["~/.ssh/id_*", "!~/.ssh/*.pub"]
access = ["read", "write"]
decision = "deny"
examples = { match = ["~/.ssh/id_ed25519", "write ~/.ssh/id_rsa"], no_match = ["~/.ssh/id_ed25519.pub", "delete ~/.ssh/id_rsa"] }

[[rule]]
id = "gh-hosts"
on = "file"
paths = ["~/.config/{gh,hub}/hosts.yml"]
decision = "deny"
examples = { match = ["~/.config/gh/hosts.yml", "~/.config/hub/hosts.yml"], no_match = ["~/.config/glab/hosts.yml"] }

[[rule]]
id = "app-logs"
on = "file"
paths = ["/var/log/app[0-9].log", "/srv/[!a]*.txt", "/data/?.bin"]
decision = "audit"
examples = { match = ["/var/log/app7.log", "/srv/b.txt", "/data/x.bin"], no_match = ["/var/log/appx.log", "/srv/a.txt", "/data/xy.bin"] }

[[rule]]
id = "workspace-secrets"
on = "file"
paths = ["{workspace}/secrets/**"]
decision = "ask"
examples = { match = ["{workspace}/secrets", "{workspace}/secrets/a/b"], no_match = ["{workspace}/secretsx"] }

[[rule]]
id = "pem"
on = "file"
paths = ["**/*.pem"]
decision = "ask"
examples = { match = ["/etc/ssl/x.pem"], no_match = ["/etc/ssl/x.pem.bak"] }

[[rule]]
id = "dotenv"
on = "file"
paths = ["**/.env", "**/.env.*"]
access = ["read"]
decision = "redact"
examples = { match = ["/a/b/.env", "/c/.env.local"], no_match = ["/c/.envrc"] }

[[rule]]
id = "important-delete"
on = "file"
paths = ["/important/**"]
access = ["delete"]
decision = "deny"
examples = { match = ["/important/photo.jpg"], no_match = ["read /important/photo.jpg"] }

[[rule]]
id = "deep-config"
on = "file"
paths = ["/etc/**/conf.d/*.conf"]
decision = "audit"
examples = { match = ["/etc/conf.d/a.conf", "/etc/x/y/conf.d/b.conf"], no_match = ["/etc/x/conf.d/sub/b.conf"] }
"#;

#[test]
fn file_globs_and_access() {
    let c = compile(FILES);
    assert_eq!(
        c.eval("read ~/.ssh/id_ed25519"),
        (Deny, Some("ssh-private-keys".into()))
    );
    assert_eq!(c.decision("write /home/u/.ssh/id_rsa"), Deny);
    assert_eq!(c.decision("delete /home/u/.ssh/id_rsa"), Allow);
    assert_eq!(c.decision("read ~/.ssh/id_ed25519.pub"), Allow);
    assert_eq!(c.decision("read ~/.ssh/known_hosts"), Allow);
    assert_eq!(c.decision("read ~/.config/hub/hosts.yml"), Deny);
    assert_eq!(c.decision("read /var/log/app3.log"), Audit);
    assert_eq!(c.decision("read /var/log/app33.log"), Allow);
    assert_eq!(c.decision("read /srv/a.txt"), Allow);
    assert_eq!(c.decision("read /srv/q.txt"), Audit);
    assert_eq!(c.decision("read /data/z.bin"), Audit);
    assert_eq!(c.decision("read /home/u/proj/secrets/db/pass"), Ask);
    // Relative paths resolve against cwd (the workspace here).
    assert_eq!(c.decision("read secrets/x"), Ask);
    assert_eq!(c.decision("read /home/u/proj/src/main.rs"), Allow);
    assert_eq!(c.decision("write /opt/k/server.pem"), Ask);
    assert_eq!(c.decision("read /repo/.env"), Redact);
    assert_eq!(c.decision("write /repo/.env"), Allow);
    assert_eq!(c.decision("delete /important/a/b"), Deny);
    assert_eq!(c.decision("write /important/a/b"), Allow);
    assert_eq!(c.decision("read /etc/a/conf.d/z.conf"), Audit);
    // for_each_match reports every matching rule in rule order.
    assert_eq!(
        c.matches("read /home/u/proj/secrets/k.pem"),
        ["workspace-secrets", "pem"]
    );
}

#[test]
fn unset_placeholder_matches_nothing() {
    let cx = guard_policy::CompileContext {
        home: HOME.into(),
        ..Default::default()
    };
    let c = try_compile_ctx(FILES, &[], &cx).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.decision("read /home/u/proj/secrets/x"), Allow);
    assert_eq!(c.decision("read /secrets/x"), Allow);
    assert_eq!(c.decision("read ~/.ssh/id_rsa"), Deny);
}

#[test]
fn home_with_glob_characters_is_literal() {
    let cx = guard_policy::CompileContext {
        home: "/home/[u]*".into(),
        workspace: WS.into(),
        ..Default::default()
    };
    let c = try_compile_ctx(FILES, &[], &cx).unwrap_or_else(|e| panic!("{e}"));
    let rs = c.ruleset();
    let env = guard_proto::action::NoEnv;
    let cx = guard_proto::Context {
        env: &env,
        cwd: b"/",
        agent: b"",
    };
    let eval = |p: &str| {
        rs.evaluate(
            &guard_proto::Action::File {
                path: p.as_bytes(),
                access: guard_proto::FileAccess::Read,
            },
            &cx,
        )
        .decision
    };
    assert_eq!(eval("/home/[u]*/.ssh/id_rsa"), Deny);
    assert_eq!(eval("/home/u/.ssh/id_rsa"), Allow);
    assert_eq!(eval("/home/uX/.ssh/id_rsa"), Allow);
}

const EXEC: &str = r#"
[[rule]]
id = "git-force-push"
on = "exec"
command = "git push"
any_arg = ["--force", "-f", "--force-with-lease*", "+*"]
decision = "ask"
examples = { match = ["git -C repo push -f origin main", "git -c a=b --git-dir x push origin +main"], no_match = ["git push origin main", "git commit -m 'push --force'", "git log push -f"] }

[[rule]]
id = "rm-rf-root"
on = "exec"
command = "rm"
all_args = ["-*r*", "/"]
decision = "deny"
examples = { match = ["rm -rf /", "rm -r -f /"], no_match = ["rm -rf /tmp/x", "rm /"] }

[[rule]]
id = "kubectl-delete-ns"
on = "exec"
command = "kubectl delete namespace"
decision = "deny"
examples = { match = ["kubectl -n prod --context c delete namespace x", "kubectl delete -n x namespace y"], no_match = ["kubectl get namespace", "kubectl delete pod x"] }

[[rule]]
id = "docker-rm"
on = "exec"
command = "docker rm"
decision = "ask"
examples = { match = ["docker -H tcp://h:2375 --context c -l debug rm x"], no_match = ["docker ps rm"] }

[[rule]]
id = "helm-uninstall"
on = "exec"
command = "helm uninstall"
decision = "ask"
examples = { match = ["helm -n ns --kube-context k uninstall r"], no_match = ["helm list"] }

[[rule]]
id = "tf-destroy"
on = "exec"
command = "terraform destroy"
decision = "ask"
examples = { match = ["terraform -chdir=infra destroy", "terraform destroy -auto-approve"], no_match = ["terraform plan"] }

[[rule]]
id = "aws-s3-rb"
on = "exec"
command = "aws s3 rb"
decision = "ask"
examples = { match = ["aws --profile p --region r s3 rb s3://b"], no_match = ["aws s3 ls"] }

[[rule]]
id = "gcloud-delete"
on = "exec"
command = "gcloud projects delete"
decision = "deny"
examples = { match = ["gcloud --project p --account a projects delete x"], no_match = ["gcloud projects list"] }

[[rule]]
id = "az-group-delete"
on = "exec"
command = "az group delete"
decision = "deny"
examples = { match = ["az --subscription s group delete -n g"], no_match = ["az group list"] }

[[rule]]
id = "npm-publish"
on = "exec"
command = "npm publish"
decision = "ask"
examples = { match = ["npm --prefix pkg publish"], no_match = ["npm install"] }

[[rule]]
id = "cargo-publish"
on = "exec"
command = "cargo publish"
decision = "ask"
examples = { match = ["cargo -C crate publish", "cargo +nightly publish"], no_match = ["cargo build"] }

[[rule]]
id = "psql-drop"
on = "exec"
command = "psql"
any_arg = ["*DROP *"]
decision = "ask"
examples = { match = ["psql -h db -U u -c 'DROP TABLE x'"], no_match = ["psql -h db -c 'select 1'"] }

[[rule]]
id = "mytool-nuke"
on = "exec"
command = "mytool nuke"
decision = "deny"
examples = { match = ["mytool -p prof nuke", "mytool --profile prof nuke"], no_match = ["mytool -x nuke-not"] }

[[rule]]
id = "abs-path"
on = "exec"
command = "/opt/danger/bin/tool"
decision = "deny"
examples = { match = ["/opt/danger/bin/tool run"], no_match = ["/usr/bin/tool run", "tool run"] }

[[rule]]
id = "sudo-any"
on = "exec"
command = "sudo"
decision = "audit"
examples = { match = ["sudo ls"], no_match = ["ls"] }

[[rule]]
id = "prod-terraform-destroy"
on = "exec"
command = "terraform destroy"
when = { env = { TF_WORKSPACE = "prod*" } }
decision = "deny"
examples = { match = ["TF_WORKSPACE=prod terraform destroy", "env TF_WORKSPACE=prod-eu terraform destroy"], no_match = ["terraform destroy", "TF_WORKSPACE=dev terraform destroy"] }

[programs.mytool]
value_options = ["-p", "--profile"]
"#;

#[test]
fn exec_subcommands_value_options_and_globs() {
    let c = compile(EXEC);
    assert_eq!(
        c.eval("exec -- git -C repo push -f origin main"),
        (Ask, Some("git-force-push".into()))
    );
    assert_eq!(c.decision("exec -- git push --force-with-lease=main"), Ask);
    assert_eq!(c.decision("exec -- git push origin +refs/heads/x"), Ask);
    assert_eq!(c.decision("exec -- git push origin main"), Allow);
    // A word inside another argument never matches.
    assert_eq!(c.decision("exec -- git commit -m 'push --force'"), Allow);
    assert_eq!(c.decision("exec -- git commit -m push -f"), Allow);
    // -C takes a value: "push" is the value of -C here, the subcommand is status.
    assert_eq!(c.decision("exec -- git -C push status -f"), Allow);
    assert_eq!(c.decision("exec -- rm -rf /"), Deny);
    assert_eq!(c.decision("exec -- /bin/rm -fr /"), Deny);
    assert_eq!(c.decision("exec -- rm -rf /tmp"), Allow);
    assert_eq!(
        c.decision("exec -- kubectl --namespace prod delete namespace x"),
        Deny
    );
    assert_eq!(
        c.decision("exec -- kubectl -s https://k delete namespace x"),
        Deny
    );
    assert_eq!(c.decision("exec -- kubectl delete pod x"), Allow);
    assert_eq!(c.decision("exec -- docker --host h rm x"), Ask);
    assert_eq!(c.decision("exec -- helm --namespace n uninstall x"), Ask);
    assert_eq!(c.decision("exec -- terraform -chdir=x destroy"), Ask);
    assert_eq!(
        c.decision("exec -- aws --endpoint-url http://x --output json s3 rb s3://b"),
        Ask
    );
    assert_eq!(
        c.decision("exec -- gcloud --configuration c projects delete p"),
        Deny
    );
    assert_eq!(
        c.decision("exec -- psql -p 5432 -d db -c 'DROP DATABASE x'"),
        Ask
    );
    assert_eq!(c.decision("exec -- mytool --profile x nuke"), Deny);
    assert_eq!(c.decision("exec -- /opt/danger/bin/tool"), Deny);
    assert_eq!(c.decision("exec -- /usr/local/bin/tool"), Allow);
}

#[test]
fn exec_wrappers_are_seen_through_and_strictest_wins() {
    let c = compile(EXEC);
    let cases: &[(&str, Decision)] = &[
        ("exec -- FOO=1 BAR=2 rm -rf /", Deny),
        ("exec -- env -i -u HOME -C /tmp FOO=1 rm -rf /", Deny),
        ("exec -- env -S 'rm -rf /'", Deny),
        ("exec -- env '-Srm -rf' /", Deny),
        ("exec -- nice -n 10 rm -rf /", Deny),
        ("exec -- nice -5 rm -rf /", Deny),
        ("exec -- nohup rm -rf /", Deny),
        ("exec -- timeout -s KILL -k 5 10s rm -rf /", Deny),
        ("exec -- timeout --preserve-status 1m git push -f", Ask),
        ("exec -- time -p rm -rf /", Deny),
        ("exec -- stdbuf -o L -eL rm -rf /", Deny),
        ("exec -- doas -u root rm -rf /", Deny),
        ("exec -- command rm -rf /", Deny),
        ("exec -- exec -a name rm -rf /", Deny),
        ("exec -- xargs -n 1 -P 4 rm -rf /", Deny),
        (
            "exec -- sudo -u root -g wheel -- nice -n 1 timeout 5 git -C r push -f",
            Ask,
        ),
        ("exec -- nice -n 5 ls", Allow),
        ("exec -- timeout 10s terraform plan", Allow),
    ];
    for (a, want) in cases {
        assert_eq!(c.decision(a), *want, "{a}");
    }
    // Wrapper AND payload are evaluated: sudo's own rule (audit) and the payload's (deny).
    assert_eq!(
        c.matches("exec -- sudo -u root rm -rf /"),
        ["rm-rf-root", "sudo-any"]
    );
    assert_eq!(
        c.eval("exec -- sudo -u root rm -rf /"),
        (Deny, Some("rm-rf-root".into()))
    );
    assert_eq!(c.eval("exec -- sudo ls"), (Audit, Some("sudo-any".into())));
}

#[test]
fn exec_when_env_and_assignment_overlay() {
    let c = compile(EXEC);
    assert_eq!(
        c.eval("exec -- terraform destroy"),
        (Ask, Some("tf-destroy".into()))
    );
    assert_eq!(
        c.eval("exec -- TF_WORKSPACE=prod terraform destroy"),
        (Deny, Some("prod-terraform-destroy".into()))
    );
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "prod-us")
            .decision("exec -- terraform destroy"),
        Deny
    );
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "dev")
            .decision("exec -- terraform destroy"),
        Ask
    );
    // The command line's assignment overrides the process environment.
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "prod")
            .decision("exec -- TF_WORKSPACE=dev terraform destroy"),
        Ask
    );
    // env -i clears it, env -u removes it.
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "prod")
            .decision("exec -- env -i terraform destroy"),
        Ask
    );
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "prod")
            .decision("exec -- env -u TF_WORKSPACE terraform destroy"),
        Ask
    );
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "dev")
            .decision("exec -- env TF_WORKSPACE=prod2 terraform destroy"),
        Deny
    );
    assert_eq!(
        c.with()
            .env("TF_WORKSPACE", "prod")
            .decision("exec -- sudo -u x terraform destroy"),
        Deny
    );
}

const NET: &str = r#"
[[rule]]
id = "metadata"
on = "connect"
hosts = ["metadata.google.internal", "*.internal"]
ips = ["169.254.169.254", "10.0.0.0/8", "fd00::/8"]
decision = "deny"
examples = { match = ["169.254.169.254:80", "metadata.google.internal:80", "[fd00::1]:443", "db.corp.internal:5432"], no_match = ["example.com:443", "11.0.0.1:80"] }

[[rule]]
id = "dev-ports"
on = "connect"
hosts = ["localhost"]
ips = ["127.0.0.1"]
ports = [22, "8000-8999"]
decision = "audit"
examples = { match = ["127.0.0.1:8080", "localhost:22"], no_match = ["127.0.0.1:9000"] }

[[rule]]
id = "any-smtp"
on = "connect"
ports = [25]
decision = "ask"
examples = { match = ["mail.example.com:25", "1.2.3.4:25"], no_match = ["mail.example.com:587"] }
"#;

#[test]
fn connect_hosts_ips_cidrs_ports() {
    let c = compile(NET);
    assert_eq!(c.decision("connect 169.254.169.254:80"), Deny);
    assert_eq!(c.decision("connect 10.20.30.40:443"), Deny);
    assert_eq!(c.decision("connect [fd12:3456::1]:443"), Deny);
    assert_eq!(c.decision("connect [fe80::1]:443"), Allow);
    assert_eq!(c.decision("connect METADATA.google.internal:80"), Deny);
    assert_eq!(c.decision("connect 127.0.0.1:8999"), Audit);
    assert_eq!(c.decision("connect 127.0.0.1:7999"), Allow);
    assert_eq!(c.decision("connect localhost:22"), Audit);
    assert_eq!(c.decision("connect 8.8.8.8:25"), Ask);
    assert_eq!(c.decision("connect example.com:443"), Allow);
}

const HTTP: &str = r#"
[[rule]]
id = "railway-destructive"
on = "http"
hosts = ["backboard.railway.app", "backboard.railway.com"]
methods = ["POST"]
paths = ["/graphql*"]
graphql = ["volumeDelete", "projectDelete"]
decision = "ask"
examples = { match = ["POST https://backboard.railway.app/graphql/v2 {\"query\":\"mutation { volumeDelete(volumeId: \\\"v\\\") }\"}"], no_match = ["POST https://backboard.railway.app/graphql/v2 {\"query\":\"query { volumeDelete }\"}", "GET https://backboard.railway.app/graphql/v2 {\"query\":\"mutation { volumeDelete }\"}"] }

[[rule]]
id = "gql-query-users"
on = "http"
graphql = ["users"]
graphql_operation = ["query"]
decision = "audit"
examples = { match = ["POST https://x.com/graphql { users { id } }"], no_match = ["POST https://x.com/graphql mutation { users }"] }

[[rule]]
id = "sql-drop"
on = "http"
body_contains = ["DROP TABLE"]
decision = "deny"
examples = { match = ["POST https://db.example.com/sql DROP TABLE x"], no_match = ["POST https://db.example.com/sql drop table x"] }

[[rule]]
id = "sql-delete"
on = "http"
hosts = ["*.example.com"]
body_regex = ['(?i)delete\s+from']
decision = "ask"
examples = { match = ["POST https://db.example.com/sql DeLeTe   FROM t"], no_match = ["POST https://db.example.org/sql delete from t"] }
"#;

#[test]
fn http_rules_and_graphql() {
    let c = compile(HTTP);
    let host = "https://backboard.railway.app/graphql/v2";
    let ask = |body: &str| c.decision(&format!("http POST {host} --body '{body}'"));
    assert_eq!(
        ask(r#"{"query":"mutation { volumeDelete(volumeId: \"v\") }"}"#),
        Ask
    );
    // alias, comments, whitespace, variables
    assert_eq!(
        ask(
            r##"{"query":"# volumeDelete\nmutation Del($id: String!) {\n  gone : volumeDelete(volumeId: $id)\n}","variables":{"id":"v"}}"##
        ),
        Ask
    );
    // fragments spread at top level
    assert_eq!(
        ask(r#"{"query":"mutation { ...F } fragment F on Mutation { projectDelete(id: 1) }"}"#),
        Ask
    );
    // batched
    assert_eq!(
        ask(r#"[{"query":"query { me }"},{"query":"mutation { projectDelete(id: 2) }"}]"#),
        Ask
    );
    // JSON escapes inside the query string
    assert_eq!(
        ask(r#"{"query":"mutation {\u0020volume\u0044elete }"}"#),
        Ask
    );
    // raw document
    assert_eq!(ask("mutation { volumeDelete(volumeId: 1) }"), Ask);
    // not a top-level field / not a mutation / a string mentioning it
    assert_eq!(
        ask(r#"{"query":"mutation { service { volumeDelete } }"}"#),
        Allow
    );
    assert_eq!(ask(r#"{"query":"query { volumeDelete }"}"#), Allow);
    assert_eq!(
        ask(r#"{"query":"mutation { note(text: \"volumeDelete\") }"}"#),
        Allow
    );
    assert_eq!(
        ask(r#"{"variables":{"query":"mutation { volumeDelete }"},"query":"query { me }"}"#),
        Allow
    );
    // other host, method, path
    assert_eq!(
        c.decision(r#"http POST https://example.com/graphql --body 'mutation { volumeDelete }'"#),
        Allow
    );
    assert_eq!(
        c.decision(
            r#"http GET https://backboard.railway.app/graphql --body 'mutation { volumeDelete }'"#
        ),
        Allow
    );
    assert_eq!(
        c.decision(
            r#"http POST https://backboard.railway.app/rest --body 'mutation { volumeDelete }'"#
        ),
        Allow
    );
    assert_eq!(c.decision(r#"http post https://BACKBOARD.railway.com:443/graphql --body 'mutation { volumeDelete }'"#), Ask);
    assert_eq!(
        c.decision("http POST https://x.com/graphql --body '{ users { id } }'"),
        Audit
    );
    assert_eq!(
        c.decision("http POST https://x.com/q --body 'x; DROP TABLE users'"),
        Deny
    );
    assert_eq!(
        c.decision("http POST https://a.example.com/q --body 'delete  from t'"),
        Ask
    );
    assert_eq!(
        c.decision("http POST https://a.example.org/q --body 'delete  from t'"),
        Allow
    );
}

#[test]
fn http_body_file() {
    let c = compile(HTTP);
    let d = Dir::new("body");
    let f = d.write("b.json", r#"{"query":"mutation { projectDelete(id: 1) }"}"#);
    let action = format!(
        "http POST https://backboard.railway.app/graphql --body-file {}",
        f.display()
    );
    assert_eq!(c.decision(&action), Ask);
}

const SECRETS_ENV: &str = r#"
[[rule]]
id = "noop"
on = "file"
paths = ["/noop"]
decision = "audit"
examples = { match = ["/noop"] }

[[secret]]
id = "aws-access-key-id"
regex = '(?:AKIA|ASIA)[A-Z2-7]{16}'
keywords = ["AKIA", "ASIA"]
examples = { match = ["AKIAIOSFODNN7EXAMPLE"], no_match = ["AKIA"] }

[[secret]]
id = "private-key"
regex = '-----BEGIN [A-Z ]*PRIVATE KEY-----'
keywords = ["private key"]
decision = "deny"

[env]
strip = ["AWS_SECRET_ACCESS_KEY", "*_TOKEN", "*_SECRET*"]
keep = ["GUARD_*"]
"#;

#[test]
fn secrets_and_env() {
    let c = compile(SECRETS_ENV);
    let rs = c.ruleset();
    assert_eq!(rs.secret_count(), 2);
    let s0 = rs.secret(0).unwrap_or_else(|| panic!("secret 0"));
    assert_eq!((s0.id, s0.decision), ("aws-access-key-id", Redact));
    assert_eq!(rs.secret(1).map(|s| s.decision), Some(Deny));
    let cache = guard_proto::ruleset::RegexCache::new(&rs);
    let data = b"k=AKIAIOSFODNN7EXAMPLE\n-----BEGIN RSA PRIVATE KEY-----\nAKIA";
    let mut found = Vec::new();
    rs.scan_secrets(&cache, data, &mut |i, s, e| {
        found.push((i, String::from_utf8_lossy(&data[s..e]).into_owned()))
    });
    assert_eq!(
        found,
        [
            (0, "AKIAIOSFODNN7EXAMPLE".into()),
            (1, "-----BEGIN RSA PRIVATE KEY-----".into())
        ]
    );
    let mut none = 0;
    rs.scan_secrets(&cache, b"nothing to see", &mut |_, _, _| none += 1);
    assert_eq!(none, 0);
    assert!(rs.env_strip_matches(b"AWS_SECRET_ACCESS_KEY"));
    assert!(rs.env_strip_matches(b"GITHUB_TOKEN"));
    assert!(rs.env_strip_matches(b"MY_SECRET_KEY"));
    assert!(!rs.env_strip_matches(b"GUARD_TOKEN"));
    assert!(!rs.env_strip_matches(b"PATH"));
    // A failing secret example is a compile error.
    let bad = SECRETS_ENV.replace(
        r#"no_match = ["AKIA"]"#,
        r#"no_match = ["ASIAIOSFODNN7EXAMPLE"]"#,
    );
    let e = error(&bad, &[]);
    assert!(
        e.message.contains("aws-access-key-id") && e.message.contains("should not match"),
        "{e}"
    );
}

const WHEN: &str = r#"
[[rule]]
id = "prod-cwd"
on = "file"
paths = ["/srv/**"]
when = { cwd = ["~/prod/**"] }
decision = "deny"
examples = { match = ["/srv/x"] }

[[rule]]
id = "claude-only"
on = "exec"
command = "curl"
when = { agent = ["claude*"] }
decision = "ask"
examples = { match = ["curl x"] }

[[rule]]
id = "in-prod-workspace"
on = "exec"
command = "make deploy"
when = { workspace = ["~/prod/**"] }
decision = "deny"
examples = { match = ["make deploy"] }

[[rule]]
id = "in-this-workspace"
on = "exec"
command = "make release"
when = { workspace = ["{workspace}"] }
decision = "deny"
examples = { match = ["make release"] }

[[rule]]
id = "env-and-agent"
on = "connect"
hosts = ["api.example.com"]
when = { env = { STAGE = "prod", REGION = "eu-*" }, agent = ["cursor"] }
decision = "deny"
examples = { match = ["api.example.com:443"] }
"#;

#[test]
fn when_conditions() {
    let c = compile(WHEN);
    assert_eq!(
        c.with().cwd("/home/u/prod/app").decision("read /srv/a"),
        Deny
    );
    assert_eq!(c.with().cwd("/home/u/dev").decision("read /srv/a"), Allow);
    assert_eq!(
        c.with().agent("claude-code").decision("exec -- curl x"),
        Ask
    );
    assert_eq!(c.with().agent("cursor").decision("exec -- curl x"), Allow);
    // Workspace is the compile context's (/home/u/proj): the prod rule is inactive.
    assert_eq!(c.decision("exec -- make deploy"), Allow);
    assert_eq!(c.decision("exec -- make release"), Deny);
    let e = c.with().agent("cursor");
    assert_eq!(
        e.env("STAGE", "prod")
            .env("REGION", "eu-west")
            .decision("connect api.example.com:443"),
        Deny
    );
    assert_eq!(
        c.with()
            .agent("cursor")
            .env("STAGE", "prod")
            .decision("connect api.example.com:443"),
        Allow
    );
    assert_eq!(
        c.with()
            .env("STAGE", "prod")
            .env("REGION", "eu-1")
            .decision("connect api.example.com:443"),
        Allow
    );
    let prod = guard_policy::CompileContext {
        home: HOME.into(),
        workspace: "/home/u/prod/site".into(),
        ..Default::default()
    };
    let c2 = try_compile_ctx(WHEN, &[], &prod).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c2.decision("exec -- make deploy"), Deny);
}

#[test]
fn precedence_strictest_wins_ties_to_first() {
    let mut p = String::from("[policy]\ndefault = \"deny\"\n");
    for (id, d) in [
        ("a-allow", "allow"),
        ("b-audit", "audit"),
        ("c-redact", "redact"),
        ("d-ask", "ask"),
        ("e-deny", "deny"),
        ("f-deny-too", "deny"),
        ("g-ask-too", "ask"),
    ] {
        let access = if d == "redact" {
            "access = [\"read\"]\n"
        } else {
            ""
        };
        p.push_str(&format!(
            "[[rule]]\nid = \"{id}\"\non = \"file\"\npaths = [\"/p/{id}/**\", \"/all/**\"]\n{access}decision = \"{d}\"\nexamples = {{ match = [\"read /p/{id}/x\"] }}\n"
        ));
    }
    let c = compile(&p);
    assert_eq!(c.eval("read /all/x"), (Deny, Some("e-deny".into())));
    assert_eq!(
        c.matches("read /all/x"),
        [
            "a-allow",
            "b-audit",
            "c-redact",
            "d-ask",
            "e-deny",
            "f-deny-too",
            "g-ask-too"
        ]
    );
    assert_eq!(c.eval("write /all/x"), (Deny, Some("e-deny".into())));
    assert_eq!(
        c.eval("read /p/c-redact/x"),
        (Redact, Some("c-redact".into()))
    );
    assert_eq!(c.eval("read /p/b-audit/x"), (Audit, Some("b-audit".into())));
    // An allow rule wins over the default deny.
    assert_eq!(c.eval("read /p/a-allow/x"), (Allow, Some("a-allow".into())));
    assert_eq!(c.eval("read /elsewhere"), (Deny, None));
    // Ask beats redact and audit.
    let mut q = p.clone();
    q = q.replace("\"/all/**\"", "\"/none/**\"");
    q.push_str("[[rule]]\nid = \"z-mix\"\non = \"file\"\npaths = [\"/p/c-redact/**\"]\ndecision = \"ask\"\nexamples = { match = [\"/p/c-redact/x\"] }\n");
    let c = compile(&q);
    assert_eq!(c.eval("read /p/c-redact/x"), (Ask, Some("z-mix".into())));
}

#[test]
fn policy_settings_includes_and_tags() {
    let main = r#"
[policy]
name = "top"
default = "audit"
mode = "monitor"
ask_timeout = "90s"
unguardable_exec = "deny"
include = ["packs/a.toml", "packs/b.toml"]

[[rule]]
id = "top-rule"
on = "file"
paths = ["/top"]
decision = "deny"
tags = ["OWASP-LLM06", "ATLAS-AML.T0055"]
reason = "because"
examples = { match = ["/top"] }
"#;
    let a = r#"
[policy]
name = "pack-a"
include = ["b.toml"]

[[rule]]
id = "a-rule"
on = "file"
paths = ["/a"]
decision = "ask"
examples = { match = ["/a"] }
"#;
    let b = r#"
[[rule]]
id = "b-rule"
on = "exec"
command = "bbb"
decision = "deny"
examples = { match = ["bbb"] }
"#;
    let c = try_compile(main, &[("packs/a.toml", a), ("packs/b.toml", b)])
        .unwrap_or_else(|e| panic!("{e}"));
    let rs = c.ruleset();
    assert_eq!(rs.policy_name(), "top");
    assert_eq!(rs.default_decision(), Audit);
    assert!(rs.monitor_mode());
    assert_eq!(rs.ask_timeout_ms(), 90_000);
    assert_eq!(rs.unguardable_exec(), Deny);
    assert_eq!(rs.rule_count(), 3);
    let counts = rs.rule_counts();
    assert_eq!(
        (counts.file, counts.exec, counts.connect, counts.http),
        (2, 1, 0, 0)
    );
    let top = rs
        .rule(rs.rule_index("top-rule").unwrap_or(99))
        .unwrap_or_else(|| panic!("top-rule"));
    assert_eq!(top.tags, "OWASP-LLM06,ATLAS-AML.T0055");
    assert_eq!(top.reason, "because");
    assert!(top.source.ends_with("main.toml"));
    assert_eq!(top.line, 10);
    let b_rule = rs
        .rule(rs.rule_index("b-rule").unwrap_or(99))
        .unwrap_or_else(|| panic!("b-rule"));
    assert!(b_rule.source.ends_with("packs/b.toml"), "{}", b_rule.source);
    assert_eq!(c.decision("read /nothing"), Audit);
    assert_eq!(c.decision("exec -- bbb"), Deny);
    assert_eq!(c.policy.files().len(), 3);
    // Durations.
    for (t, ms) in [("250ms", 250), ("2m", 120_000)] {
        let p = format!("[policy]\nask_timeout = \"{t}\"\n");
        assert_eq!(compile(&p).ruleset().ask_timeout_ms(), ms);
    }
    // Defaults when [policy] is absent.
    let rs2 = compile("").ruleset().as_bytes().to_vec();
    let rs2 = guard_proto::Ruleset::load(&rs2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            rs2.default_decision(),
            rs2.monitor_mode(),
            rs2.ask_timeout_ms(),
            rs2.unguardable_exec()
        ),
        (Allow, false, 120_000, Audit)
    );
}

#[test]
fn several_top_level_files_merge_first_settings_win() {
    let d = Dir::new("multi");
    let a = d.write("a.toml", "[policy]\nname = \"first\"\ndefault = \"ask\"\n[[rule]]\nid = \"r1\"\non = \"file\"\npaths = [\"/r1\"]\ndecision = \"deny\"\nexamples = { match = [\"/r1\"] }\n");
    let b = d.write("b.toml", "[policy]\nname = \"second\"\ndefault = \"allow\"\n[[rule]]\nid = \"r2\"\non = \"file\"\npaths = [\"/r2\"]\ndecision = \"audit\"\nexamples = { match = [\"/r2\"] }\n");
    let p = guard_policy::Policy::load(&[a, b]).unwrap_or_else(|e| panic!("{e}"));
    let bytes = p.compile(&ctx()).unwrap_or_else(|e| panic!("{e}"));
    let rs = guard_proto::Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rs.policy_name(), "first");
    assert_eq!(rs.default_decision(), Ask);
    assert_eq!(rs.rule_count(), 2);
}

#[test]
fn examples_are_run_and_reported() {
    let c = compile(EXEC);
    let rs = c.ruleset();
    let results = guard_policy::run_examples(&c.policy, &rs, &ctx());
    assert!(results.len() > 30);
    assert!(
        results.iter().all(|r| r.pass),
        "{:?}",
        results.iter().find(|r| !r.pass)
    );
    let r = results
        .iter()
        .find(|r| r.example == "git commit -m 'push --force'")
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(
        (r.rule.as_str(), r.expect_match, r.matched, r.kind),
        ("git-force-push", false, false, "exec")
    );
    // compile_unchecked + run_examples reports failures instead of refusing.
    let bad = EXEC.replace(
        r#"match = ["rm -rf /", "rm -r -f /"]"#,
        r#"match = ["rm -rf /", "rm -f /"]"#,
    );
    let d = Dir::new("ex");
    let p =
        guard_policy::Policy::load(&[d.write("p.toml", &bad)]).unwrap_or_else(|e| panic!("{e}"));
    let bytes = p.compile_unchecked(&ctx());
    let rs = guard_proto::Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    let failed: Vec<_> = p
        .run_examples(&rs, &ctx())
        .into_iter()
        .filter(|r| !r.pass)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].rule.as_str(), failed[0].example.as_str()),
        ("rm-rf-root", "rm -f /")
    );
}

#[test]
fn policy_test_files_run() {
    let d = Dir::new("tests");
    let policy = d.write("p.toml", FILES);
    let tests = d.write(
        "tests/basic.toml",
        r#"
[context]
home = "/home/agent"
workspace = "/home/agent/project"

[[case]]
action = "read ~/.ssh/id_ed25519"
expect = "deny"
rule = "ssh-private-keys"

[[case]]
action = "read /home/agent/project/secrets/x"
expect = "ask"

[[case]]
action = "read ~/.ssh/id_ed25519.pub"
expect = "allow"

[[case]]
action = "read ~/.ssh/id_rsa"
expect = "deny"
rule = "pem"

[[case]]
action = "read secrets/y"
expect = "ask"
cwd = "/home/agent/project"
"#,
    );
    let p = guard_policy::Policy::load(&[policy]).unwrap_or_else(|e| panic!("{e}"));
    let files =
        guard_policy::load_tests(tests.parent().unwrap_or(&d.0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 1);
    let res = guard_policy::run_tests(&p, &guard_policy::CompileContext::default(), &files[0])
        .unwrap_or_else(|e| panic!("{e}"));
    let pass: Vec<bool> = res.iter().map(|r| r.pass).collect();
    assert_eq!(pass, [true, true, true, false, true]);
    assert_eq!(res[3].got_rule.as_deref(), Some("ssh-private-keys"));
    assert_eq!(res[3].line, 20);
    // A bad decision in a test file is an error with its position.
    d.write(
        "tests/bad.toml",
        "[[case]]\naction = \"read /x\"\nexpect = \"block\"\n",
    );
    let e = guard_policy::load_tests(tests.parent().unwrap_or(&d.0))
        .err()
        .unwrap_or_else(|| panic!("no error"));
    assert_eq!((e.line, e.col), (3, 10), "{e}");
}

#[test]
fn embedded_default_policy_compiles_and_passes_its_examples() {
    let p = guard_policy::Policy::default_policy().unwrap_or_else(|e| panic!("{e}"));
    let bytes = p.compile(&ctx()).unwrap_or_else(|e| panic!("{e}"));
    let rs = guard_proto::Ruleset::load(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert!(rs.rule_count() > 0);
    assert!(!guard_policy::Policy::embedded_files().is_empty());
}
