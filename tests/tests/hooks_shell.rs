//! bash under libguard: redirections, cat, rm, `env -i`, `unset LD_PRELOAD`.

mod hooks_support;

use hooks_support::*;

fn bash(env: &Env, script: &str) -> (String, String, Option<i32>) {
    let mut c = env.cmd("/bin/bash");
    c.args(["-c", script]);
    out(c)
}

#[test]
fn bash_redirections_and_tools() {
    let env = Env::new("sh-files");
    let (o, e, code) = bash(&env, &format!("cat {}", env.h("secret/key")));
    assert_eq!((o.as_str(), code), ("", Some(1)));
    assert!(e.contains("Permission denied"), "{e}");
    let (_, e, code) = bash(&env, &format!("echo pwned > {}", env.h("protected/file")));
    assert_eq!(code, Some(1));
    assert!(e.contains("Permission denied"), "{e}");
    let (_, e, code) = bash(&env, &format!("echo more >> {}", env.h("protected/file")));
    assert_eq!(code, Some(1), "{e}");
    let (_, e, code) = bash(&env, &format!("rm -f {}", env.h("protected/file")));
    assert_eq!(code, Some(1));
    assert!(e.contains("Permission denied"), "{e}");
    assert_eq!(
        std::fs::read_to_string(env.home().join("protected/file")).unwrap(),
        "keep\n"
    );
    let (o, _, code) = bash(&env, &format!("cat < {}", env.h("public/file")));
    assert_eq!((o.as_str(), code), ("hello\n", Some(0)));
    // A second name for the key (hard link, also `ln -L` through a symlink) is refused, so the
    // `cat` after it has nothing to read.
    let (o, e, code) = bash(
        &env,
        &format!(
            "ln {k} {d}/k1; ln -s {k} {d}/sym; ln -L {d}/sym {d}/k2; cat {d}/k1 {d}/k2",
            k = env.h("secret/key"),
            d = env.h("public")
        ),
    );
    assert_eq!((o.as_str(), code), ("", Some(1)), "{e}");
    assert!(!env.home().join("public/k1").exists() && !env.home().join("public/k2").exists());
    env.broker.wait_for("cat's denied read", |e| {
        e.rule == "secret-files" && e.exe.ends_with("/cat")
    });
}

#[test]
fn bash_cannot_shed_the_guard() {
    let env = Env::new("sh-env");
    let lib = env.lib.display().to_string();
    let (o, _, _) = bash(&env, "env -i /usr/bin/env");
    assert!(o.contains(&format!("LD_PRELOAD={lib}\n")), "{o}");
    let (_, e, code) = bash(&env, "unset LD_PRELOAD; date");
    assert_eq!(code, Some(126), "{e}");
    assert!(
        e.contains("guard: exec of date denied by rule no-date"),
        "{e}"
    );
    // The evaluator sees through `env`: the wrapper's own exec is refused already.
    let (_, e, code) = bash(&env, "env -i date");
    assert_eq!(code, Some(126));
    assert!(
        e.contains("guard: exec of env denied by rule no-date"),
        "{e}"
    );
    let (_, e, _) = bash(
        &env,
        &format!(
            "unset LD_PRELOAD; env -i bash -c 'cat {}'",
            env.h("secret/key")
        ),
    );
    assert!(e.contains("Permission denied"), "{e}");
}

/// An exec rule knows a program by name; a symlink under another name leads to the same
/// program and is judged as it (`ln -s $(which date) d; ./d` is the denied `date`).
#[test]
fn a_symlink_to_a_denied_program_is_that_program() {
    let env = Env::new("sh-symlink-exec");
    let date = which("date").expect("date");
    let link = env.home().join("public/d");
    std::os::unix::fs::symlink(&date, &link).unwrap();
    let (o, e, _) = bash(&env, &format!("{} +%Y; echo rc=$?", link.display()));
    assert!(o.contains("rc=126"), "the link must not run: {o} {e}");
    assert!(e.contains("denied by rule no-date"), "{e}");
    env.broker.wait_for("the link's exec deny", |e| {
        e.action == "exec" && e.rule == "no-date" && e.target.starts_with(&*link.to_string_lossy())
    });
    // A link to an allowed program still runs.
    let echo = which("echo").expect("echo");
    let ok = env.home().join("public/e");
    std::os::unix::fs::symlink(&echo, &ok).unwrap();
    let (o, _, _) = bash(&env, &format!("{} hi", ok.display()));
    assert_eq!(o.trim(), "hi");
}

/// An interpreter runs its script as the command: a script named like a denied program is that
/// program whether it is exec'd itself or handed to `sh`, `bash` or `python3` (`python3 $(which
/// aws) s3 rb` is `aws s3 rb`); inline code (`sh -c`) is judged at the execs it makes.
#[test]
fn an_interpreter_running_a_script_is_that_script() {
    let env = Env::new("sh-interp");
    let script = env.home().join("public/date");
    std::fs::write(&script, "print('ran')\n").unwrap();
    let py = python().expect("python3");
    for cmd in [
        format!("sh {}; echo rc=$?", script.display()),
        format!("bash -e {} x; echo rc=$?", script.display()),
        format!("{} -u {}; echo rc=$?", py.display(), script.display()),
        format!(
            "(exec -a x {} {}); echo rc=$?",
            py.display(),
            script.display()
        ),
    ] {
        let (o, e, _) = bash(&env, &cmd);
        assert!(o.contains("rc=126"), "{cmd}: must not run: {o} {e}");
        assert!(e.contains("denied by rule no-date"), "{cmd}: {e}");
    }
    let (o, e, _) = bash(&env, &format!("{} -c 'print(1)'", py.display()));
    assert_eq!(o.trim(), "1", "{e}");
    let other = env.home().join("public/hello.py");
    std::fs::write(&other, "print('hello')\n").unwrap();
    let (o, e, _) = bash(&env, &format!("{} {}", py.display(), other.display()));
    assert_eq!(o.trim(), "hello", "{e}");
}

/// The dynamic loader runs its operand in the same process, without an exec of its own:
/// `ld.so /usr/bin/date` (also under a forged argv[0], also with loader options) is judged as
/// `date`, and an allowed program still runs that way.
#[test]
fn the_dynamic_loader_running_a_denied_program_is_that_program() {
    let env = Env::new("sh-ld-so");
    // The loader this machine's programs name in their PT_INTERP.
    let interp = String::from_utf8(
        std::process::Command::new("sh")
            .args([
                "-c",
                "readelf -l /bin/sh | sed -n 's/.*interpreter: \\(.*\\)]/\\1/p'",
            ])
            .output()
            .expect("readelf")
            .stdout,
    )
    .unwrap();
    let ld = interp.trim();
    assert!(ld.starts_with('/'), "no interpreter found: {interp:?}");
    let date = which("date").expect("date");
    for cmd in [
        format!("{ld} {} +%Y; echo rc=$?", date.display()),
        format!(
            "{ld} --inhibit-cache --library-path /tmp {} +%Y; echo rc=$?",
            date.display()
        ),
        format!("(exec -a date {ld} {} +%Y); echo rc=$?", date.display()),
    ] {
        let (o, e, _) = bash(&env, &cmd);
        assert!(o.contains("rc=126"), "{cmd}: date must not run: {o} {e}");
        assert!(e.contains("denied by rule no-date"), "{cmd}: {e}");
    }
    env.broker.wait_for("the loader's exec deny", |e| {
        e.action == "exec" && e.rule == "no-date"
    });
    let echo = which("echo").expect("echo");
    let (o, e, _) = bash(&env, &format!("{ld} {} hi", echo.display()));
    assert_eq!(o.trim(), "hi", "{e}");
}
