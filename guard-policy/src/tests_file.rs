//! Policy test files (`policies/tests/*.toml`): a context and cases of ACTION → expected
//! decision (and optionally the winning rule), run against the policy compiled for that context.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use guard_proto::ruleset::{RegexCache, Ruleset};
use guard_proto::{Context, Decision};
use serde::Deserialize;
use toml::Spanned;

use crate::parse::SourceText;
use crate::{CompileContext, Policy, PolicyError, parse_action_in};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTests {
    #[serde(default)]
    context: RawContext,
    #[serde(default)]
    case: Vec<Spanned<RawCase>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawContext {
    home: Option<String>,
    workspace: Option<String>,
    cwd: Option<String>,
    agent: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    action: Spanned<String>,
    expect: Spanned<String>,
    rule: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    agent: Option<String>,
}

/// One test file.
#[derive(Clone, Debug)]
pub struct TestFile {
    pub path: PathBuf,
    pub home: Option<String>,
    pub workspace: Option<String>,
    pub cwd: Option<String>,
    pub agent: Option<String>,
    pub env: Vec<(String, String)>,
    pub cases: Vec<TestCase>,
}

#[derive(Clone, Debug)]
pub struct TestCase {
    pub action: String,
    pub expect: Decision,
    pub rule: Option<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub agent: Option<String>,
    pub line: usize,
    pub col: usize,
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub file: PathBuf,
    pub line: usize,
    pub action: String,
    pub expect: Decision,
    pub expect_rule: Option<String>,
    pub got: Decision,
    /// Id of the winning rule, None when the default decided.
    pub got_rule: Option<String>,
    pub pass: bool,
    /// The ACTION could not be parsed.
    pub error: Option<String>,
}

/// Parses one test file.
pub fn load_test_file(path: &Path) -> Result<TestFile, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.to_path_buf(),
        line: 1,
        col: 1,
        message: format!("cannot read test file: {e}"),
    })?;
    load_tests_from_str(path, &text)
}

/// Parses test cases from `text`; `name` is the path errors and results report (for embedded
/// tests, their path in the source tree).
pub fn load_tests_from_str(name: impl AsRef<Path>, text: &str) -> Result<TestFile, PolicyError> {
    let path = name.as_ref();
    let st = SourceText::new(path, text);
    let raw: RawTests = toml::from_str(text)
        .map_err(|e| st.err(e.span().unwrap_or(0..0), e.message().trim().to_string()))?;
    let mut cases = Vec::new();
    for c in raw.case {
        let c = c.into_inner();
        let expect = Decision::parse(c.expect.get_ref()).ok_or_else(|| {
            st.err(
                c.expect.span(),
                format!(
                    "unknown decision `{}` (expected allow, audit, deny, ask or redact)",
                    c.expect.get_ref()
                ),
            )
        })?;
        let (line, col) = st.line_col(c.action.span().start);
        cases.push(TestCase {
            action: c.action.into_inner(),
            expect,
            rule: c.rule,
            env: c.env.into_iter().collect(),
            cwd: c.cwd,
            agent: c.agent,
            line,
            col,
        });
    }
    Ok(TestFile {
        path: path.to_path_buf(),
        home: raw.context.home,
        workspace: raw.context.workspace,
        cwd: raw.context.cwd,
        agent: raw.context.agent,
        env: raw.context.env.into_iter().collect(),
        cases,
    })
}

/// Loads every `*.toml` in `dir`, sorted by name.
pub fn load_tests(dir: &Path) -> Result<Vec<TestFile>, PolicyError> {
    let rd = std::fs::read_dir(dir).map_err(|e| PolicyError {
        file: dir.to_path_buf(),
        line: 1,
        col: 1,
        message: format!("cannot read test directory: {e}"),
    })?;
    let mut paths: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_test_file(p)).collect()
}

/// The test files embedded with the default policy (`policies/tests/*.toml`), parsed, named
/// by their path in the source tree (`policies/tests/NAME.toml`).
pub fn embedded_tests() -> Result<Vec<TestFile>, PolicyError> {
    crate::embedded::TESTS
        .iter()
        .map(|(name, text)| load_tests_from_str(Path::new("policies/tests").join(name), text))
        .collect()
}

/// Compiles `policy` for the file's context (its `home`/`workspace` override `base`) and runs
/// every case. Fails only when the policy does not compile for that context.
pub fn run_tests(
    policy: &Policy,
    base: &CompileContext,
    file: &TestFile,
) -> Result<Vec<CaseResult>, PolicyError> {
    let mut ctx = base.clone();
    if let Some(h) = &file.home {
        ctx.home = h.clone();
    }
    if let Some(w) = &file.workspace {
        ctx.workspace = w.clone();
    }
    let bytes = policy.compile_unchecked(&ctx);
    let rs = Ruleset::load(&bytes).map_err(|e| PolicyError {
        file: file.path.clone(),
        line: 1,
        col: 1,
        message: format!("internal error: compiled ruleset does not load: {e}"),
    })?;
    let cache = RegexCache::new(&rs);
    let mut out = Vec::new();
    for c in &file.cases {
        let cwd = c
            .cwd
            .clone()
            .or_else(|| file.cwd.clone())
            .unwrap_or_else(|| {
                if ctx.workspace.is_empty() {
                    "/".into()
                } else {
                    ctx.workspace.clone()
                }
            });
        let agent = c
            .agent
            .clone()
            .or_else(|| file.agent.clone())
            .unwrap_or_default();
        let mut env = file.env.clone();
        env.extend(c.env.iter().cloned());
        let words = match crate::shell_split(&c.action) {
            Ok(w) => w,
            Err(e) => {
                out.push(failed(file, c, e));
                continue;
            }
        };
        let action = match parse_action_in(&words, &ctx.home, &cwd) {
            Ok(a) => a,
            Err(e) => {
                out.push(failed(file, c, e));
                continue;
            }
        };
        let cx = Context {
            env: &env,
            cwd: cwd.as_bytes(),
            agent: agent.as_bytes(),
        };
        let v = rs.evaluate_with(&action.as_action(), &cx, Some(&cache));
        let got_rule = v.rule.and_then(|r| rs.rule(r)).map(|r| r.id.to_string());
        let pass = v.decision == c.expect
            && c.rule
                .as_ref()
                .is_none_or(|want| got_rule.as_ref() == Some(want));
        out.push(CaseResult {
            file: file.path.clone(),
            line: c.line,
            action: c.action.clone(),
            expect: c.expect,
            expect_rule: c.rule.clone(),
            got: v.decision,
            got_rule,
            pass,
            error: None,
        });
    }
    Ok(out)
}

fn failed(file: &TestFile, c: &TestCase, e: String) -> CaseResult {
    CaseResult {
        file: file.path.clone(),
        line: c.line,
        action: c.action.clone(),
        expect: c.expect,
        expect_rule: c.rule.clone(),
        got: Decision::Allow,
        got_rule: None,
        pass: false,
        error: Some(e),
    }
}
