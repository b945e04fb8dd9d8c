//! The policy language and its compiler.
//!
//! Owns: parsing the human-written TOML policies (with includes of packs), validating them with
//! errors that name `file:line:col`, substituting `~` and `{workspace}`, checking every rule's
//! examples, and writing the binary ruleset that `guard_proto::Ruleset` evaluates. The default
//! policy under `policies/` is embedded here.
//!
//! Must never: be linked into libguard (it allocates freely and pulls a TOML parser), or accept
//! a policy whose examples fail.

mod action;
mod compile;
mod parse;
mod tests_file;

use std::path::{Path, PathBuf};

use guard_proto::Decision;
use guard_proto::ruleset::Ruleset;
use guard_proto::ruleset::net::IpNet;

pub use action::{OwnedAction, absolute_path, parse_action, parse_action_in, shell_split};
pub use tests_file::{
    CaseResult, TestCase, TestFile, embedded_tests, load_test_file, load_tests,
    load_tests_from_str, run_tests,
};

/// `[secrets] scope` when no policy file sets it: the workspace and the home directory.
pub const DEFAULT_SECRET_SCOPE: &[&str] = &["{workspace}/**", "~/**"];

/// `[secrets] exclude` when no policy file sets it: trees of vendored or generated files that
/// are large, read often and hold no credentials of the user's, and binary formats. The same
/// trees as guard-secrets' built-in scope (`guard-secrets/src/scope.rs`), which libguard uses
/// only without a ruleset.
pub const DEFAULT_SECRET_EXCLUDE: &[&str] = &[
    "**/node_modules/**",
    "**/target/**",
    "**/site-packages/**",
    "**/dist-packages/**",
    "**/.git/objects/**",
    "**/__pycache__/**",
    "**/{.venv,venv,.tox,.nox,.mypy_cache,.pytest_cache}/**",
    "~/.rustup/**",
    "~/.cargo/registry/**",
    "~/.cargo/git/**",
    "~/.npm/_cacache/**",
    "~/.m2/repository/**",
    "~/.gradle/caches/**",
    "~/go/pkg/**",
    "~/.nvm/versions/**",
    "~/.pyenv/versions/**",
    "**/*.{png,jpg,jpeg,gif,webp,ico,pdf,zip,gz,xz,zst,tar,jar,class,so,o,a,rlib,rmeta,pyc,wasm}",
];

/// Paths substituted for the placeholders of `policies/LANGUAGE.md`.
#[derive(Clone, Debug, Default)]
pub struct CompileContext {
    pub home: String,
    pub workspace: String,
    pub state_dir: String,
    pub policy_dir: String,
    pub guard_lib: String,
    pub guard_exe: String,
}

impl CompileContext {
    /// The fixed context rule examples are checked in (`policy check`, `policy test`,
    /// `policy compile`), so whether a policy's examples hold never depends on the machine,
    /// HOME or launch directory. Examples should therefore use `~` and `{workspace}` rather
    /// than absolute paths under a particular home.
    pub fn canonical() -> CompileContext {
        CompileContext {
            home: "/home/agent".into(),
            workspace: "/home/agent/project".into(),
            state_dir: "/home/agent/.local/state/guard".into(),
            policy_dir: "/home/agent/.config/guard".into(),
            guard_lib: "/opt/guard/lib/libguard.so".into(),
            guard_exe: "/opt/guard/bin/guardctl".into(),
        }
    }
}

/// The value of `{policy_dir}`: for the embedded default policy (`policy_files` empty) the
/// user's policy config directory, `$XDG_CONFIG_HOME/guard` or `HOME/.config/guard`; otherwise
/// the directory of the first policy file, absolute (symlinks resolved when it exists). The
/// launcher and the policy tools both fill `CompileContext::policy_dir` with this.
pub fn policy_dir_for(policy_files: &[PathBuf], home: &str) -> String {
    let dir = match policy_files.first() {
        None => match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d).join("guard"),
            None => Path::new(if home.is_empty() { "/" } else { home }).join(".config/guard"),
        },
        Some(f) => {
            let parent = match f.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            parent
                .canonicalize()
                .or_else(|_| std::path::absolute(&parent))
                .unwrap_or(parent)
        }
    };
    dir.to_string_lossy().into_owned()
}

/// A policy error that names where it is: `file:line:col: message`.
#[derive(Clone, Debug)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for PolicyError {}

/// A value with the place it was written.
#[derive(Clone, Debug)]
pub(crate) struct Loc<T> {
    pub v: T,
    #[allow(dead_code)]
    pub file: PathBuf,
    #[allow(dead_code)]
    pub line: usize,
    #[allow(dead_code)]
    pub col: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Example {
    pub text: String,
    pub expect_match: bool,
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct WhenDef {
    pub env: Vec<(String, String)>,
    pub cwd: Vec<String>,
    pub workspace: Vec<String>,
    pub agent: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    File {
        paths: Vec<Loc<String>>,
        access: u8,
    },
    Exec {
        command: Vec<String>,
        any_arg: Vec<String>,
        all_args: Vec<String>,
    },
    Connect {
        hosts: Vec<String>,
        nets: Vec<IpNet>,
        ports: Vec<(u16, u16)>,
    },
    Http {
        hosts: Vec<String>,
        methods: Vec<String>,
        paths: Vec<String>,
        body_contains: Vec<String>,
        body_regex: Vec<String>,
        graphql: Vec<String>,
        graphql_ops: u8,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::File { .. } => "file",
            Kind::Exec { .. } => "exec",
            Kind::Connect { .. } => "connect",
            Kind::Http { .. } => "http",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RuleDef {
    pub id: String,
    pub file: PathBuf,
    pub line: usize,
    #[allow(dead_code)]
    pub col: usize,
    pub decision: Decision,
    pub reason: String,
    pub tags: Vec<String>,
    pub when: WhenDef,
    pub kind: Kind,
    pub examples: Vec<Example>,
}

#[derive(Clone, Debug)]
pub(crate) struct SecretDef {
    pub id: String,
    pub regex: String,
    pub keywords: Vec<String>,
    pub decision: Decision,
    pub entropy: Option<f64>,
    pub file: PathBuf,
    pub line: usize,
    #[allow(dead_code)]
    pub col: usize,
    pub examples: Vec<Example>,
}

/// The outcome of one rule (or secret) example.
#[derive(Clone, Debug)]
pub struct ExampleResult {
    /// Rule or secret id.
    pub rule: String,
    /// `file`, `exec`, `connect`, `http` or `secret`.
    pub kind: &'static str,
    pub example: String,
    /// true for a `match` example, false for `no_match`.
    pub expect_match: bool,
    /// Whether the rule matched.
    pub matched: bool,
    pub pass: bool,
    /// The example could not be read as an action of the rule's kind.
    pub error: Option<String>,
    /// Where the example is written.
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Line of the rule's `[[rule]]` / `[[secret]]` header.
    pub rule_line: usize,
}

/// A parsed, validated policy (all includes resolved), not yet specialised to a context.
#[derive(Clone, Debug)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) default: Decision,
    pub(crate) monitor: bool,
    pub(crate) ask_timeout_ms: u32,
    pub(crate) unguardable_exec: Decision,
    pub(crate) rules: Vec<RuleDef>,
    pub(crate) secrets: Vec<SecretDef>,
    pub(crate) env_strip: Vec<String>,
    pub(crate) env_keep: Vec<String>,
    pub(crate) value_options: Vec<(String, Vec<String>)>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) top_dir: Option<PathBuf>,
    /// `[secrets] scope` / `exclude` (None: the defaults).
    pub(crate) secret_scope: Option<Vec<String>>,
    pub(crate) secret_exclude: Option<Vec<String>>,
    /// The embedded default policy: `{policy_dir}` never falls back to its source directory.
    pub(crate) embedded: bool,
}

/// The policy files embedded at build time: (path relative to `policies/`, content).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_policies.rs"));
}

impl Policy {
    pub(crate) fn empty() -> Policy {
        Policy {
            name: String::new(),
            default: Decision::Allow,
            monitor: false,
            ask_timeout_ms: 120_000,
            unguardable_exec: Decision::Audit,
            rules: Vec::new(),
            secrets: Vec::new(),
            env_strip: Vec::new(),
            env_keep: Vec::new(),
            value_options: Vec::new(),
            files: Vec::new(),
            top_dir: None,
            secret_scope: None,
            secret_exclude: None,
            embedded: false,
        }
    }

    /// Loads top-level policy files (several `--policy` files are merged, first one's
    /// `[policy]` settings win) with their includes.
    pub fn load(files: &[PathBuf]) -> Result<Policy, PolicyError> {
        Self::load_from(&parse::FsSource, files)
    }

    fn load_from(
        src: &dyn parse::SourceProvider,
        files: &[PathBuf],
    ) -> Result<Policy, PolicyError> {
        if files.is_empty() {
            return Err(PolicyError {
                file: PathBuf::new(),
                line: 1,
                col: 1,
                message: "no policy file given".into(),
            });
        }
        let mut loader = parse::Loader::new(src);
        for f in files {
            loader.load_file(f, true, None)?;
        }
        let mut p = loader.policy;
        if p.name.is_empty() {
            p.name = files[0]
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "policy".into());
        }
        Ok(p)
    }

    /// The default policy embedded in this crate (from `policies/default.toml` and its packs).
    pub fn default_policy() -> Result<Policy, PolicyError> {
        let map = embedded::FILES
            .iter()
            .map(|(p, c)| (parse::normalize(&Path::new("policies").join(p)), *c))
            .collect();
        let mut p = Self::load_from(
            &parse::MapSource(map),
            &[PathBuf::from("policies/default.toml")],
        )?;
        p.embedded = true;
        Ok(p)
    }

    /// The embedded policy files as (path relative to `policies/`, content), for tools that
    /// want to show or install them.
    pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
        embedded::FILES
    }

    /// Compiles to ruleset bytes for `ctx` (loadable by `guard_proto::Ruleset::load`) after
    /// checking every rule's and secret's examples in [`CompileContext::canonical`]; fails,
    /// naming the rule and the example, when one does not hold.
    pub fn compile(&self, ctx: &CompileContext) -> Result<Vec<u8>, PolicyError> {
        self.check_examples()?;
        compile::compile_for(self, ctx)
    }

    /// Checks every example in the canonical context; the first failure is the error.
    pub fn check_examples(&self) -> Result<(), PolicyError> {
        compile::check_examples(self)
    }

    /// Compiles for `ctx` without checking examples: what `guardctl run` uses for the real
    /// launch context (examples were checked canonically by the policy tools, and the
    /// embedded policy's by this crate's tests), so an unusual HOME or workspace can never stop
    /// a launch. Errors are internal only (a ruleset its own reader refuses).
    pub fn compile_for_launch(&self, ctx: &CompileContext) -> Result<Vec<u8>, PolicyError> {
        compile::compile_for(self, ctx)
    }

    /// Compiles without checking examples (for `policy test`, which reports them instead).
    pub fn compile_unchecked(&self, ctx: &CompileContext) -> Vec<u8> {
        compile::write_with_image(&compile::build_spec(self, ctx))
    }

    /// Runs every example of this policy against `ruleset` (compiled from it with `ctx`).
    pub fn run_examples(&self, ruleset: &Ruleset<'_>, ctx: &CompileContext) -> Vec<ExampleResult> {
        compile::run_examples(self, ruleset, ctx)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Overrides the policy's `mode` (`guardctl run --mode`): `true` = monitor, `false` = enforce.
    pub fn set_monitor(&mut self, monitor: bool) {
        self.monitor = monitor;
    }

    /// Every file read (top-level files and includes), in load order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }
}

/// Runs all rule examples of `policy` against `ruleset` (see [`ExampleResult`]).
pub fn run_examples(
    policy: &Policy,
    ruleset: &Ruleset<'_>,
    ctx: &CompileContext,
) -> Vec<ExampleResult> {
    compile::run_examples(policy, ruleset, ctx)
}
