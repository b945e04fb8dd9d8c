//! A cgo Go program under libguard. What Go sends through libc is guarded: C code linked into
//! the program, `os/user` lookups, and the cgo DNS resolver (`GODEBUG=netdns=cgo` →
//! getaddrinfo). What Go does itself — `os.Open`/`os.ReadFile`, `net.Dial`, `os/exec` — are raw
//! syscalls that no LD_PRELOAD hook sees (DESIGN.md; the kernel layer is the backstop). The
//! bypass is asserted below so that it stays written down, not hidden.

mod hooks_support;

use hooks_support::*;
use std::process::Command;

fn go_binary() -> Option<std::path::PathBuf> {
    let go = which("go").or_else(|| {
        let p = std::path::PathBuf::from("/usr/lib/go/bin/go");
        p.exists().then_some(p)
    });
    let Some(go) = go else {
        eprintln!("SKIP: `go` is not installed (scripts/setup.sh installs golang-go)");
        return None;
    };
    let out = build_dir().join(format!("goprobe-{}", std::process::id()));
    let st = Command::new(go)
        .env("CGO_ENABLED", "1")
        .env("GO111MODULE", "off")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(program_src("go/main.go"))
        .status()
        .expect("go build");
    assert!(st.success(), "go build failed");
    Some(out)
}

#[test]
fn cgo_program_is_guarded_where_it_uses_libc() {
    let Some(bin) = go_binary() else { return };
    let env = Env::new("go");
    let run_op = |op: &str, arg: &str| {
        let mut c = env.cmd(&bin);
        c.env("GODEBUG", "netdns=cgo").args([op, arg]);
        out(c)
    };
    let (o, e, _) = run_op("c-open", &env.h("secret/key"));
    assert_eq!(
        o.trim(),
        "ERR 13",
        "C code in a Go program goes through the hooks: {e}"
    );
    let (o, _, _) = run_op("c-open", &env.h("public/file"));
    assert_eq!(o.trim(), "OK");
    let (o, e, code) = run_op("user", "");
    assert_eq!(
        (o.trim(), code),
        ("OK", Some(0)),
        "os/user under the guard: {e}"
    );
    let (o, e, code) = run_op("lookup", "localhost");
    assert_eq!(
        (o.trim(), code),
        ("OK", Some(0)),
        "cgo getaddrinfo under the guard: {e}"
    );
    // Documented bypass: Go's own file I/O is a raw openat syscall.
    let (o, _, _) = run_op("go-open", &env.h("secret/key"));
    assert_eq!(
        o.trim(),
        "OK",
        "Go's os.ReadFile is not seen by LD_PRELOAD hooks"
    );
    let ev = env
        .broker
        .wait_for("event from the cgo open", |e| e.rule == "secret-files");
    assert_eq!(ev.runtime, "go", "{ev:?}");
}
