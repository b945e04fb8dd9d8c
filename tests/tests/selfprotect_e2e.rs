//! Guarded processes cannot modify the guard: the ruleset, libguard.so, the policy file and
//! the state directory are refused with EACCES from bash, Python and Node, under a policy that
//! allows everything.

mod approvals_support;

use approvals_support::{Session, finish};
use guard_e2e::libguard_path;

#[test]
fn the_agent_cannot_write_the_guards_files() {
    let s = Session::new("sp-files", "60s");
    let lib = libguard_path();
    let lib_before = std::fs::read(&lib).unwrap();
    let policy_before = std::fs::read(&s.policy).unwrap();
    let state = s.sb.state();
    // Appending zero bytes would not change the library even if the guard failed open.
    let script = format!(
        r#"
for f in "$GUARD_RULESET" {lib} {pol} {state}/new-file {state}/sessions/x.jsonl; do
  if : >> "$f"; then echo "bash $f OK"; else echo "bash $f EACCES"; fi
done
if rm -f "$GUARD_RULESET"; then echo bash-rm OK; else echo bash-rm EACCES; fi
if mv {state}/sessions {state}/moved; then echo bash-mv OK; else echo bash-mv EACCES; fi
python3 - "$GUARD_RULESET" {lib} {pol} {state}/py-file <<'PY'
import sys, errno, os
for f in sys.argv[1:]:
    try:
        open(f, "ab").close(); print("py", f, "OK")
    except OSError as e:
        print("py", f, errno.errorcode[e.errno])
try:
    os.rename(sys.argv[1], sys.argv[1] + ".x"); print("py-rename OK")
except OSError as e:
    print("py-rename", errno.errorcode[e.errno])
PY
if command -v node >/dev/null; then
node -e '
const fs = require("fs");
for (const f of process.argv.slice(1)) {{
  try {{ fs.appendFileSync(f, ""); console.log("node", f, "OK"); }}
  catch (e) {{ console.log("node", f, e.code); }}
}}
try {{ fs.unlinkSync(process.argv[1]); console.log("node-unlink OK"); }}
catch (e) {{ console.log("node-unlink", e.code); }}
' "$GUARD_RULESET" {lib} {pol} {state}/node-file
fi
echo ok > {ws}/allowed && echo workspace-write OK
"#,
        lib = lib.display(),
        pol = s.policy.display(),
        state = state.display(),
        ws = s.sb.workspace().display(),
    );
    let (o, e, code) = finish(s.spawn(&["bash", "-c", &script]));
    assert_eq!(code, Some(0), "{o}\n{e}");
    let results: Vec<&str> = o.lines().collect();
    assert!(results.contains(&"workspace-write OK"), "{o}");
    let refused: Vec<&&str> = results.iter().filter(|l| l.ends_with("EACCES")).collect();
    let allowed: Vec<&&str> = results
        .iter()
        .filter(|l| l.ends_with(" OK") && **l != "workspace-write OK")
        .collect();
    assert!(allowed.is_empty(), "guard files modified: {allowed:?}\n{e}");
    let node = o.contains("node ");
    assert_eq!(refused.len(), 7 + 5 + if node { 5 } else { 0 }, "{o}\n{e}");
    assert_eq!(std::fs::read(&lib).unwrap(), lib_before);
    assert_eq!(std::fs::read(&s.policy).unwrap(), policy_before);
    assert!(!state.join("new-file").exists() && state.join("sessions").exists());
    // The refusals are recorded under the built-in rule.
    let log = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| {
            e.path().extension().is_some_and(|x| x == "jsonl") && e.file_name() != "index.jsonl"
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default();
    assert!(log.contains("\"rule\":\"guard-self-protection\""), "{log}");
}
