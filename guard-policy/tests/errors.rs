//! Every class of bad policy input gives a PolicyError naming file:line:col (1-based, at the
//! offending key or value) with a clear message, and nothing panics.

mod common;

use common::*;

const OK_RULE: &str = "[[rule]]\nid = \"ok\"\non = \"file\"\npaths = [\"/ok\"]\ndecision = \"deny\"\nexamples = { match = [\"/ok\"] }\n";

fn at(main: &str) -> (usize, usize, String) {
    let e = error(main, &[]);
    assert!(e.file.ends_with("main.toml"), "{e}");
    (e.line, e.col, e.message)
}

fn assert_at(main: &str, line: usize, col: usize, needle: &str) {
    let (l, c, m) = at(main);
    assert_eq!((l, c), (line, col), "message: {m}");
    assert!(m.contains(needle), "`{m}` should contain `{needle}`");
}

#[test]
fn malformed_toml() {
    assert_at("[[rule]]\nid = \"x\nnext = 1\n", 2, 8, "string");
    assert_at("[policy\nname = \"x\"\n", 1, 8, "");
}

#[test]
fn unknown_keys() {
    assert_at("[policy]\nname = \"x\"\ncolour = \"red\"\n", 3, 1, "colour");
    assert_at(
        &format!("{OK_RULE}[[rule]]\nid = \"b\"\non = \"file\"\npath = [\"/x\"]\n"),
        10,
        1,
        "path",
    );
    assert_at("[bogus]\nx = 1\n", 1, 2, "bogus");
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"], nomatch = [\"/b\"] }\n",
        6,
        30,
        "nomatch",
    );
    assert_at("[env]\nstrip = [\"A\"]\nremove = [\"B\"]\n", 3, 1, "remove");
}

#[test]
fn keys_of_another_kind() {
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ncommand = \"git\"\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        5,
        11,
        "`command` is not a key of `on = \"file\"`",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"ftp\"\ndecision = \"deny\"\n",
        3,
        6,
        "unknown rule kind",
    );
}

#[test]
fn invalid_globs_and_regexes() {
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\", \"/b/[x\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        4,
        16,
        "unclosed character class",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"exec\"\ncommand = \"x\"\nany_arg = [\"{a,{b}}\"]\ndecision = \"deny\"\nexamples = { match = [\"x a\"] }\n",
        5,
        12,
        "nested braces",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"relative/*.txt\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        4,
        10,
        "must be absolute",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"http\"\nbody_regex = ['(unclosed']\ndecision = \"deny\"\nexamples = { match = [\"POST https://x/ y\"] }\n",
        4,
        15,
        "invalid regex",
    );
    assert_at(
        "[[secret]]\nid = \"s\"\nregex = 'a{2,1}'\n",
        3,
        9,
        "invalid regex",
    );
    // Regexes are ASCII-mode byte regexes: Unicode classes are refused at compile time (the
    // library is built without the Unicode tables), never silently dropped.
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"http\"\nbody_regex = ['(?u)\\w+']\ndecision = \"deny\"\nexamples = { match = [\"POST https://x/ y\"] }\n",
        4,
        15,
        "invalid regex",
    );
    assert_at(
        "[[secret]]\nid = \"s\"\nregex = '\\p{Greek}+'\n",
        3,
        9,
        "invalid regex",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"connect\"\nips = [\"10.0.0.0/40\"]\ndecision = \"deny\"\nexamples = { match = [\"10.0.0.1:1\"] }\n",
        4,
        8,
        "prefix length",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"connect\"\nports = [80, \"90-10\"]\ndecision = \"deny\"\nexamples = { match = [\"x:80\"] }\n",
        4,
        14,
        "port",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"connect\"\nports = [70000]\ndecision = \"deny\"\nexamples = { match = [\"x:80\"] }\n",
        4,
        10,
        "out of range",
    );
}

#[test]
fn unknown_decisions_and_settings() {
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"block\"\nexamples = { match = [\"/a\"] }\n",
        5,
        12,
        "unknown decision `block`",
    );
    assert_at(
        "[policy]\ndefault = \"redact\"\n",
        2,
        11,
        "not allowed here",
    );
    assert_at("[policy]\nmode = \"strict\"\n", 2, 8, "unknown mode");
    assert_at("[policy]\nask_timeout = \"2h\"\n", 2, 15, "bad ask_timeout");
    assert_at(
        "[[secret]]\nid = \"s\"\nregex = 'x'\ndecision = \"ask\"\n",
        4,
        12,
        "redact, deny or audit",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\naccess = [\"exec\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        5,
        11,
        "unknown access",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"http\"\ngraphql = [\"x\"]\ngraphql_operation = [\"mutate\"]\ndecision = \"deny\"\nexamples = { match = [\"POST https://x/ mutation { x }\"] }\n",
        5,
        22,
        "unknown graphql operation",
    );
}

#[test]
fn redact_on_non_read_rules() {
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"redact\"\nexamples = { match = [\"/a\"] }\n",
        5,
        12,
        "reads only",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\naccess = [\"read\", \"write\"]\ndecision = \"redact\"\nexamples = { match = [\"/a\"] }\n",
        6,
        12,
        "reads only",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"exec\"\ncommand = \"x\"\ndecision = \"redact\"\nexamples = { match = [\"x\"] }\n",
        5,
        12,
        "file reads and outbound HTTP bodies",
    );
}

#[test]
fn ids_and_examples_required() {
    assert_at(
        &format!("{OK_RULE}{OK_RULE}"),
        8,
        6,
        "duplicate rule id `ok` (first defined at",
    );
    assert_at(
        "[[rule]]\nid = \"Bad Id\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        2,
        6,
        "invalid rule id",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"deny\"\n",
        1,
        1,
        "no `examples`",
    );
    assert_at(
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/a\"]\ndecision = \"deny\"\nexamples = { no_match = [\"/b\"] }\n",
        6,
        12,
        "at least one `match`",
    );
    assert_at(
        "[[secret]]\nid = \"s\"\nregex = 'x'\n[[secret]]\nid = \"s\"\nregex = 'y'\n",
        5,
        6,
        "duplicate secret id",
    );
}

#[test]
fn failing_examples_name_rule_example_and_place() {
    let p = "[[rule]]\nid = \"keys\"\non = \"file\"\npaths = [\"~/.ssh/id_*\"]\ndecision = \"deny\"\nexamples = { match = [\"~/.ssh/id_rsa\", \"~/.ssh/config\"] }\n";
    let (l, c, m) = at(p);
    assert_eq!((l, c), (6, 40), "{m}");
    assert!(
        m.contains("rule `keys`")
            && m.contains("main.toml:1")
            && m.contains("`~/.ssh/config` should match but does not"),
        "{m}"
    );
    let p = "\n\n[[rule]]\nid = \"push\"\non = \"exec\"\ncommand = \"git push\"\nany_arg = [\"-f\"]\ndecision = \"ask\"\nexamples = { match = [\"git push -f\"], no_match = [\"git -f push -f\"] }\n";
    let (l, _, m) = at(p);
    assert_eq!(l, 9);
    assert!(
        m.contains("rule `push`")
            && m.contains("main.toml:3")
            && m.contains("should not match but does"),
        "{m}"
    );
    // An example that cannot be read as an action of the rule's kind.
    let p = "[[rule]]\nid = \"c\"\non = \"connect\"\nhosts = [\"x\"]\ndecision = \"deny\"\nexamples = { match = [\"no-port\"] }\n";
    assert!(at(p).2.contains("cannot be read"));
}

#[test]
fn includes_cycles_missing_files_pack_settings() {
    let main = "[policy]\ninclude = [\"a.toml\"]\n";
    let a = "[policy]\ninclude = [\"b.toml\"]\n";
    let b = "\n[policy]\ninclude = [\"a.toml\"]\n";
    let e = error(main, &[("a.toml", a), ("b.toml", b)]);
    assert!(e.file.ends_with("b.toml"), "{e}");
    assert_eq!((e.line, e.col), (3, 12), "{e}");
    assert!(
        e.message.contains("include cycle")
            && e.message.contains("a.toml -> ")
            && e.message.contains("b.toml"),
        "{e}"
    );
    // Self-include.
    let e = error("[policy]\ninclude = [\"main.toml\"]\n", &[]);
    assert!(e.message.contains("include cycle"), "{e}");
    // Missing include.
    let e = error("[policy]\ninclude = [\"nope.toml\"]\n", &[]);
    assert_eq!((e.line, e.col), (2, 12), "{e}");
    assert!(
        e.message.contains("cannot read") && e.message.contains("nope.toml"),
        "{e}"
    );
    // Missing top-level file.
    let e = guard_policy::Policy::load(&["/nonexistent/guard/p.toml".into()])
        .err()
        .unwrap_or_else(|| panic!("loaded"));
    assert!(
        e.file.ends_with("p.toml") && e.message.contains("cannot read"),
        "{e}"
    );
    // A pack may not set top-level settings.
    let e = error(
        "[policy]\ninclude = [\"p.toml\"]\n",
        &[("p.toml", "[policy]\nname = \"p\"\ndefault = \"deny\"\n")],
    );
    assert!(e.file.ends_with("p.toml"), "{e}");
    assert_eq!((e.line, e.col), (3, 11), "{e}");
    assert!(e.message.contains("top-level"), "{e}");
    // Errors inside an included file point into that file.
    let e = error(
        "[policy]\ninclude = [\"p.toml\"]\n",
        &[(
            "p.toml",
            "[[rule]]\nid = \"x\"\non = \"file\"\npaths = [\"/x\"]\ndecision = \"nope\"\nexamples = { match = [\"/x\"] }\n",
        )],
    );
    assert!(e.file.ends_with("p.toml"));
    assert_eq!((e.line, e.col), (5, 12), "{e}");
    // Diamond includes load the shared pack once (no duplicate-id error).
    let shared = "[[rule]]\nid = \"s\"\non = \"file\"\npaths = [\"/s\"]\ndecision = \"deny\"\nexamples = { match = [\"/s\"] }\n";
    let ok = try_compile(
        "[policy]\ninclude = [\"x.toml\", \"y.toml\"]\n",
        &[
            ("x.toml", "[policy]\ninclude = [\"s.toml\"]\n"),
            ("y.toml", "[policy]\ninclude = [\"./s.toml\"]\n"),
            ("s.toml", shared),
        ],
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn display_is_file_line_col_message() {
    let e = guard_policy::PolicyError {
        file: "p.toml".into(),
        line: 3,
        col: 7,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "p.toml:3:7: boom");
}

#[test]
fn hostile_inputs_never_panic() {
    let samples = [
        "",
        "\0",
        "[[rule]]",
        "[[rule]]\nid = 1\n",
        "rule = 5",
        "[policy]\ninclude = 3\n",
        "[policy]\ninclude = [\"\"]\n",
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = []\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"!/a\"]\ndecision = \"deny\"\nexamples = { match = [\"/a\"] }\n",
        "[[rule]]\nid = \"a\"\non = \"exec\"\ncommand = \"  \"\ndecision = \"deny\"\nexamples = { match = [\"x\"] }\n",
        "[[rule]]\nid = \"a\"\non = \"exec\"\ncommand = \"x\"\ndecision = \"deny\"\nexamples = { match = [\"'unclosed\"] }\n",
        "[[rule]]\nid = \"a\"\non = \"http\"\ndecision = \"deny\"\nexamples = { match = [\"\"] }\n",
        "[[rule]]\nid = \"a\"\non = \"file\"\npaths = [\"/{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}{s,t}{u,v}\"]\ndecision = \"deny\"\nexamples = { match = [\"/acegikmoqsu\"] }\n",
        "[programs.x]\nvalue_options = 5\n",
        "\u{feff}[policy]\nname = \"bom\"\n",
    ];
    for s in samples {
        let _ = try_compile(s, &[]);
    }
}

#[test]
fn mutated_policies_never_panic() {
    let base = "[policy]\nname = \"m\"\ndefault = \"allow\"\n[[rule]]\nid = \"r\"\non = \"exec\"\ncommand = \"git push\"\nany_arg = [\"-f\", \"+*\"]\nwhen = { env = { A = \"b*\" } }\ndecision = \"ask\"\nexamples = { match = [\"A=bx git push -f\"], no_match = [\"git push -f\"] }\n[[rule]]\nid = \"f\"\non = \"file\"\npaths = [\"~/.ssh/id_*\", \"!~/.ssh/*.pub\", \"/a/{b,c}/[x-z]?/**\"]\ndecision = \"deny\"\nexamples = { match = [\"~/.ssh/id_rsa\"] }\n[[rule]]\nid = \"h\"\non = \"http\"\ngraphql = [\"x\"]\nbody_regex = ['a+']\ndecision = \"deny\"\nexamples = { match = [\"POST https://h/ aaa mutation { x }\"] }\n[[secret]]\nid = \"s\"\nregex = 'k[0-9]+'\n";
    assert!(
        try_compile(base, &[]).is_ok(),
        "{:?}",
        try_compile(base, &[]).err()
    );
    let alphabet = b"[]{}\"'=,.*?!/~\\ \nabcxyz-_019";
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..1500 {
        let mut b = base.as_bytes().to_vec();
        for _ in 0..1 + next() % 3 {
            let i = (next() as usize) % b.len();
            b[i] = alphabet[(next() as usize) % alphabet.len()];
        }
        let text = String::from_utf8_lossy(&b).into_owned();
        match try_compile(&text, &[]) {
            Ok(_) => ok += 1,
            Err(e) => {
                // Every error carries a position inside the file.
                assert!(e.line >= 1 && e.col >= 1, "{e}");
                err += 1;
            }
        }
    }
    assert!(ok > 50 && err > 50, "ok {ok} err {err}");
}
