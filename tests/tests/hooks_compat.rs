//! Helper for `tests/compat/cpython_regrtest.sh` (not a test of its own): writes a compiled
//! allow-all ruleset to `$GUARD_COMPAT_RULESET`. Ignored unless asked for by name.

#[test]
#[ignore = "helper for tests/compat/cpython_regrtest.sh"]
fn write_allow_all_ruleset() {
    let out = std::env::var("GUARD_COMPAT_RULESET").expect("GUARD_COMPAT_RULESET");
    let dir = std::path::Path::new(&out)
        .parent()
        .expect("parent")
        .to_path_buf();
    let policy = dir.join("allow-all.toml");
    std::fs::write(
        &policy,
        "[policy]\nname = \"allow-all\"\ndefault = \"allow\"\n",
    )
    .unwrap();
    let pol = guard_policy::Policy::load(&[policy]).unwrap_or_else(|e| panic!("{e}"));
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let ctx = guard_policy::CompileContext {
        home,
        workspace: std::env::current_dir()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        state_dir: dir.to_string_lossy().into_owned(),
        policy_dir: dir.to_string_lossy().into_owned(),
        guard_lib: String::new(),
        guard_exe: String::new(),
    };
    let bytes = pol.compile(&ctx).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&out, bytes).unwrap();
}
