//! The kernel layer (docs/kernel-layer.md): seccomp user notification for the exec and connect
//! calls the preload cannot see. Real programs under `guardctl run` with its real broker: a Go
//! program built static (`CGO_ENABLED=0`) and one built with cgo, both using `os/exec` and
//! `net.Dial` (raw syscalls), and a static C program calling the raw `execve` syscall. Each is
//! launched by a guarded bash; a denied command must fail with EACCES and leave a deny event
//! marked `"layer": "seccomp"`; an allowed one must work. Plus the fallback: a broker that
//! cannot supervise leaves today's behaviour (one diagnostic line, `exec-unguardable` event).

mod hooks_support;

use guard_e2e::{Sandbox, guardctl_path};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn go() -> Option<PathBuf> {
    hooks_support::which("go").or_else(|| {
        let p = PathBuf::from("/usr/lib/go/bin/go");
        p.exists().then_some(p)
    })
}

/// Builds tests/programs/kernel/main.go (`cgo`: with or without cgo), once per test process.
fn go_probe(cgo: bool) -> Option<PathBuf> {
    let Some(go) = go() else {
        eprintln!("SKIP: `go` is not installed (scripts/setup.sh installs golang-go)");
        return None;
    };
    let out = hooks_support::build_dir().join(format!(
        "kernelprobe-{}-{}",
        if cgo { "cgo" } else { "static" },
        std::process::id()
    ));
    if !out.exists() {
        let gocache = hooks_support::build_dir().join("gocache");
        // Built under a temporary name (see `static_exec_raw`).
        let tmp = out.with_extension(
            format!("tmp-{:?}", std::thread::current().id()).replace(['(', ')'], ""),
        );
        let st = Command::new(go)
            .env("CGO_ENABLED", if cgo { "1" } else { "0" })
            .env("GO111MODULE", "off")
            .env("GOCACHE", &gocache)
            .env_remove("LD_PRELOAD")
            .arg("build")
            .arg("-o")
            .arg(&tmp)
            .arg(hooks_support::program_src("kernel/main.go"))
            .status()
            .expect("go build");
        assert!(st.success(), "go build failed");
        std::fs::rename(&tmp, &out).expect("rename the built program");
    }
    Some(out)
}

/// Whether this kernel lets an unprivileged process install a seccomp filter with a listener
/// (a container's own filter may refuse it): tried in a forked child.
fn seccomp_listener_available() -> bool {
    // SAFETY: the child only makes raw system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut allow = [libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        }];
        let prog = libc::sock_fprog {
            len: 1,
            filter: allow.as_mut_ptr(),
        };
        // SAFETY: prctl and seccomp with valid arguments; _exit never returns.
        unsafe {
            let ok = libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                && libc::syscall(libc::SYS_seccomp, 1, 1 << 3, &prog as *const _) >= 0;
            libc::_exit(if ok { 0 } else { 1 })
        }
    }
    let mut st = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    let ok = pid > 0 && libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0;
    if !ok {
        eprintln!("SKIP: seccomp user notification is not available here");
    }
    ok
}

fn static_exec_raw() -> Option<PathBuf> {
    let out = hooks_support::build_dir().join(format!("exec-raw-{}", std::process::id()));
    if out.exists() {
        return Some(out);
    }
    // Built under a name of this thread's and renamed into place: tests run in parallel, and
    // one must not exec the file while another is still writing it (ETXTBSY).
    let tmp = out
        .with_extension(format!("tmp-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let ok = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&tmp)
        .arg(hooks_support::program_src("kernel/exec_raw.c"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && std::fs::rename(&tmp, &out).is_ok();
    if !ok {
        eprintln!("SKIP: no static libc (cc -static failed)");
        return None;
    }
    Some(out)
}

/// A session directory with a stub `terraform` on PATH and a policy that denies
/// `terraform destroy` and connects to 127.0.0.1:`denied_port`.
struct Session {
    sb: Sandbox,
    policy: PathBuf,
    bin: PathBuf,
}

impl Session {
    fn new(name: &str, denied_port: u16) -> Session {
        Session::with(name, denied_port, "audit")
    }

    fn with(name: &str, denied_port: u16, unguardable: &str) -> Session {
        let sb = Sandbox::new(name);
        let bin = sb.root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tf = bin.join("terraform");
        std::fs::write(&tf, "#!/bin/sh\necho TF-RAN \"$@\"\n").unwrap();
        std::fs::set_permissions(&tf, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let policy = sb.root.join("kernel.toml");
        std::fs::write(
            &policy,
            format!(
                r#"
[policy]
name = "kernel-layer-test"
default = "allow"
unguardable_exec = "{unguardable}"

[[rule]]
id = "kt-terraform-destroy"
on = "exec"
command = "terraform destroy"
decision = "deny"
reason = "terraform destroy deletes every resource"
examples = {{ match = ["terraform destroy"], no_match = ["terraform plan"] }}

[[rule]]
id = "kt-denied-port"
on = "connect"
ips = ["127.0.0.1"]
ports = [{denied_port}]
decision = "deny"
reason = "this port is off limits"
examples = {{ match = ["127.0.0.1:{denied_port}"], no_match = ["127.0.0.1:1"] }}

[[rule]]
id = "kt-protected"
on = "file"
paths = ["{{workspace}}/protected", "{{workspace}}/protected/**"]
access = ["write", "delete"]
decision = "deny"
reason = "the protected tree is read-only"
examples = {{ match = ["write {{workspace}}/protected/a.txt"], no_match = ["write {{workspace}}/free/a.txt"] }}

[[rule]]
id = "kt-carried"
on = "file"
paths = ["{{workspace}}/tree/keep/secret.txt"]
access = ["write", "delete"]
decision = "deny"
reason = "this one file stays where it is"
examples = {{ match = ["delete {{workspace}}/tree/keep/secret.txt"], no_match = ["delete {{workspace}}/tree/x"] }}

[[rule]]
id = "kt-read-audit"
on = "file"
paths = ["{{workspace}}/protected/**"]
access = ["read"]
decision = "audit"
reason = "reads are recorded where they are seen"
examples = {{ match = ["read {{workspace}}/protected/a.txt"], no_match = ["read {{workspace}}/free/a.txt"] }}

[[rule]]
id = "kt-ask-delete"
on = "file"
paths = ["{{workspace}}/askdir/**"]
access = ["delete"]
decision = "ask"
reason = "a human confirms deletes here"
examples = {{ match = ["delete {{workspace}}/askdir/x"], no_match = ["delete {{workspace}}/free/x"] }}

[[rule]]
id = "kt-terraform-apply"
on = "exec"
command = "terraform apply"
decision = "ask"
reason = "a human reviews the plan first"
examples = {{ match = ["terraform apply"], no_match = ["terraform plan"] }}
"#
            ),
        )
        .unwrap();
        Session { sb, policy, bin }
    }

    /// `guardctl ARGS` with this session's environment.
    fn guardctl(&self) -> Command {
        let mut c = Command::new(guardctl_path());
        c.current_dir(self.sb.workspace())
            .env("HOME", self.sb.home())
            .env("GUARD_STATE_DIR", self.sb.state())
            .env_remove("LD_PRELOAD")
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("GUARD_LIB");
        c
    }

    /// `guardctl run --policy P -- bash -c SCRIPT`.
    fn run(&self, script: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let mut c = self.guardctl();
        c.env("PATH", path)
            .stdin(Stdio::null())
            .arg("run")
            .arg("--policy")
            .arg(&self.policy)
            .args(["--", "bash", "-c", script]);
        hooks_support::run(c, std::time::Duration::from_secs(60))
    }

    /// The session's events as stored in its JSON Lines file (the SQLite index does not
    /// keep the `layer` field).
    fn events(&self) -> Vec<Value> {
        let dir = self.sb.state().join("sessions");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".jsonl") && name != "index.jsonl" {
                for l in std::fs::read_to_string(&p).unwrap().lines() {
                    out.push(serde_json::from_str(l).unwrap());
                }
            }
        }
        out
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn find(events: &[Value], pred: impl Fn(&Value) -> bool) -> Option<&Value> {
    events.iter().find(|e| pred(e))
}

fn seccomp(e: &Value) -> bool {
    e["layer"] == "seccomp"
}

/// Two loopback listeners: (denied, allowed). They only need to accept.
fn listeners() -> (TcpListener, TcpListener) {
    (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
}

/// Runs the four Go cases under one session and checks outputs and events.
fn go_program_is_supervised(cgo: bool) {
    if !seccomp_listener_available() {
        return;
    }
    let Some(probe) = go_probe(cgo) else { return };
    let (deny_l, allow_l) = listeners();
    let (dp, ap) = (
        deny_l.local_addr().unwrap().port(),
        allow_l.local_addr().unwrap().port(),
    );
    let s = Session::new(if cgo { "kl-cgo" } else { "kl-static" }, dp);
    let p = probe.display();
    let out = s.run(&format!(
        "{p} exec terraform destroy; {p} exec terraform plan; \
         {p} dial 127.0.0.1:{dp}; {p} dial 127.0.0.1:{ap}; \
         {p} udp 127.0.0.1:{dp}; {p} udp 127.0.0.1:{ap}"
    ));
    let (o, e) = text(&out);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines,
        [
            "ERR 13",
            "TF-RAN plan",
            "OK",
            "ERR 13",
            "OK",
            "ERR 13",
            "OK"
        ],
        "stdout {o:?}\nstderr {e}"
    );
    assert!(
        e.contains("guard: exec of terraform denied by rule kt-terraform-destroy"),
        "the denial is explained on the program's stderr: {e}"
    );
    let ev = s.events();
    let deny = find(&ev, |x| {
        seccomp(x) && x["action"] == "exec" && x["decision"] == "deny"
    })
    .unwrap_or_else(|| panic!("no seccomp exec deny event: {ev:#?}"));
    assert_eq!(deny["rule"], "kt-terraform-destroy", "{deny}");
    assert_eq!(deny["target"], "terraform destroy", "{deny}");
    assert!(
        deny["exe"]
            .as_str()
            .unwrap()
            .ends_with(probe.file_name().unwrap().to_str().unwrap()),
        "the trapped process is the Go program: {deny}"
    );
    for k in ["ts", "session", "agent", "host", "pid", "ppid", "cwd"] {
        assert!(!deny[k].is_null(), "identity field {k} missing: {deny}");
    }
    assert!(
        find(&ev, |x| seccomp(x)
            && x["action"] == "exec"
            && x["decision"] == "allow"
            && x["target"] == "terraform plan")
        .is_some(),
        "the allowed exec is recorded too: {ev:#?}"
    );
    let conn = find(&ev, |x| seccomp(x) && x["action"] == "connect")
        .unwrap_or_else(|| panic!("no seccomp connect event: {ev:#?}"));
    assert_eq!(conn["decision"], "deny", "{conn}");
    assert_eq!(conn["rule"], "kt-denied-port", "{conn}");
    assert_eq!(conn["target"], format!("127.0.0.1:{dp}"), "{conn}");
    assert!(
        find(&ev, |x| seccomp(x)
            && x["action"] == "connect"
            && x["target"] == format!("127.0.0.1:{ap}"))
        .is_none(),
        "plain allowed connects are not recorded (like the in-process layer)"
    );
    let why = if cgo { "go-start" } else { "static-exec" };
    let name = probe.file_name().unwrap().to_str().unwrap();
    assert!(
        find(&ev, |x| seccomp(x)
            && x["action"] == "kernel-layer"
            && x["reason"].as_str().unwrap_or("").contains(why)
            && x["target"].as_str().unwrap_or("").ends_with(name))
        .is_some(),
        "the supervisor's attachment ({why}, for the Go program) is recorded: {ev:#?}"
    );
    assert!(
        find(&ev, |x| x["action"] == "exec-unguardable").is_none(),
        "a supervised static binary is not 'unguardable': {ev:#?}"
    );
}

#[test]
fn static_go_program_is_supervised() {
    go_program_is_supervised(false);
}

#[test]
fn cgo_go_program_is_supervised() {
    go_program_is_supervised(true);
}

#[test]
fn static_c_raw_execve_is_supervised() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(raw) = static_exec_raw() else { return };
    let s = Session::new("kl-c", 9);
    let tf = s.bin.join("terraform");
    let r = raw.display();
    let t = tf.display();
    let out = s.run(&format!(
        "{r} {t} terraform destroy; {r} {t} terraform plan"
    ));
    let (o, e) = text(&out);
    assert_eq!(o, "ERR 13\nTF-RAN plan\n", "stderr {e}");
    let ev = s.events();
    let deny = find(&ev, |x| {
        seccomp(x) && x["action"] == "exec" && x["decision"] == "deny"
    })
    .unwrap_or_else(|| panic!("no seccomp exec deny event: {ev:#?}"));
    assert_eq!(deny["rule"], "kt-terraform-destroy");
}

/// The files of the destructive-file tests, made outside the guard: `protected/a.txt` (kt-protected),
/// `tree/keep/secret.txt` (kt-carried: only that file), `free/b.txt` (no rule).
fn file_tree(s: &Session) -> PathBuf {
    let ws = s.sb.workspace();
    for d in ["protected", "tree/keep", "free"] {
        std::fs::create_dir_all(ws.join(d)).unwrap();
    }
    std::fs::write(ws.join("protected/a.txt"), "keep\n").unwrap();
    std::fs::write(ws.join("tree/keep/secret.txt"), "secret\n").unwrap();
    std::fs::write(ws.join("free/b.txt"), "free\n").unwrap();
    ws.to_path_buf()
}

/// Go's os.Remove, os.WriteFile, os.Rename and os.MkdirAll (raw syscalls) on protected names
/// fail with EACCES from the kernel layer and leave the files alone; the same in an unprotected
/// directory work; a read-only open is not trapped (it works, and nothing records it).
fn go_file_operations_are_supervised(cgo: bool) {
    if !seccomp_listener_available() {
        return;
    }
    let Some(probe) = go_probe(cgo) else { return };
    let s = Session::new(
        if cgo {
            "kl-files-cgo"
        } else {
            "kl-files-static"
        },
        9,
    );
    let ws = file_tree(&s);
    let p = probe.display();
    let w = ws.display();
    let out = s.run(&format!(
        "{p} rm protected/a.txt; {p} write protected/a.txt; \
         {p} mv protected/a.txt free/moved.txt; {p} mv tree/keep free/keep2; \
         {p} mkdirall protected/sub/deeper; {p} rmat {w}/protected a.txt; \
         {p} read protected/a.txt; \
         {p} write free/new.txt; {p} mv free/new.txt free/new2.txt; {p} rm free/b.txt; \
         {p} mkdirall {w}/free/x/y; {p} mv tree free/tree2"
    ));
    let (o, e) = text(&out);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines,
        [
            "ERR 13", "ERR 13", "ERR 13", "ERR 13", "ERR 13", "ERR 13", "OK keep", "OK", "OK",
            "OK", "OK", "ERR 13",
        ],
        "stdout {o:?}\nstderr {e}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("protected/a.txt")).unwrap(),
        "keep\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("tree/keep/secret.txt")).unwrap(),
        "secret\n"
    );
    assert!(!ws.join("protected/sub").exists());
    assert!(!ws.join("free/moved.txt").exists() && !ws.join("free/keep2").exists());
    assert_eq!(
        std::fs::read_to_string(ws.join("free/new2.txt")).unwrap(),
        "overwritten\n"
    );
    assert!(!ws.join("free/new.txt").exists() && !ws.join("free/b.txt").exists());
    assert!(ws.join("free/x/y").is_dir());
    let ev = s.events();
    let prot = format!("{w}/protected/a.txt");
    let denies = |action: &str, target: &str, rule: &str| {
        find(&ev, |x| {
            seccomp(x)
                && x["action"] == action
                && x["decision"] == "deny"
                && x["target"] == target
                && x["rule"] == rule
        })
        .is_some()
    };
    assert!(denies("delete", &prot, "kt-protected"), "rm: {ev:#?}");
    assert!(denies("write", &prot, "kt-protected"), "write: {ev:#?}");
    assert!(
        denies("delete", &format!("{w}/tree/keep"), "kt-carried"),
        "a directory move carrying a protected file: {ev:#?}"
    );
    assert!(
        denies("write", &format!("{w}/protected/sub"), "kt-protected"),
        "mkdirall: {ev:#?}"
    );
    let deny = find(&ev, |x| {
        seccomp(x) && x["action"] == "delete" && x["decision"] == "deny"
    })
    .unwrap();
    for k in [
        "ts", "session", "agent", "host", "pid", "ppid", "cwd", "exe",
    ] {
        assert!(!deny[k].is_null(), "identity field {k} missing: {deny}");
    }
    assert!(
        find(&ev, |x| x["action"] == "read").is_none(),
        "the read-only open was not trapped (an audit rule covers it): {ev:#?}"
    );
    assert!(
        find(&ev, |x| seccomp(x)
            && x["target"].as_str().unwrap_or("").contains("/free/")
            && x["decision"] != "allow")
        .is_none(),
        "nothing in the free directory was refused: {ev:#?}"
    );
}

#[test]
fn static_go_file_operations_are_supervised() {
    go_file_operations_are_supervised(false);
}

#[test]
fn cgo_go_file_operations_are_supervised() {
    go_file_operations_are_supervised(true);
}

/// A static C program's raw `unlinkat` of a protected file: EACCES, the file stays; of a free
/// file: gone.
#[test]
fn static_c_raw_unlink_is_supervised() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(raw) = static_exec_raw() else { return };
    let s = Session::new("kl-c-unlink", 9);
    let ws = file_tree(&s);
    let r = raw.display();
    let out = s.run(&format!(
        "{r} --unlink protected/a.txt; {r} --unlink free/b.txt; {r} --unlink \"$GUARD_RULESET\"; \
         test -f \"$GUARD_RULESET\" && echo ruleset-kept"
    ));
    let (o, e) = text(&out);
    assert_eq!(o, "ERR 13\nOK\nERR 13\nruleset-kept\n", "stderr {e}");
    assert!(ws.join("protected/a.txt").exists());
    assert!(!ws.join("free/b.txt").exists());
    let ev = s.events();
    let deny = find(&ev, |x| {
        seccomp(x) && x["action"] == "delete" && x["decision"] == "deny"
    })
    .unwrap_or_else(|| panic!("no seccomp delete deny event: {ev:#?}"));
    assert_eq!(deny["rule"], "kt-protected");
    assert_eq!(
        deny["target"],
        format!("{}/protected/a.txt", ws.display()),
        "{deny}"
    );
    assert!(
        find(&ev, |x| seccomp(x)
            && x["action"] == "delete"
            && x["decision"] == "deny"
            && x["rule"] == "guard-self-protection"
            && x["target"].as_str().unwrap_or("").ends_with(".rules"))
        .is_some(),
        "the guard's own ruleset is protected from a static binary too: {ev:#?}"
    );
}

/// The cost of trapping file operations: a static program creates and unlinks 300 files with
/// the filter (two round trips per file) and without it. Printed, not asserted (wall clock).
#[test]
fn file_cost_with_and_without_the_backstop() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(raw) = static_exec_raw() else { return };
    let Some(py) = hooks_support::python() else {
        eprintln!("SKIP: no python3");
        return;
    };
    let s = Session::new("kl-file-bench", 9);
    let ws = file_tree(&s);
    let dir = ws.join("free");
    let (r, d) = (raw.display(), dir.display());
    let script = format!(
        "echo with=$({r} --files 300 {d}); \
         echo without=$({py} -c 'import subprocess,sys; sys.stdout.flush(); subprocess.run([\"{r}\",\"--files\",\"300\",\"{d}\"], close_fds=False)')",
        py = py.display()
    );
    let out = s.run(&script);
    let (o, e) = text(&out);
    eprintln!("create+unlink of a file from a static program, mean µs per file:\n{o}{e}");
    assert!(o.contains("with=") && o.contains("without="), "{o}\n{e}");
    assert!(!o.contains("ERR"), "{o}\n{e}");
}

/// An `ask` from a static Go program goes to the broker's approvals: approved from outside the
/// tree it runs, denied it fails with EACCES; both are recorded with their approval.
#[test]
fn asks_from_the_kernel_layer_go_to_the_human() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(probe) = go_probe(false) else { return };
    let s = Session::new("kl-ask", 9);
    let path = format!(
        "{}:{}",
        s.bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let p = probe.display();
    let child = s
        .guardctl()
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .arg("run")
        .arg("--policy")
        .arg(&s.policy)
        .args([
            "--",
            "bash",
            "-c",
            &format!("{p} exec terraform apply -auto-approve; {p} exec terraform apply again"),
        ])
        .spawn()
        .unwrap();
    for verb in ["approve", "deny"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let id = loop {
            let out = s.guardctl().args(["pending", "--json"]).output().unwrap();
            let first = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .next();
            if let Some(v) = first {
                assert_eq!(v["rule"], "kt-terraform-apply", "{v}");
                break v["id"].as_u64().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no pending ask");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let out = s.guardctl().args([verb, &id.to_string()]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = child.wait_with_output().unwrap();
    let (o, e) = text(&out);
    assert_eq!(o, "TF-RAN apply -auto-approve\nOK\nERR 13\n", "{e}");
    let ev = s.events();
    let asked: Vec<&Value> = ev
        .iter()
        .filter(|x| seccomp(x) && x["rule"] == "kt-terraform-apply")
        .collect();
    assert_eq!(asked.len(), 2, "{ev:#?}");
    assert_eq!(asked[0]["decision"], "allow");
    assert_eq!(asked[0]["approval"]["answer"], "approved", "{}", asked[0]);
    assert_eq!(asked[1]["decision"], "deny");
    assert_eq!(asked[1]["approval"]["answer"], "denied", "{}", asked[1]);
}

/// A file delete that a rule sends to the human, from a static Go program: approved it happens,
/// denied it fails with EACCES and the file stays.
#[test]
fn file_asks_from_the_kernel_layer_go_to_the_human() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(probe) = go_probe(false) else { return };
    let s = Session::new("kl-file-ask", 9);
    let ws = s.sb.workspace().to_path_buf();
    std::fs::create_dir_all(ws.join("askdir")).unwrap();
    std::fs::write(ws.join("askdir/one"), "1").unwrap();
    std::fs::write(ws.join("askdir/two"), "2").unwrap();
    let p = probe.display();
    let child = s
        .guardctl()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .arg("run")
        .arg("--policy")
        .arg(&s.policy)
        .args([
            "--",
            "bash",
            "-c",
            &format!("{p} rm askdir/one; {p} rm askdir/two"),
        ])
        .spawn()
        .unwrap();
    for verb in ["approve", "deny"] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let id = loop {
            let out = s.guardctl().args(["pending", "--json"]).output().unwrap();
            let first = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .next();
            if let Some(v) = first {
                assert_eq!(v["rule"], "kt-ask-delete", "{v}");
                break v["id"].as_u64().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no pending ask");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let out = s.guardctl().args([verb, &id.to_string()]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = child.wait_with_output().unwrap();
    let (o, e) = text(&out);
    assert_eq!(o, "OK\nERR 13\n", "{e}");
    assert!(!ws.join("askdir/one").exists());
    assert!(ws.join("askdir/two").exists());
    let ev = s.events();
    let asked: Vec<&Value> = ev
        .iter()
        .filter(|x| seccomp(x) && x["rule"] == "kt-ask-delete")
        .collect();
    // Go's os.Remove tries unlinkat, then unlinkat(AT_REMOVEDIR): a refused file is asked
    // about (and recorded) for both calls; the broker answers the second from the first.
    assert!(asked.len() >= 2, "{ev:#?}");
    assert_eq!(asked[0]["action"], "delete");
    assert_eq!(asked[0]["approval"]["answer"], "approved", "{}", asked[0]);
    for a in &asked[1..] {
        assert_eq!(a["decision"], "deny", "{a}");
        assert_eq!(a["approval"]["answer"], "denied", "{a}");
        assert!(
            a["target"].as_str().unwrap().ends_with("/askdir/two"),
            "{a}"
        );
    }
}

/// `unguardable_exec = "deny"` still refuses static binaries (the kernel layer does not cover
/// their file opens), and installs nothing.
#[test]
fn unguardable_deny_still_refuses_static_binaries() {
    let Some(raw) = static_exec_raw() else { return };
    let s = Session::with("kl-deny", 9, "deny");
    let out = s.run(&format!("{} /bin/echo echo ran; echo rc=$?", raw.display()));
    let (o, e) = text(&out);
    assert_eq!(o, "rc=126\n", "{e}");
    let ev = s.events();
    assert!(
        find(&ev, |x| x["action"] == "exec-unguardable"
            && x["decision"] == "deny")
        .is_some(),
        "{ev:#?}"
    );
    assert!(
        find(&ev, seccomp).is_none(),
        "no filter was installed: {ev:#?}"
    );
}

/// A static parent that drops LD_PRELOAD from its child's environment: the dynamic child runs
/// without the preload, and the inherited filter still stops its exec.
#[test]
fn dynamic_child_of_a_static_parent_stays_covered() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(raw) = static_exec_raw() else { return };
    let s = Session::new("kl-child", 9);
    let out = s.run(&format!(
        "{} --path-only /bin/sh sh -c 'echo preload=${{LD_PRELOAD:-none}}; terraform destroy; echo rc=$?; terraform plan'",
        raw.display()
    ));
    let (o, e) = text(&out);
    assert_eq!(
        o, "preload=none\nrc=126\nTF-RAN plan\n",
        "the shell has no preload; its exec of terraform destroy is refused: {e}"
    );
    assert!(e.contains("Permission denied"), "{e}");
    let ev = s.events();
    let deny = find(&ev, |x| {
        seccomp(x) && x["action"] == "exec" && x["decision"] == "deny"
    })
    .unwrap_or_else(|| panic!("no seccomp exec deny event: {ev:#?}"));
    assert_eq!(deny["rule"], "kt-terraform-destroy");
    assert!(deny["exe"].as_str().unwrap().ends_with("sh"), "{deny}");
}

/// A broker that cannot supervise (here the hooks tests' fake broker): today's behaviour,
/// one diagnostic line, the `exec-unguardable` event, and the program runs.
#[test]
fn without_a_supervisor_the_static_exec_falls_back() {
    let Some(raw) = static_exec_raw() else { return };
    let env = hooks_support::Env::new("kl-fallback");
    let mut c = env.cmd("/bin/sh");
    c.args(["-c", &format!("{} /bin/echo echo ran", raw.display())]);
    let (o, e, code) = hooks_support::out(c);
    assert_eq!((o.as_str(), code), ("ran\n", Some(0)), "{e}");
    assert_eq!(
        e.matches("guard: kernel layer (seccomp) unavailable")
            .count(),
        1,
        "one diagnostic line: {e}"
    );
    let ev = env
        .broker
        .wait_for("unguardable", |e| e.action == "exec-unguardable");
    assert_eq!(ev.decision, "audit");
    assert!(
        ev.reason.contains("kernel layer (seccomp) unavailable"),
        "{ev:?}"
    );
}

/// The cost of the backstop on exec: a static program forks and execs /bin/true 200 times,
/// once with the filter (every exec is a round trip to the broker) and once without (spawned
/// through posix_spawn, which does not install it). Printed, not asserted (wall clock).
#[test]
fn exec_cost_with_and_without_the_backstop() {
    if !seccomp_listener_available() {
        return;
    }
    let Some(raw) = static_exec_raw() else { return };
    let Some(py) = hooks_support::python() else {
        eprintln!("SKIP: no python3");
        return;
    };
    let s = Session::new("kl-bench", 9);
    let r = raw.display();
    let script = format!(
        "echo with=$({r} --bench 200 /bin/true); \
         echo without=$({py} -c 'import subprocess,sys; sys.stdout.flush(); subprocess.run([\"{r}\",\"--bench\",\"200\",\"/bin/true\"], close_fds=False)')",
        py = py.display()
    );
    let out = s.run(&script);
    let (o, e) = text(&out);
    eprintln!("exec of /bin/true from a static program, mean µs per fork+exec+wait:\n{o}{e}");
    assert!(o.contains("with=") && o.contains("without="), "{o}\n{e}");
    assert!(!o.contains("ERR"), "{o}\n{e}");
}
