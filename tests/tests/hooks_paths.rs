//! Path resolution of the open hooks, around the allow fast path (`openat2` with
//! `RESOLVE_NO_SYMLINKS`, see libguard/src/path.rs): every way a name can reach another file
//! (a symlink in the middle, `..` after a symlinked directory, `/proc/self/fd/N`) must still be
//! judged on the real file, and the errors a program sees must be the ones `open` gives.

mod hooks_support;

use hooks_support::*;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Stdio;

fn paths_bin() -> PathBuf {
    cc("c/paths.c", "paths", &["-O0"])
}

/// Runs `paths PATH FLAGS...` in `cwd` (the workspace when `None`); returns its one-line answer.
fn open_in(env: &Env, cwd: Option<&str>, path: &str, flags: &[&str]) -> String {
    let mut c = env.cmd(paths_bin());
    c.arg(path).args(flags);
    if let Some(d) = cwd {
        c.current_dir(env.h(d));
    }
    let (o, e, _) = out(c);
    assert!(!o.is_empty(), "no answer for {path} {flags:?}; stderr: {e}");
    o.trim().to_string()
}

fn open(env: &Env, path: &str, flags: &[&str]) -> String {
    open_in(env, None, path, flags)
}

#[test]
fn symlink_in_the_middle_of_a_path_is_denied() {
    let env = Env::new("p-midlink");
    symlink(env.home().join("secret"), env.home().join("public/dirlink")).unwrap();
    let abs = env.h("public/dirlink/key");
    for flags in [
        &["rdonly"][..],
        &["rdonly", "fortify"],
        &["rdwr"],
        &["wronly", "creat"],
    ] {
        assert_eq!(open(&env, &abs, flags), "ERR EACCES", "{abs} {flags:?}");
        assert_eq!(
            open_in(&env, Some("public"), "dirlink/key", flags),
            "ERR EACCES",
            "relative {flags:?}"
        );
    }
    // The same opens through the plain name of an allowed file succeed.
    assert_eq!(open(&env, &env.h("public/file"), &["rdonly"]), "OK");
    assert_eq!(
        open_in(&env, Some("public"), "file", &["rdonly", "fortify"]),
        "OK"
    );
    // The event names the real file, not the name that was used.
    let e = env.broker.wait_for("deny through a symlinked dir", |e| {
        e.rule == "secret-files" && e.action == "read"
    });
    assert_eq!(e.target, env.h("secret/key"));
    assert_eq!(e.decision, "deny");
    env.broker
        .wait_for("write deny through a symlinked dir", |e| {
            e.rule == "secret-files" && e.action == "write" && e.target == env.h("secret/key")
        });
    assert_eq!(
        std::fs::read_to_string(env.home().join("secret/key")).unwrap(),
        "s3cret\n"
    );
}

#[test]
fn errors_are_the_ones_open_gives() {
    let env = Env::new("p-errno");
    let file = env.h("public/file");
    // O_CREAT|O_EXCL on an existing allowed file: EEXIST, not EACCES, file untouched.
    assert_eq!(
        open(&env, &file, &["wronly", "creat", "excl"]),
        "ERR EEXIST"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hello\n");
    // ... and on a new one it creates it.
    let new = env.h("public/new");
    assert_eq!(open(&env, &new, &["wronly", "creat", "excl"]), "OK");
    assert!(env.home().join("public/new").exists());
    assert_eq!(
        open(&env, &env.h("public/missing/x"), &["wronly", "creat"]),
        "ERR ENOENT"
    );
    assert_eq!(open(&env, &env.h("public/nope"), &["rdonly"]), "ERR ENOENT");
    assert_eq!(
        open(&env, &env.h("public/nope"), &["rdonly", "fortify"]),
        "ERR ENOENT"
    );
    assert_eq!(open(&env, &file, &["rdonly", "directory"]), "ERR ENOTDIR");
    assert_eq!(open(&env, &env.h("public"), &["wronly"]), "ERR EISDIR");
    // A protected file is refused before the kernel could say EEXIST (as before).
    assert_eq!(
        open(&env, &env.h("protected/file"), &["wronly", "creat", "excl"]),
        "ERR EACCES"
    );
    // A dangling symlink into the protected tree: O_CREAT would follow it.
    symlink(
        env.home().join("protected/created"),
        env.home().join("public/dang"),
    )
    .unwrap();
    assert_eq!(
        open(&env, &env.h("public/dang"), &["wronly", "creat"]),
        "ERR EACCES"
    );
    assert!(!env.home().join("protected/created").exists());
    // O_NOFOLLOW on a symlink: ELOOP from the kernel; with O_PATH the link itself opens.
    symlink(
        env.home().join("public/file"),
        env.home().join("public/link"),
    )
    .unwrap();
    assert_eq!(
        open(&env, &env.h("public/link"), &["rdonly", "nofollow"]),
        "ERR ELOOP"
    );
    assert_eq!(
        open(&env, &env.h("public/link"), &["path", "nofollow"]),
        "OK"
    );
    // Plain reads through the link still work (the slow path takes over).
    assert_eq!(open(&env, &env.h("public/link"), &["rdonly"]), "OK");
    env.broker
        .assert_none("for allowed opens", |e| e.target.contains("/public/"));
}

#[test]
fn tmpfile_opens_work_and_are_writes() {
    let env = Env::new("p-tmpfile");
    assert_eq!(
        open(&env, &env.h("public"), &["rdwr", "tmpfile", "write"]),
        "OK"
    );
    assert_eq!(
        open(&env, &env.h("protected"), &["rdwr", "tmpfile"]),
        "ERR EACCES"
    );
    env.broker.wait_for("tmpfile in protected", |e| {
        e.rule == "protected-tree" && e.action == "write" && e.target == env.h("protected")
    });
}

#[test]
fn proc_self_fd_of_a_denied_file_is_denied() {
    let env = Env::new("p-procfd");
    for name in ["/proc/self/fd/0", "/dev/stdin", "/dev/fd/0"] {
        // The file was opened by the test (outside the guard) and handed over as stdin.
        let f = std::fs::File::open(env.home().join("secret/key")).unwrap();
        let mut c = env.cmd(paths_bin());
        c.arg(name).arg("rdonly").stdin(Stdio::from(f));
        let (o, e, _) = out(c);
        assert_eq!(o.trim(), "ERR EACCES", "{name}; stderr: {e}");
    }
    let f = std::fs::File::open(env.home().join("public/file")).unwrap();
    let mut c = env.cmd(paths_bin());
    c.arg("/proc/self/fd/0").arg("rdonly").stdin(Stdio::from(f));
    assert_eq!(out(c).0.trim(), "OK");
    let e = env
        .broker
        .wait_for("deny via /proc/self/fd", |e| e.rule == "secret-files");
    assert_eq!(e.target, env.h("secret/key"));
}

#[test]
fn relative_dotdot_after_a_symlinked_dir_is_judged_on_the_real_path() {
    let env = Env::new("p-dotdot");
    std::fs::create_dir_all(env.home().join("secret/sub")).unwrap();
    symlink(env.home().join("secret/sub"), env.home().join("public/sl")).unwrap();
    // Lexically `public/key` (allowed, absent); really `secret/sub/../key` = `secret/key`.
    assert_eq!(
        open_in(&env, Some("public"), "sl/../key", &["rdonly"]),
        "ERR EACCES"
    );
    assert_eq!(
        open_in(&env, Some("public"), "sl/../key", &["rdonly", "fortify"]),
        "ERR EACCES"
    );
    assert_eq!(
        open_in(&env, Some("public"), "sl/../key", &["wronly", "trunc"]),
        "ERR EACCES"
    );
    assert_eq!(
        open(&env, &format!("{}/sl/../key", env.h("public")), &["rdonly"]),
        "ERR EACCES"
    );
    // `..` without a symlink is plain lexical: ../public/file from secret/sub's sibling.
    assert_eq!(
        open_in(&env, Some("public"), "../public/./file", &["rdonly"]),
        "OK"
    );
    assert_eq!(
        open_in(&env, Some("public"), "../secret/key", &["rdonly"]),
        "ERR EACCES"
    );
    assert_eq!(
        std::fs::read_to_string(env.home().join("secret/key")).unwrap(),
        "s3cret\n"
    );
    let e = env.broker.wait_for("deny via sl/..", |e| {
        e.rule == "secret-files" && e.target == env.h("secret/key")
    });
    assert_eq!(e.cwd, env.h("public"));
}

/// The allow path really is the fast one: an allowed absolute open is one `openat2` without
/// symlinks and no `readlink`/`getcwd` (skipped when strace is missing or cannot trace here).
#[test]
fn allowed_absolute_open_adds_no_syscall() {
    let Some(strace) = which("strace") else {
        eprintln!("strace not installed: skipped");
        return;
    };
    let env = Env::new("p-strace");
    let log = env.sb.root.join("strace.log");
    let mut c = env.cmd(strace);
    c.arg("-f")
        .arg("-o")
        .arg(&log)
        .args(["-e", "trace=open,openat,openat2,readlink,readlinkat,getcwd"])
        .arg(paths_bin())
        .arg(env.h("public/file"))
        .arg("rdonly");
    let (o, e, _) = out(c);
    if !log.exists() {
        eprintln!("strace could not run here ({e}): skipped");
        return;
    }
    assert_eq!(o.trim(), "OK", "stderr: {e}");
    let trace = std::fs::read_to_string(&log).unwrap();
    let target = env.h("public/file");
    let lines: Vec<&str> = trace.lines().filter(|l| l.contains(&target)).collect();
    assert_eq!(lines.len(), 1, "one syscall names the file: {trace}");
    assert!(
        lines[0].contains("openat2(") && lines[0].contains("RESOLVE_NO_SYMLINKS"),
        "{trace}"
    );
    let after = trace.split(lines[0]).nth(1).unwrap_or("");
    assert!(
        !after.contains("/proc/self/fd") && !after.contains("getcwd("),
        "no readback after the open: {trace}"
    );
}

/// A denied program found by a PATH search is decided once, on the resolved program: one event
/// and one stderr line, whoever searches PATH (libc's execvp, CPython's subprocess, bash), even
/// when several PATH entries come before the one that has it.
#[test]
fn path_search_decides_once() {
    let Some(git) = which("git") else {
        eprintln!("git not installed: skipped");
        return;
    };
    let Some(py) = python() else {
        eprintln!("python3 not found: skipped");
        return;
    };
    let env = Env::new("p-execvp");
    let gitdir = git.parent().unwrap().to_string_lossy().into_owned();
    // Misses first: a missing dir, a dir without git, the sandbox's own dirs.
    let path = format!(
        "/nonexistent-guard-dir:{}:{}:/usr/local/sbin:{gitdir}:/usr/bin:/bin",
        env.h("public"),
        env.h("notes")
    );
    let probe = cc("c/probe.c", "probe-O0", &["-O0"]);
    let py_sub = "import subprocess,sys\ntry:\n    subprocess.run(['git','push','--force','origin','main'])\nexcept PermissionError:\n    print('ERR EACCES')";
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "c-execvp",
            [probe.to_string_lossy().as_ref(), "execvp", "git", "push", "--force", "origin", "main"]
                .map(String::from)
                .to_vec(),
        ),
        (
            "python-subprocess",
            vec![py.to_string_lossy().into_owned(), "-c".into(), py_sub.into()],
        ),
        (
            "python-execvp",
            vec![
                py.to_string_lossy().into_owned(),
                "-c".into(),
                "import os\ntry:\n    os.execvp('git',['git','push','--force','origin','main'])\nexcept PermissionError:\n    print('ERR EACCES')".into(),
            ],
        ),
        (
            "bash",
            ["/bin/bash", "-c", "git push --force origin main; echo status=$?"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    for (name, argv) in cases {
        let before = env
            .broker
            .events()
            .iter()
            .filter(|e| e.rule == "git-force-push")
            .count();
        let mut c = env.cmd(&argv[0]);
        c.args(&argv[1..]).env("PATH", &path);
        let (o, e, _) = out(c);
        if name == "bash" {
            assert!(o.contains("status=126"), "{name}: {o} {e}");
        } else {
            assert!(o.contains("ERR EACCES"), "{name}: {o} {e}");
        }
        let lines = e
            .lines()
            .filter(|l| l.contains("guard: exec of git denied by rule git-force-push"))
            .count();
        assert_eq!(lines, 1, "{name}: one stderr line: {e}");
        env.broker.wait_for("the deny", |ev| {
            ev.rule == "git-force-push" && ev.action == "exec"
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let evs: Vec<_> = env
            .broker
            .events()
            .into_iter()
            .filter(|e| e.rule == "git-force-push")
            .collect();
        assert_eq!(evs.len() - before, 1, "{name}: one event: {evs:#?}");
        assert_eq!(evs.last().unwrap().decision, "deny");
    }
}

/// Relative names are judged against the directory the process is in *now*: the fast path
/// remembers the current directory, and every way to change it (`chdir`, `fchdir`, and
/// `syscall(SYS_chdir)`) makes it ask again. Python drives all three in one process.
#[test]
fn relative_names_follow_every_change_of_directory() {
    let Some(py) = python() else {
        eprintln!("python3 not found: skipped");
        return;
    };
    let env = Env::new("p-chdir");
    std::fs::write(env.home().join("public/key"), "public key file\n").unwrap();
    let script = r#"
import ctypes, os, sys
pub, sec = sys.argv[1], sys.argv[2]
def read(tag, name="key"):
    try:
        with open(name) as f:
            print(tag, "OK", f.read().strip())
    except PermissionError:
        print(tag, "EACCES")
for _ in range(3):
    os.chdir(pub); read("chdir-public")
    os.chdir(sec); read("chdir-secret")
fd = os.open(pub, os.O_RDONLY); os.fchdir(fd); read("fchdir-public")
fd = os.open(os.path.dirname(sec), os.O_RDONLY); os.fchdir(fd); read("fchdir-home", "secret/key")
os.chdir(pub); read("back-public")
libc = ctypes.CDLL(None, use_errno=True)
assert libc.syscall(80, sec.encode()) == 0  # SYS_chdir on x86_64
read("syscall-secret")
"#;
    let mut c = env.cmd(py);
    c.args(["-c", script])
        .arg(env.h("public"))
        .arg(env.h("secret"));
    let (o, e, code) = out(c);
    assert_eq!(code, Some(0), "{o}\n{e}");
    let lines: Vec<&str> = o.lines().collect();
    let mut want = Vec::new();
    for _ in 0..3 {
        want.push("chdir-public OK public key file");
        want.push("chdir-secret EACCES");
    }
    want.extend([
        "fchdir-public OK public key file",
        "fchdir-home EACCES",
        "back-public OK public key file",
    ]);
    if cfg!(target_arch = "x86_64") {
        want.push("syscall-secret EACCES");
    }
    assert_eq!(lines, want, "stderr: {e}");
    env.broker.wait_for("a relative read of the secret", |e| {
        e.rule == "secret-files" && e.target == env.h("secret/key")
    });
}

/// A vfork child shares the library's memory but not the parent's directory: a child that
/// changes directory and opens a relative name before its exec must not leave its directory
/// remembered as the parent's. The parent then opened the child's file of that name (judged,
/// so never a file the policy refuses, but the wrong file).
#[test]
fn a_vfork_child_changing_directory_does_not_move_the_parent() {
    let env = Env::new("p-vfork-cwd");
    std::fs::write(env.home().join("public/notes.txt"), "parent's notes\n").unwrap();
    std::fs::write(env.home().join("drafts/notes.txt"), "child's notes\n").unwrap();
    let bin = cc("c/vfork_chdir.c", "vfork_chdir", &["-O2"]);
    let mut c = env.cmd(&bin);
    c.current_dir(env.h("public"))
        .arg(env.h("drafts"))
        .arg("notes.txt");
    let (o, e, code) = out(c);
    assert_eq!(code, Some(0), "{o}\n{e}");
    assert_eq!(
        o.lines().collect::<Vec<_>>(),
        ["child child's notes", "parent parent's notes"],
        "stderr: {e}"
    );
}
