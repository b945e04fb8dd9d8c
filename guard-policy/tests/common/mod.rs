//! Helpers: write policy text to a private temp directory, compile it for a fixed HOME and
//! workspace, and evaluate ACTIONs against the result.
#![allow(dead_code)]

use std::path::PathBuf;

use guard_policy::{CompileContext, Policy, PolicyError, parse_action_in};
use guard_proto::ruleset::RegexCache;
use guard_proto::{Context, Decision, Ruleset};

pub const HOME: &str = "/home/u";
pub const WS: &str = "/home/u/proj";

pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "guard-policy-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
        Dir(p)
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn ctx() -> CompileContext {
    CompileContext {
        home: HOME.into(),
        workspace: WS.into(),
        ..Default::default()
    }
}

pub struct Compiled {
    pub policy: Policy,
    pub bytes: Vec<u8>,
    _dir: Dir,
}

/// Loads and compiles `main` (plus other files in the same directory).
pub fn try_compile(main: &str, others: &[(&str, &str)]) -> Result<Compiled, PolicyError> {
    try_compile_ctx(main, others, &ctx())
}

pub fn try_compile_ctx(
    main: &str,
    others: &[(&str, &str)],
    cx: &CompileContext,
) -> Result<Compiled, PolicyError> {
    let dir = Dir::new("c");
    let path = dir.write("main.toml", main);
    for (n, t) in others {
        dir.write(n, t);
    }
    let policy = Policy::load(&[path])?;
    let bytes = policy.compile(cx)?;
    Ok(Compiled {
        policy,
        bytes,
        _dir: dir,
    })
}

pub fn compile(main: &str) -> Compiled {
    try_compile(main, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// Compile error expected: returns it.
pub fn error(main: &str, others: &[(&str, &str)]) -> PolicyError {
    match try_compile(main, others) {
        Ok(_) => panic!("policy compiled but should not have:\n{main}"),
        Err(e) => e,
    }
}

pub struct Eval<'a> {
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub agent: String,
    pub c: &'a Compiled,
}

impl Compiled {
    pub fn ruleset(&self) -> Ruleset<'_> {
        Ruleset::load(&self.bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn with(&self) -> Eval<'_> {
        Eval {
            env: Vec::new(),
            cwd: WS.into(),
            agent: String::new(),
            c: self,
        }
    }

    /// Decision and winning rule id for a shell-quoted ACTION.
    pub fn eval(&self, action: &str) -> (Decision, Option<String>) {
        self.with().eval(action)
    }

    pub fn decision(&self, action: &str) -> Decision {
        self.eval(action).0
    }

    /// Every matching rule id, in rule order.
    pub fn matches(&self, action: &str) -> Vec<String> {
        self.with().matches(action)
    }
}

impl Eval<'_> {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn cwd(mut self, c: &str) -> Self {
        self.cwd = c.into();
        self
    }
    pub fn agent(mut self, a: &str) -> Self {
        self.agent = a.into();
        self
    }
    fn action(&self, action: &str) -> guard_policy::OwnedAction {
        let words = guard_policy::shell_split(action).unwrap_or_else(|e| panic!("{e}"));
        parse_action_in(&words, HOME, &self.cwd).unwrap_or_else(|e| panic!("{action}: {e}"))
    }
    pub fn eval(&self, action: &str) -> (Decision, Option<String>) {
        let rs = self.c.ruleset();
        let cache = RegexCache::new(&rs);
        let a = self.action(action);
        let cx = Context {
            env: &self.env,
            cwd: self.cwd.as_bytes(),
            agent: self.agent.as_bytes(),
        };
        let v = rs.evaluate_with(&a.as_action(), &cx, Some(&cache));
        (
            v.decision,
            v.rule.and_then(|r| rs.rule(r)).map(|r| r.id.to_string()),
        )
    }
    pub fn decision(&self, action: &str) -> Decision {
        self.eval(action).0
    }
    pub fn matches(&self, action: &str) -> Vec<String> {
        let rs = self.c.ruleset();
        let cache = RegexCache::new(&rs);
        let a = self.action(action);
        let cx = Context {
            env: &self.env,
            cwd: self.cwd.as_bytes(),
            agent: self.agent.as_bytes(),
        };
        let mut out = Vec::new();
        rs.for_each_match_with(&a.as_action(), &cx, Some(&cache), &mut |r| {
            out.push(rs.rule(r).map(|r| r.id.to_string()).unwrap_or_default())
        });
        out
    }
}
