//! `guardctl doctor`: proves the guard is live, per runtime, by running small probes under
//! `guardctl run` with a built-in probe policy and checking what really happened.
//!
//! The probe policy denies reading a marker file, executing a marker program and connecting to
//! a loopback port the doctor listens on. Each probe (bash, python3, node, a C program compiled
//! on the fly, a Go program when `go` exists) tries all three and prints what it saw; an action
//! that succeeds means that hook is not live in that runtime. A hook that fails "open" is exactly
//! the silent failure users cannot see otherwise, so the exit status is 1 when anything that the
//! in-process layer should gate got through, and 0 when every hook that can be live is live.
//!
//! Go is the documented exception: its own `open`, `exec` and `connect` are raw syscalls that no
//! preload library sees (only the kernel layer does), so its row shows `bypass` there, which is
//! not a failure. What a Go program routes through libc (linked C code, the cgo resolver's
//! `getaddrinfo`) is probed in a `go-cgo` row and must be gated like any C program.

use crate::cmd_run::locate_libguard;
use crate::state::Dirs;
use clap::Args;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

// `eprintln!` that never panics: with `2>&1 | head` the pipe may be gone when the summary is
// written, and a panic (abort) there would replace the command's exit status.
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

// `println!` that never panics when stdout is closed (`guardctl doctor | head`).
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Args)]
pub struct DoctorArgs {
    /// Also print each probe's raw output.
    #[arg(long, short)]
    pub verbose: bool,
    /// Keep the probe directory (for debugging) instead of removing it.
    #[arg(long)]
    pub keep: bool,
}

const SECRET_MARK: &str = "GUARD-DOCTOR-SECRET";
const RAN_MARK: &str = "GUARD-DOCTOR-RAN";
const PROG_NAME: &str = "guard-doctor-forbidden";
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
const COLUMNS: [&str; 3] = ["open", "exec", "connect"];

/// One cell of the table.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Ok,
    Fail(String),
    Skip,
    /// Not gated, and documented as out of reach of the in-process layer (Go's raw syscalls):
    /// reported, but not a broken guard.
    Bypass,
}

impl Cell {
    fn label(&self) -> &'static str {
        match self {
            Cell::Ok => "ok",
            Cell::Fail(_) => "FAIL",
            Cell::Skip => "skip",
            Cell::Bypass => "bypass",
        }
    }
}

/// How a probe's output becomes table rows.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// One row; every column must be denied.
    Plain,
    /// Go: one row for Go's own calls (raw syscalls: `bypass` when not gated) and one row,
    /// `go-cgo`, for what the program routes through libc (must be denied like any C code).
    Go,
}

/// Why Go's own calls are not gated (shown in the notes of the `go` row).
/// Go makes its calls with raw syscalls: what the in-process layer cannot see is either caught
/// by the kernel layer (seccomp user notification: exec, connect, file writes and deletes) or a
/// documented bypass (the probe opens for reading, which is not trapped).
const GO_BYPASS_WHY: &str = "bypass (raw syscalls; the kernel layer covers exec, connect and file writes/deletes, not reads)";

struct Probe {
    runtime: &'static str,
    kind: Kind,
    /// Command line to run under the guard; `None` = runtime not present (with why).
    argv: Result<Vec<String>, String>,
}

struct ProbeDir {
    root: PathBuf,
    keep: bool,
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

pub fn run(args: DoctorArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("guardctl doctor: cannot locate guardctl itself: {e}");
            return ExitCode::from(2);
        }
    };
    println!("guardctl   {}", exe.display());
    let lib = locate_libguard(&exe);
    match &lib {
        Ok(p) => println!("libguard   {}", p.display()),
        Err(e) => println!("libguard   MISSING: {e}"),
    }
    match Dirs::resolve() {
        Ok(d) => {
            println!("state dir  {}", d.state.display());
            println!("socket dir {}", d.run.display());
        }
        Err(e) => println!("state dir  UNUSABLE: {e}"),
    }
    if lib.is_err() {
        return ExitCode::from(1);
    }

    let dir = match make_probe_dir(args.keep) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("guardctl doctor: cannot create a probe directory: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("guardctl doctor: cannot listen on 127.0.0.1: {e}");
            return ExitCode::from(2);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    // Accept (and drop) whatever gets through, so an unguarded connect really succeeds.
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c);
        }
    });
    let root = &dir.root;
    let secret = root.join("doctor-secret.txt");
    let prog = root.join(PROG_NAME);
    let policy = root.join("probe-policy.toml");
    let setup = fs::write(&secret, format!("{SECRET_MARK}\n"))
        .and_then(|()| fs::write(&prog, format!("#!/bin/sh\necho {RAN_MARK}\n")))
        .and_then(|()| fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)))
        .and_then(|()| fs::write(&policy, probe_policy(&secret, port)));
    if let Err(e) = setup {
        eprintln!(
            "guardctl doctor: cannot write probe files in {}: {e}",
            root.display()
        );
        return ExitCode::from(2);
    }

    let probes = build_probes(root);
    let secret_s = secret.to_string_lossy().into_owned();
    let prog_s = prog.to_string_lossy().into_owned();
    let port_s = port.to_string();
    let mut rows: Vec<(&str, Vec<Cell>, String)> = Vec::new();
    for (i, probe) in probes.iter().enumerate() {
        let argv = match &probe.argv {
            Ok(a) => a,
            Err(why) => {
                rows.push((probe.runtime, vec![Cell::Skip; 4], why.clone()));
                if probe.kind == Kind::Go {
                    rows.push(("go-cgo", vec![Cell::Skip; 4], why.clone()));
                }
                continue;
            }
        };
        let state = root.join(format!("state-{i}"));
        let mut cmd = Command::new(&exe);
        cmd.arg("run")
            .arg("--policy")
            .arg(&policy)
            .args(["--agent", "guard-doctor", "--mode", "enforce", "--"])
            .args(argv)
            .args([&secret_s, &prog_s, &port_s])
            .current_dir(root)
            .env("GUARD_STATE_DIR", &state)
            .stdin(Stdio::null());
        let (out, err) = run_with_timeout(cmd, PROBE_TIMEOUT);
        if args.verbose {
            println!(
                "--- {} stdout:\n{out}--- {} stderr:\n{err}",
                probe.runtime, probe.runtime
            );
        }
        let audit = audit_cell(&state);
        if probe.kind == Kind::Go {
            let (go, cgo) = go_rows(&out, audit, &state);
            rows.push(go);
            rows.push(cgo);
            continue;
        }
        let mut cells: Vec<Cell> = COLUMNS.iter().map(|c| judge(&out, c)).collect();
        cells.push(audit);
        let note = if cells.iter().all(|c| *c == Cell::Ok) {
            String::new()
        } else {
            let mut notes: Vec<String> = COLUMNS
                .iter()
                .chain(["audit"].iter())
                .zip(&cells)
                .filter_map(|(col, c)| match c {
                    Cell::Fail(why) => Some(format!("{col}: {why}")),
                    _ => None,
                })
                .collect();
            if let Some(line) = err
                .lines()
                .find(|l| l.starts_with("guardctl run:") || l.contains(":0:0:"))
            {
                notes.push(line.to_string());
            }
            notes.join("; ")
        };
        rows.push((probe.runtime, cells, note));
    }

    println!();
    println!(
        "{:<8} {:<6} {:<6} {:<8} {:<6} notes",
        "runtime", "open", "exec", "connect", "audit"
    );
    let mut all_ok = true;
    for (rt, cells, note) in &rows {
        all_ok &= !cells.iter().any(|c| matches!(c, Cell::Fail(_)));
        println!(
            "{:<8} {:<6} {:<6} {:<8} {:<6} {}",
            rt,
            cells[0].label(),
            cells[1].label(),
            cells[2].label(),
            cells[3].label(),
            note
        );
    }
    println!();
    if all_ok {
        if rows.iter().any(|r| r.1.contains(&Cell::Bypass)) {
            println!(
                "guard doctor: every hook that can be live is live; `bypass` cells are \
                 documented gaps of the in-process layer (the kernel layer covers them)"
            );
        } else {
            println!("guard doctor: every runtime present is guarded");
        }
        ExitCode::SUCCESS
    } else {
        println!("guard doctor: some hooks are NOT live (FAIL above); actions there are not gated");
        ExitCode::from(1)
    }
}

fn make_probe_dir(keep: bool) -> std::io::Result<ProbeDir> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let root = std::env::temp_dir().join(format!("guard-doctor-{}-{nanos:x}", std::process::id()));
    fs::DirBuilder::new().mode(0o700).create(&root)?;
    // The policy names this directory by its real path, as libguard will see it.
    let root = root.canonicalize()?;
    Ok(ProbeDir { root, keep })
}

/// A TOML basic string (JSON's escaping is a subset TOML accepts).
fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn probe_policy(secret: &Path, port: u16) -> String {
    let secret = secret.to_string_lossy();
    let other = format!("{secret}.other");
    format!(
        r#"# Written by `guardctl doctor`: each rule is something the probes try and must be refused.
[policy]
name = "guard-doctor-probe"
default = "allow"
mode = "enforce"

[[rule]]
id = "doctor-deny-read"
on = "file"
paths = [{s}]
access = ["read"]
decision = "deny"
reason = "guard doctor probe: reading the marker file must be refused"
examples = {{ match = [{s}], no_match = [{o}] }}

[[rule]]
id = "doctor-deny-exec"
on = "exec"
command = "{PROG_NAME}"
decision = "deny"
reason = "guard doctor probe: running the marker program must be refused"
examples = {{ match = ["{PROG_NAME}"], no_match = ["true"] }}

[[rule]]
id = "doctor-deny-connect"
on = "connect"
ips = ["127.0.0.1"]
ports = [{port}]
decision = "deny"
reason = "guard doctor probe: connecting to the probe port must be refused"
examples = {{ match = ["127.0.0.1:{port}"], no_match = ["127.0.0.2:{port}"] }}
"#,
        s = toml_str(&secret),
        o = toml_str(&other),
    )
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file() && fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0))
}

const BASH_PROBE: &str = r#"secret=$1 prog=$2 port=$3
out=$( { read -r l < "$secret" && echo "$l"; } 2>&1 )
case $out in *GUARD-DOCTOR-SECRET*) echo open:allowed;; *"ermission denied"*) echo open:denied;; *) echo "open:error:$out";; esac
out=$("$prog" 2>&1)
case $out in *GUARD-DOCTOR-RAN*) echo exec:allowed;; *"ermission denied"*) echo exec:denied;; *) echo "exec:error:$out";; esac
out=$( { exec 3<>"/dev/tcp/127.0.0.1/$port" && echo CONNECTED; } 2>&1 )
case $out in *CONNECTED*) echo connect:allowed;; *"ermission denied"*) echo connect:denied;; *) echo "connect:error:$out";; esac
"#;

const PYTHON_PROBE: &str = r#"import socket, subprocess, sys
secret, prog, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def probe(name, f):
    try:
        print(f"{name}:allowed" if f() else f"{name}:error:unexpected result", flush=True)
    except PermissionError:
        print(f"{name}:denied", flush=True)
    except Exception as e:
        print(f"{name}:error:{type(e).__name__}: {e}", flush=True)
probe("open", lambda: "GUARD-DOCTOR-SECRET" in open(secret).read())
probe("exec", lambda: b"GUARD-DOCTOR-RAN" in subprocess.run([prog], capture_output=True).stdout)
probe("connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=3).close() is None)
"#;

const NODE_PROBE: &str = r#"const fs = require('fs'), cp = require('child_process'), net = require('net');
const [secret, prog, port] = process.argv.slice(2);
const bad = (name, e) => console.log(e && e.code === 'EACCES' ? `${name}:denied` : `${name}:error:${e && (e.code || e.message)}`);
try { console.log(fs.readFileSync(secret, 'utf8').includes('GUARD-DOCTOR-SECRET') ? 'open:allowed' : 'open:error:unexpected'); } catch (e) { bad('open', e); }
const r = cp.spawnSync(prog);
if (r.error) bad('exec', r.error); else console.log(String(r.stdout).includes('GUARD-DOCTOR-RAN') ? 'exec:allowed' : `exec:error:status ${r.status}`);
const s = net.connect(Number(port), '127.0.0.1');
s.on('connect', () => { console.log('connect:allowed'); s.destroy(); });
s.on('error', (e) => bad('connect', e));
setTimeout(() => { console.log('connect:error:timeout'); process.exit(0); }, 3000).unref();
"#;

const C_PROBE: &str = r#"#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
static void report(const char *name, int ok, int err) {
    if (ok) printf("%s:allowed\n", name);
    else if (err == EACCES || err == EPERM) printf("%s:denied\n", name);
    else printf("%s:error:%s\n", name, strerror(err));
    fflush(stdout);
}
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    char buf[64] = {0};
    int fd = open(argv[1], O_RDONLY);
    int e = errno;
    if (fd >= 0) { ssize_t n = read(fd, buf, sizeof buf - 1); (void)n; close(fd); }
    report("open", fd >= 0 && strstr(buf, "GUARD-DOCTOR-SECRET") != NULL, e);
    int p[2];
    if (pipe(p) != 0) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 1);
        char *args[] = {argv[2], NULL};
        execv(argv[2], args);
        int err = errno;
        _exit(err == EACCES || err == EPERM ? 77 : 78);
    }
    close(p[1]);
    char out[64] = {0};
    ssize_t got = read(p[0], out, sizeof out - 1);
    (void)got;
    int st = 0;
    waitpid(pid, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    report("exec", strstr(out, "GUARD-DOCTOR-RAN") != NULL, code == 77 ? EACCES : ECHILD);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[3]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof a);
    report("connect", rc == 0, errno);
    return 0;
}
"#;

const GO_PROBE: &str = r#"package main

/*
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
// What a Go program routes through libc (linked C code; the cgo resolver's getaddrinfo):
// 0 = the action happened, else the errno that refused it.
static int c_open(const char *p) {
	int fd = open(p, O_RDONLY);
	if (fd < 0) return errno;
	close(fd);
	return 0;
}
static int c_spawn(char *p) {
	char *args[] = {p, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, p, NULL, NULL, args, environ);
	if (rc != 0) return rc;
	int st;
	waitpid(pid, &st, 0);
	return 0;
}
static int c_connect(const char *port) {
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	int g = getaddrinfo("localhost", port, &hints, &res);
	if (g != 0 || res == NULL) return ENOENT;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int rc = connect(s, res->ai_addr, res->ai_addrlen);
	int e = rc == 0 ? 0 : errno;
	freeaddrinfo(res);
	close(s);
	return e;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func cgo(name string, e C.int) {
	switch syscall.Errno(e) {
	case 0:
		fmt.Printf("%s:allowed\n", name)
	case syscall.EACCES, syscall.EPERM:
		fmt.Printf("%s:denied\n", name)
	default:
		fmt.Printf("%s:error:%v\n", name, syscall.Errno(e))
	}
}

func bad(name string, err error) {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		fmt.Printf("%s:denied\n", name)
	} else {
		fmt.Printf("%s:error:%v\n", name, err)
	}
}

func main() {
	secret, prog, port := os.Args[1], os.Args[2], os.Args[3]
	if b, err := os.ReadFile(secret); err != nil {
		bad("open", err)
	} else if strings.Contains(string(b), "GUARD-DOCTOR-SECRET") {
		fmt.Println("open:allowed")
	} else {
		fmt.Println("open:error:unexpected")
	}
	if out, err := exec.Command(prog).Output(); err != nil {
		bad("exec", err)
	} else if strings.Contains(string(out), "GUARD-DOCTOR-RAN") {
		fmt.Println("exec:allowed")
	} else {
		fmt.Println("exec:error:unexpected")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 3*time.Second); err != nil {
		bad("connect", err)
	} else {
		c.Close()
		fmt.Println("connect:allowed")
	}
	cs, cp, cport := C.CString(secret), C.CString(prog), C.CString(port)
	defer C.free(unsafe.Pointer(cs))
	defer C.free(unsafe.Pointer(cp))
	defer C.free(unsafe.Pointer(cport))
	cgo("cgo-open", C.c_open(cs))
	cgo("cgo-exec", C.c_spawn(cp))
	cgo("cgo-connect", C.c_connect(cport))
}
"#;

/// Writes the probe sources and compiles the native ones (outside the guard: the compiler is
/// not what is being probed).
fn build_probes(root: &Path) -> Vec<Probe> {
    let script = |name: &str, body: &str| -> Result<String, String> {
        let p = root.join(name);
        fs::write(&p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        Ok(p.to_string_lossy().into_owned())
    };
    let interp = |bin: &str, file: &str, body: &str| -> Result<Vec<String>, String> {
        let exe = find_in_path(bin).ok_or_else(|| format!("{bin} not installed"))?;
        Ok(vec![
            exe.to_string_lossy().into_owned(),
            script(file, body)?,
        ])
    };
    let mut probes = vec![
        Probe {
            runtime: "bash",
            kind: Kind::Plain,
            argv: interp("bash", "probe.sh", BASH_PROBE),
        },
        Probe {
            runtime: "python3",
            kind: Kind::Plain,
            argv: interp("python3", "probe.py", PYTHON_PROBE),
        },
        Probe {
            runtime: "node",
            kind: Kind::Plain,
            argv: interp("node", "probe.js", NODE_PROBE),
        },
    ];
    let c = find_in_path("cc")
        .ok_or_else(|| "no C compiler (cc)".to_string())
        .and_then(|cc| {
            let src = script("probe.c", C_PROBE)?;
            let bin = root.join("probe-c");
            compile(Command::new(cc).args(["-O2", "-o"]).arg(&bin).arg(&src))?;
            Ok(vec![bin.to_string_lossy().into_owned()])
        });
    probes.push(Probe {
        runtime: "c",
        kind: Kind::Plain,
        argv: c,
    });
    let go = find_in_path("go")
        .or_else(|| Some(PathBuf::from("/usr/lib/go/bin/go")).filter(|p| p.is_file()))
        .ok_or_else(|| "go not installed".to_string())
        .and_then(|go| {
            let src = script("probe.go", GO_PROBE)?;
            let bin = root.join("probe-go");
            let mut cmd = Command::new(go);
            cmd.arg("build")
                .arg("-o")
                .arg(&bin)
                .arg(&src)
                .env("GO111MODULE", "off")
                .env("CGO_ENABLED", "1");
            compile(&mut cmd)?;
            Ok(vec![bin.to_string_lossy().into_owned()])
        });
    probes.push(Probe {
        runtime: "go",
        kind: Kind::Go,
        argv: go,
    });
    probes
}

fn compile(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run the compiler: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "probe did not compile: {}",
            err.lines().next().unwrap_or("")
        ))
    }
}

/// Runs `cmd`, killing it after `timeout`; returns (stdout, stderr).
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> (String, String) {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => return (String::new(), format!("guardctl run: cannot start: {e}")),
    };
    // Read both pipes on threads so a chatty probe cannot block on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = out.join().unwrap_or_default();
    let mut err = err.join().unwrap_or_default();
    if timed_out {
        err.push_str("\nguardctl run: probe timed out\n");
    }
    (out, err)
}

type Row = (&'static str, Vec<Cell>, String);

/// The two rows of the Go probe. Go's own open/exec/connect are raw syscalls: not gated by the
/// in-process layer (a documented gap), so `allowed` there is `bypass`, not a failure; a
/// `denied` means a kernel layer caught it. The `go-cgo` row is what Go sends through libc:
/// C code and the cgo resolver must be gated exactly like a C program.
fn go_rows(out: &str, audit: Cell, state: &Path) -> (Row, Row) {
    let go: Vec<Cell> = COLUMNS
        .iter()
        .map(|c| match judge(out, c) {
            Cell::Fail(why) if why == "not blocked" => Cell::Bypass,
            other => other,
        })
        .collect();
    let mut notes: Vec<String> = Vec::new();
    let cols = |want: &Cell| -> Vec<&str> {
        COLUMNS
            .iter()
            .zip(&go)
            .filter(|(_, c)| *c == want)
            .map(|(col, _)| *col)
            .collect()
    };
    let bypassed = cols(&Cell::Bypass);
    if !bypassed.is_empty() {
        notes.push(format!("{}: {GO_BYPASS_WHY}", bypassed.join("/")));
    }
    let gated: Vec<&str> = cols(&Cell::Ok)
        .into_iter()
        .filter(|c| *c != "open")
        .collect();
    if !gated.is_empty() {
        notes.push(format!("{}: kernel layer (seccomp)", gated.join("/")));
    }
    for (col, c) in COLUMNS.iter().zip(&go) {
        if let Cell::Fail(why) = c {
            notes.push(format!("{col}: {why}"));
        }
    }
    let mut go = go;
    go.push(Cell::Skip);
    let mut cgo: Vec<Cell> = COLUMNS
        .iter()
        .map(|c| judge(out, &format!("cgo-{c}")))
        .collect();
    cgo.push(audit);
    let mut cnotes: Vec<String> = COLUMNS
        .iter()
        .chain(["audit"].iter())
        .zip(&cgo)
        .filter_map(|(col, c)| match c {
            Cell::Fail(why) => Some(format!("{col}: {why}")),
            _ => None,
        })
        .collect();
    if cgo.first() == Some(&Cell::Ok) {
        cnotes.push(if connect_named(state, "localhost") {
            "C code, cgo DNS (getaddrinfo) live".to_string()
        } else {
            "C code live; cgo DNS name not seen in the connect event".to_string()
        });
    }
    (
        ("go", go, notes.join("; ")),
        ("go-cgo", cgo, cnotes.join("; ")),
    )
}

/// Whether the audit log has a connect event whose target names `host` (the `getaddrinfo`
/// hook recorded the name behind the address).
fn connect_named(state: &Path, host: &str) -> bool {
    audit_events(state).iter().any(|v| {
        v["action"] == "connect"
            && v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{host} ")))
    })
}

/// `denied` is what a live hook produces; anything else means the action was not gated.
fn judge(stdout: &str, column: &str) -> Cell {
    let prefix = format!("{column}:");
    match stdout.lines().find_map(|l| l.strip_prefix(&prefix)) {
        Some("denied") => Cell::Ok,
        Some("allowed") => Cell::Fail("not blocked".into()),
        Some(other) => Cell::Fail(
            other
                .trim_start_matches("error:")
                .chars()
                .take(80)
                .collect(),
        ),
        None => Cell::Fail("probe did not report".into()),
    }
}

/// The denials must also have reached the audit log through the broker.
fn audit_cell(state: &Path) -> Cell {
    if fs::read_dir(state.join("sessions")).is_err() {
        return Cell::Fail("no session log".into());
    }
    let denied_by_probe = audit_events(state).iter().any(|v| {
        v["decision"] == "deny"
            && v["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("doctor-deny-"))
    });
    if denied_by_probe {
        Cell::Ok
    } else {
        Cell::Fail("no deny event in the audit log".into())
    }
}

/// Every event of the session logs under `state`.
fn audit_events(state: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = fs::read_dir(state.join("sessions")) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == "index.jsonl") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&p) else {
            continue;
        };
        events.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()),
        );
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_raw_syscalls_are_a_bypass_and_cgo_must_be_denied() {
        let dir = std::env::temp_dir().join(format!("doctor-unit-{}", std::process::id()));
        let out = "open:allowed\nexec:allowed\nconnect:allowed\n\
                   cgo-open:denied\ncgo-exec:denied\ncgo-connect:denied\n";
        let (go, cgo) = go_rows(out, Cell::Ok, &dir);
        assert_eq!(go.1[..3], [Cell::Bypass, Cell::Bypass, Cell::Bypass]);
        assert!(go.2.starts_with("open/exec/connect: bypass"), "{}", go.2);
        assert_eq!(cgo.1, [Cell::Ok, Cell::Ok, Cell::Ok, Cell::Ok]);
        // A gated Go call (a kernel layer) is ok; a cgo call that got through is a failure.
        let out = "open:denied\nexec:allowed\nconnect:error:timeout\n\
                   cgo-open:allowed\ncgo-exec:denied\n";
        let (go, cgo) = go_rows(out, Cell::Ok, &dir);
        assert_eq!(go.1[0], Cell::Ok);
        assert_eq!(go.1[1], Cell::Bypass);
        assert_eq!(go.1[2], Cell::Fail("timeout".into()));
        assert_eq!(cgo.1[0], Cell::Fail("not blocked".into()));
        assert_eq!(cgo.1[2], Cell::Fail("probe did not report".into()));
    }

    #[test]
    fn judging_probe_output() {
        let out = "open:denied\nexec:allowed\nconnect:error:ECONNREFUSED\n";
        assert_eq!(judge(out, "open"), Cell::Ok);
        assert_eq!(judge(out, "exec"), Cell::Fail("not blocked".into()));
        assert_eq!(judge(out, "connect"), Cell::Fail("ECONNREFUSED".into()));
        assert!(matches!(judge("", "open"), Cell::Fail(_)));
    }

    #[test]
    fn probe_policy_names_the_marker_and_port() {
        let p = probe_policy(Path::new("/tmp/d \"q\"/secret"), 4321);
        assert!(p.contains(r#"paths = ["/tmp/d \"q\"/secret"]"#), "{p}");
        assert!(p.contains("ports = [4321]") && p.contains("127.0.0.1:4321"));
    }
}
