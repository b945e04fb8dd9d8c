//! Redacted reads under `guardctl run` with the default policy: files under `redact` rules
//! (`~/.aws/credentials`, `{workspace}/.env`) and secrets found by content in the workspace are
//! seen as `REDACTED_BY_POLICY` by bash, C (read, pread, readv, mmap, fstat, fread, fgets),
//! Python and Node; writes to such files are refused and the files never change; and none of the
//! planted secrets (generated at test time) reach the state directory or guardctl's output.

use guard_e2e::{Sandbox, guardctl_path, repo_root, target_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const R: &str = "REDACTED_BY_POLICY";

/// Secret-shaped values, unique per run.
struct Secrets {
    aws_id: String,
    aws_secret: String,
    ghp: String,
    db_password: String,
    stripe: String,
}

struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(7);
        Rng(t ^ ((std::process::id() as u64) << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn s(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Secrets {
    fn new() -> Secrets {
        let mut r = Rng::new();
        Secrets {
            aws_id: format!("AKIA{}", r.s(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            aws_secret: r.s(ALNUM, 40),
            ghp: format!("ghp_{}", r.s(ALNUM, 36)),
            db_password: r.s(ALNUM, 24),
            stripe: format!("sk_live_{}", r.s(ALNUM, 32)),
        }
    }
    fn all(&self) -> [&str; 5] {
        [
            &self.aws_id,
            &self.aws_secret,
            &self.ghp,
            &self.db_password,
            &self.stripe,
        ]
    }
    /// Plants the credentials file, a `.env`, and a note with a pasted token.
    fn plant(&self, sb: &Sandbox) {
        let aws = sb.home().join(".aws");
        std::fs::create_dir_all(&aws).expect("mkdir .aws");
        std::fs::write(aws.join("credentials"), self.credentials()).expect("credentials");
        std::fs::write(sb.workspace().join(".env"), self.dotenv()).expect(".env");
        std::fs::create_dir_all(sb.workspace().join("docs")).expect("docs");
        std::fs::write(
            sb.workspace().join("docs/notes.md"),
            format!("# Notes\nthe bot uses {} for now\n", self.ghp),
        )
        .expect("notes");
        std::fs::write(
            sb.workspace().join("docs/clean.md"),
            "# Clean\nnothing to see here\n",
        )
        .expect("clean");
    }
    fn credentials(&self) -> String {
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = eu-west-1\n",
            self.aws_id, self.aws_secret
        )
    }
    fn dotenv(&self) -> String {
        format!(
            "# app settings\nDEBUG=1\nDB_PASSWORD={}\nSTRIPE_KEY=\"{}\"\nPORT=8080\n",
            self.db_password, self.stripe
        )
    }
    /// Every secret and every 8-byte window of each.
    fn needles(&self) -> Vec<String> {
        let mut v = Vec::new();
        for s in self.all() {
            let b = s.as_bytes();
            for w in b.windows(8) {
                // Windows of the fixed prefixes are not secret (`AKIA`, `ghp_`, `sk_live_`).
                let w = String::from_utf8_lossy(w).into_owned();
                if !["sk_live_"].contains(&w.as_str()) {
                    v.push(w);
                }
            }
        }
        v
    }
}

fn guardctl(sb: &Sandbox) -> Command {
    let mut c = Command::new(guardctl_path());
    c.current_dir(sb.workspace())
        .env("HOME", sb.home())
        .env("GUARD_STATE_DIR", sb.state())
        .env_remove("LD_PRELOAD")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("GUARD_LIB");
    c
}

fn run(sb: &Sandbox, argv: &[&str]) -> Output {
    guardctl(sb)
        .arg("run")
        .arg("--")
        .args(argv)
        .output()
        .expect("spawn guardctl")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_clean(what: &str, s: &str, sec: &Secrets) {
    for x in sec.all() {
        assert!(!s.contains(x), "{what}: secret {x} leaked:\n{s}");
    }
}

fn readers_bin() -> PathBuf {
    let out = target_dir().join("redact-readers");
    let src = repo_root().join("tests/programs/redact/readers.c");
    let st = Command::new("cc")
        .args(["-O2", "-D_FORTIFY_SOURCE=2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "cc readers.c");
    out
}

fn libc_eacces() -> String {
    // EACCES is 13 on every Linux target.
    "13".to_string()
}

fn unhex(h: &str) -> String {
    let b: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// Runs the C reader on `file`: every read path must give the same redacted bytes, and fstat
/// their length.
fn c_reads(sb: &Sandbox, bin: &Path, file: &Path, sec: &Secrets, by_rule: bool) -> String {
    let o = run(
        sb,
        &[bin.to_str().unwrap_or(""), file.to_str().unwrap_or("")],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "readers failed: {out}\n{err}");
    let mut size = None;
    let mut contents = Vec::new();
    let mut stats = Vec::new();
    let mut rdwr = None;
    let mut reopen_size = None;
    let mut reopen_checks = 0;
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["fstat", n] => size = n.parse::<usize>().ok(),
            ["cloexec", v] => assert_eq!(*v, "1", "O_CLOEXEC is kept on the copy"),
            ["write" | "reopen-write", v] => {
                assert_eq!(*v, "-1", "writes through the read fd fail: {line}")
            }
            ["reopen-fstat", n] => reopen_size = n.parse::<usize>().ok(),
            [
                k @ ("reopen-lowest"
                | "reopen-rdonly"
                | "reopen-same-inode"
                | "reopen-first-offset"),
                v,
            ] => {
                assert_eq!(*v, "1", "{k}: {out}");
                reopen_checks += 1;
            }
            // Flags as asked: the first without, the second with O_CLOEXEC and O_NONBLOCK.
            [k @ ("reopen-cloexec" | "reopen-nonblock"), a, b] => {
                assert_eq!((*a, *b), ("0", "1"), "{k}: {out}");
                reopen_checks += 1;
            }
            ["same-inode", v] => assert_eq!(*v, "1", "fstat(fd) names the file stat(path) names"),
            [
                how @ ("stat" | "lstat" | "fstatat" | "fstatat-fd" | "statx" | "statx-fd"),
                n,
            ] => stats.push((how.to_string(), n.parse::<usize>().ok())),
            // Refused for files under a redact rule and files redacted by content alike.
            ["open-rdwr", v, e] => rdwr = Some((v.to_string(), e.to_string())),
            [how, n, hex] => {
                contents.push((how.to_string(), n.parse::<usize>().unwrap_or(0), unhex(hex)))
            }
            _ => {}
        }
    }
    let names: Vec<&str> = contents.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "read",
            "pread",
            "readv",
            "mmap",
            "reopen",
            "reopen-split",
            "fread",
            "fgets"
        ],
        "{out}"
    );
    assert_eq!(reopen_checks, 6, "{out}");
    assert_eq!(reopen_size, size, "fstat of a reopen: {out}");
    assert_eq!(stats.len(), 6, "{out}");
    for (how, n) in &stats {
        assert_eq!(
            *n, size,
            "{how} of the path reports the redacted size: {out}"
        );
    }
    assert_eq!(
        rdwr,
        Some(("-1".to_string(), libc_eacces())),
        "O_RDWR open of a redacted file is refused with EACCES (by rule: {by_rule}): {out}"
    );
    let first = contents[0].2.clone();
    for (how, n, c) in &contents {
        assert_eq!(c, &first, "{how} differs from read");
        assert_eq!(Some(*n), size, "{how}: fstat size is the redacted size");
    }
    assert!(first.contains(R), "{first}");
    assert_clean("C readers", &first, sec);
    first
}

#[test]
fn redact_rule_files_read_redacted_through_every_path() {
    let sb = Sandbox::new("redact-c");
    let sec = Secrets::new();
    sec.plant(&sb);
    let bin = readers_bin();
    let creds = sb.home().join(".aws/credentials");
    let got = c_reads(&sb, &bin, &creds, &sec, true);
    assert!(
        got.contains("region = eu-west-1"),
        "structure is kept: {got}"
    );
    assert!(
        got.contains("aws_access_key_id = REDACTED_BY_POLICY"),
        "{got}"
    );
    let env = c_reads(&sb, &bin, &sb.workspace().join(".env"), &sec, true);
    assert!(env.contains("DB_PASSWORD=REDACTED_BY_POLICY"), "{env}");
    assert!(env.contains("PORT=8080"), "{env}");
    // Content detection: a note no path rule names.
    let notes = c_reads(
        &sb,
        &bin,
        &sb.workspace().join("docs/notes.md"),
        &sec,
        false,
    );
    assert!(notes.contains("the bot uses REDACTED_BY_POLICY"), "{notes}");
    // The files on disk never change.
    assert_eq!(
        std::fs::read_to_string(&creds).unwrap_or_default(),
        sec.credentials()
    );
    assert_eq!(
        std::fs::read_to_string(sb.workspace().join(".env")).unwrap_or_default(),
        sec.dotenv()
    );
}

#[test]
fn redact_bash_cat_grep_cp_and_hard_link() {
    let sb = Sandbox::new("redact-bash");
    let sec = Secrets::new();
    sec.plant(&sb);
    let o = run(
        &sb,
        &[
            "bash",
            "-c",
            "cat ~/.aws/credentials; echo ---; cat .env; echo ---; grep -r -h -e bot -e PASSWORD -e STRIPE . ; echo ---; \
             cp .env cp.env && cat cp.env; echo cp=$?; cat .env > copy.env && cat copy.env; echo ---; ln ~/.aws/credentials linked && cat linked; echo ---; \
             echo more >> .env; echo append=$?; : > ~/.aws/credentials; echo trunc=$?",
        ],
    );
    let (out, err) = text(&o);
    assert_clean("bash stdout", &out, &sec);
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 6, "{out}\n{err}");
    assert!(
        parts[0].contains("aws_secret_access_key = REDACTED_BY_POLICY"),
        "{out}"
    );
    assert!(parts[1].contains("DB_PASSWORD=REDACTED_BY_POLICY"), "{out}");
    assert!(
        parts[2].contains("the bot uses REDACTED_BY_POLICY"),
        "grep -r: {out}"
    );
    assert!(
        parts[2].contains("DB_PASSWORD=REDACTED_BY_POLICY"),
        "grep -r: {out}"
    );
    // GNU cp compares stat(path) with fstat(fd) (device and inode): the fd reports the file's
    // identity with the copy's size, so cp copies, and the copy holds the redacted content
    // (on disk too), like copies through a read (`cat >`, Python's shutil).
    assert!(parts[3].contains("cp=0"), "{out}\n{err}");
    let cp = std::fs::read_to_string(sb.workspace().join("cp.env")).unwrap_or_default();
    assert!(
        cp.contains("DB_PASSWORD=REDACTED_BY_POLICY") && cp.contains("PORT=8080"),
        "{cp}"
    );
    assert_clean("cp copy", &cp, &sec);
    assert_eq!(
        parts[3].matches("DB_PASSWORD=REDACTED_BY_POLICY").count(),
        2,
        "cat of the cp copy and of the cat copy: {out}"
    );
    let copy = std::fs::read_to_string(sb.workspace().join("copy.env")).unwrap_or_default();
    assert!(
        copy.contains(R) && !copy.contains(&sec.db_password),
        "{copy}"
    );
    // A hard link would be a name the path rule does not cover: it is refused (and `cat`
    // never runs).
    assert!(!parts[4].contains("aws_access_key_id"), "{out}");
    assert!(!sb.workspace().join("linked").exists());
    // Writes are refused; nothing changed.
    assert!(
        parts[5].contains("append=1") && parts[5].contains("trunc=1"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.workspace().join(".env")).unwrap_or_default(),
        sec.dotenv()
    );
    assert_eq!(
        std::fs::read_to_string(sb.home().join(".aws/credentials")).unwrap_or_default(),
        sec.credentials()
    );
}

const PY: &str = r#"
import os, mmap, sys
home = os.path.expanduser("~")
for p in [home + "/.aws/credentials", ".env", "docs/notes.md"]:
    with open(p) as f:
        print(f.read())
    with open(p, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        print("mmap-equal", m[:] == open(p, "rb").read(), os.fstat(f.fileno()).st_size == len(m))
try:
    open(".env", "a").write("X=1\n")
    print("append-ok")
except PermissionError:
    print("append-refused")
for p in ["docs/notes.md", "docs/clean.md"]:
    try:
        with open(p, "r+") as f:
            print("rdwr-ok", p, len(f.read()))
    except PermissionError:
        print("rdwr-refused", p)
# A forked child reopens the copies its parent kept (its own /proc/self/fd, not the parent's).
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    print("child", open("docs/notes.md").read().strip(), open(".env").read().count("REDACTED_BY_POLICY"))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
"#;

const NODE: &str = r#"
const fs = require('fs'), os = require('os');
for (const p of [os.homedir() + '/.aws/credentials', '.env', 'docs/notes.md']) {
  console.log(fs.readFileSync(p, 'utf8'));
  console.log('size-equal', fs.statSync(p).size >= 0 && fs.fstatSync(fs.openSync(p, 'r')).size === fs.readFileSync(p).length);
}
try { fs.appendFileSync('.env', 'X=1\n'); console.log('append-ok'); }
catch (e) { console.log('append-refused', e.code); }
"#;

#[test]
fn redact_python_and_node() {
    let sb = Sandbox::new("redact-py-node");
    let sec = Secrets::new();
    sec.plant(&sb);
    let o = run(&sb, &["python3", "-c", PY]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_clean("python", &out, &sec);
    assert!(
        out.contains("child # Notes\nthe bot uses REDACTED_BY_POLICY for now 2\n"),
        "{out}"
    );
    assert_eq!(out.matches(R).count(), 6, "{out}");
    assert_eq!(out.matches("mmap-equal True True").count(), 3, "{out}");
    assert!(out.contains("append-refused"), "{out}");
    // A file only content detection redacts: its read-write open is refused too; a clean file
    // in the same directory opens read-write.
    assert!(out.contains("rdwr-refused docs/notes.md"), "{out}");
    assert!(out.contains("rdwr-ok docs/clean.md"), "{out}");

    let o = run(&sb, &["node", "-e", NODE]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_clean("node", &out, &sec);
    assert_eq!(out.matches(R).count(), 5, "{out}");
    assert_eq!(out.matches("size-equal true").count(), 3, "{out}");
    assert!(out.contains("append-refused EACCES"), "{out}");
}

/// Every agent reads every planted secret; then no byte sequence of 8+ characters of any
/// secret may appear in any file under the state directory or in guardctl's own output.
#[test]
fn redact_no_secret_reaches_our_records() {
    let sb = Sandbox::new("redact-noleak");
    let sec = Secrets::new();
    sec.plant(&sb);
    let bin = readers_bin();
    let creds = sb.home().join(".aws/credentials");
    let mut outputs = Vec::new();
    for argv in [
        vec![
            "bash",
            "-c",
            "cat ~/.aws/credentials .env docs/notes.md; grep -r bot .",
        ],
        vec!["python3", "-c", PY],
        vec!["node", "-e", NODE],
        vec![bin.to_str().unwrap_or(""), creds.to_str().unwrap_or("")],
    ] {
        let o = run(&sb, &argv);
        let (out, err) = text(&o);
        let hex_r: String = R.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            out.contains(R) || out.contains(&hex_r),
            "{argv:?} read nothing redacted: {out}\n{err}"
        );
        // The agent's stdout is the agent's; guardctl's own lines go to stderr.
        outputs.push(err);
    }
    let needles = sec.needles();
    let mut files = Vec::new();
    collect(&sb.state(), &mut files);
    assert!(!files.is_empty(), "no state written");
    let mut events = 0;
    for f in &files {
        let body = String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
        events += body.matches("\"decision\":\"redact\"").count();
        for n in &needles {
            assert!(
                !body.contains(n.as_str()),
                "{} holds secret bytes {n}",
                f.display()
            );
        }
    }
    assert!(events >= 4, "redaction events recorded: {events}");
    for (i, e) in outputs.iter().enumerate() {
        for n in &needles {
            assert!(
                !e.contains(n.as_str()),
                "guardctl stderr #{i} holds {n}: {e}"
            );
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// The per-process copy cache never serves stale content: a change made to the file (by the
/// test, outside the guard: the agent's own write-class opens of a file it reads redacted are
/// refused, even through a hard link no rule names) shows up, redacted, on the next open.
#[test]
fn redact_reopen_sees_changes() {
    let sb = Sandbox::new("redact-reopen");
    let sec = Secrets::new();
    sec.plant(&sb);
    std::fs::hard_link(sb.workspace().join(".env"), sb.workspace().join("envlink")).expect("link");
    let py = "import os, time\nfor i in range(3):\n    print(open('.env').read())\n\
              try:\n    open('envlink', 'a')\n    print('link-append-ok')\nexcept PermissionError:\n    print('link-append-refused')\n\
              open('ready', 'w').close()\n\
              for _ in range(2000):\n    if os.path.exists('go'): break\n    time.sleep(0.005)\n\
              print(open('.env').read())\nprint(open('envlink').read())\n";
    let child = guardctl(&sb)
        .args(["run", "--", "python3", "-c", py])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn guardctl");
    let ready = sb.workspace().join("ready");
    let t0 = std::time::Instant::now();
    while !ready.exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(ready.exists(), "the guarded script did not get ready");
    // Same size would keep the size key; the ctime changes anyway.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(sb.workspace().join(".env"))
        .expect("open .env");
    std::io::Write::write_all(
        &mut f,
        format!("NEW_TOKEN={}\nADDED=yes\n", sec.ghp).as_bytes(),
    )
    .expect("append");
    drop(f);
    std::fs::write(sb.workspace().join("go"), "").expect("go");
    let o = child.wait_with_output().expect("wait");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_clean("python", &out, &sec);
    assert!(out.contains("link-append-refused"), "{out}");
    let reads: Vec<&str> = out.split("# app settings").skip(1).collect();
    assert_eq!(reads.len(), 5, "{out}");
    for r in &reads[..3] {
        assert!(!r.contains("ADDED=yes"), "{out}");
    }
    for r in &reads[3..] {
        assert!(
            r.contains("NEW_TOKEN=REDACTED_BY_POLICY") && r.contains("ADDED=yes"),
            "{out}"
        );
    }
}

/// A file replaced while a process holds its redacted copy is read anew, redacted, on the next
/// open, whichever way it was replaced and even at the same size: renamed over (a new inode) or
/// rewritten in place (new mtime and ctime). Both kinds of copy: `.env` (a `redact` rule, opened
/// by a relative name) and a note redacted by content detection (opened by its absolute name).
#[test]
fn redact_reopen_sees_replacements_of_the_same_size() {
    let sb = Sandbox::new("redact-replace");
    let ws = sb.workspace();
    let versions = [Secrets::new(), Secrets::new(), Secrets::new()];
    let env = |i: usize| {
        versions[i]
            .dotenv()
            .replace("PORT=8080", &format!("PORT=808{i}"))
    };
    let note = |i: usize| format!("# Rot v{i}\nthe bot uses {} today\n", versions[i].ghp);
    assert_eq!(env(0).len(), env(1).len());
    assert_eq!(note(0).len(), note(2).len());
    std::fs::create_dir_all(ws.join("docs")).expect("docs");
    std::fs::write(ws.join(".env"), env(0)).expect(".env");
    std::fs::write(ws.join("docs/rot.md"), note(0)).expect("note");
    let py = "import os, time\n\
              note = os.path.abspath('docs/rot.md')\n\
              for phase in range(3):\n\
              \x20   for _ in range(2):\n\
              \x20       print('ENV', open('.env').read())\n\
              \x20       print('NOTE', open(note).read())\n\
              \x20   if phase == 2: break\n\
              \x20   open(f'ready{phase}', 'w').close()\n\
              \x20   for _ in range(4000):\n\
              \x20       if os.path.exists(f'go{phase}'): break\n\
              \x20       time.sleep(0.005)\n";
    let child = guardctl(&sb)
        .args(["run", "--", "python3", "-c", py])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn guardctl");
    let wait_for = |name: &str| {
        let f = ws.join(name);
        let t0 = std::time::Instant::now();
        while !f.exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(f.exists(), "the guarded script did not reach {name}");
    };
    let rename_over = |name: &str, text: &str| {
        let tmp = ws.join("replacement.tmp");
        std::fs::write(&tmp, text).expect("write replacement");
        std::fs::rename(&tmp, ws.join(name)).expect("rename over");
    };
    wait_for("ready0");
    rename_over(".env", &env(1));
    std::fs::write(ws.join("docs/rot.md"), note(1)).expect("rewrite note");
    std::fs::write(ws.join("go0"), "").expect("go0");
    wait_for("ready1");
    std::fs::write(ws.join(".env"), env(2)).expect("rewrite .env");
    rename_over("docs/rot.md", &note(2));
    std::fs::write(ws.join("go1"), "").expect("go1");
    let o = child.wait_with_output().expect("wait");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for v in &versions {
        assert_clean("python", &out, v);
    }
    let envs: Vec<&str> = out.split("ENV ").skip(1).collect();
    let notes: Vec<&str> = out.split("NOTE ").skip(1).collect();
    assert_eq!((envs.len(), notes.len()), (6, 6), "{out}");
    for (i, (e, n)) in envs.iter().zip(&notes).enumerate() {
        let phase = i / 2;
        assert!(
            e.contains(&format!("PORT=808{phase}")) && e.contains("DB_PASSWORD=REDACTED_BY_POLICY"),
            "read {i} of .env: {out}"
        );
        assert!(
            n.contains(&format!("# Rot v{phase}")) && n.contains("the bot uses REDACTED_BY_POLICY"),
            "read {i} of the note: {out}"
        );
    }
}

/// A kept copy is served by the name it was made for, whatever the spelling: a relative name
/// is the current directory's, so after a `chdir` the same relative name reads the other
/// directory's file (its own copy), and `./.env`, `sub/../.env` and the absolute name read the
/// first one again. Every read redacted, none stale.
#[test]
fn redact_reopen_by_relative_name_follows_the_current_directory() {
    let sb = Sandbox::new("redact-relative");
    let ws = sb.workspace();
    let (a, b) = (Secrets::new(), Secrets::new());
    for (dir, sec, port) in [("a", &a, "8081"), ("b", &b, "8082")] {
        std::fs::create_dir_all(ws.join(dir).join("sub")).expect("dir");
        std::fs::write(
            ws.join(dir).join(".env"),
            sec.dotenv().replace("PORT=8080", &format!("PORT={port}")),
        )
        .expect(".env");
    }
    let py = "import os\n\
              os.chdir('a')\n\
              for _ in range(2): print('READ', open('.env').read())\n\
              os.chdir('../b')\n\
              for _ in range(2): print('READ', open('.env').read())\n\
              os.chdir('../a')\n\
              for n in ['./.env', 'sub/../.env', os.path.abspath('.env'), '.env']:\n\
              \x20   print('READ', open(n).read())\n";
    let o = run(&sb, &["python3", "-c", py]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_clean("python", &out, &a);
    assert_clean("python", &out, &b);
    let reads: Vec<&str> = out.split("READ ").skip(1).collect();
    assert_eq!(reads.len(), 8, "{out}");
    let ports = [
        "8081", "8081", "8082", "8082", "8081", "8081", "8081", "8081",
    ];
    for (i, (r, port)) in reads.iter().zip(ports).enumerate() {
        assert!(
            r.contains(&format!("PORT={port}")) && r.contains("DB_PASSWORD=REDACTED_BY_POLICY"),
            "read {i}: {out}"
        );
    }
}

/// A forked child reopens the parent's kept copy (through the `/proc/<parent>/fd` directory it
/// inherited) while the parent lives, and its own inherited copy once the parent has exited.
#[test]
fn redact_reopen_in_a_forked_child() {
    let sb = Sandbox::new("redact-fork");
    let sec = Secrets::new();
    sec.plant(&sb);
    // The parent reads twice: the second read is served from the copy and opens the parent's
    // `/proc/self/fd` directory fd, which the child inherits.
    let py = "import os, sys, time\n\
              print('PARENT', open('.env').read(), flush=True)\n\
              print('PARENT', open('.env').read(), flush=True)\n\
              parent = os.getpid()\n\
              r, w = os.pipe()\n\
              if os.fork() == 0:\n\
              \x20   print('LIVE', open('.env').read(), flush=True)\n\
              \x20   os.write(w, b'x')\n\
              \x20   for _ in range(4000):\n\
              \x20       if os.getppid() != parent: break\n\
              \x20       time.sleep(0.005)\n\
              \x20   print('ORPHAN', os.getppid() != parent, open('.env').read(), flush=True)\n\
              \x20   print('ORPHAN', os.getppid() != parent, open('.env').read(), flush=True)\n\
              \x20   os._exit(0)\n\
              os.read(r, 1)\n";
    let o = run(&sb, &["python3", "-c", py]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_clean("python", &out, &sec);
    for tag in ["PARENT ", "LIVE ", "ORPHAN True "] {
        assert!(out.contains(tag), "{tag}: {out}");
    }
    let reads: Vec<&str> = out.split("# app settings").skip(1).collect();
    assert_eq!(reads.len(), 5, "{out}");
    for r in reads {
        assert!(
            r.contains("DB_PASSWORD=REDACTED_BY_POLICY") && r.contains("PORT=8080"),
            "{out}"
        );
    }
}

/// The content scope is the policy's `[secrets] scope`/`exclude`: an excluded directory of the
/// workspace is read as is, an extra directory outside the workspace and HOME is redacted; a
/// policy `[[secret]]` detector is used, entropy floor included.
#[test]
fn redact_scope_and_custom_detectors_come_from_the_policy() {
    let sb = Sandbox::new("redact-scope");
    let sec = Secrets::new();
    let extra = sb.root.join("extra");
    std::fs::create_dir_all(&extra).expect("extra");
    std::fs::create_dir_all(sb.workspace().join("private")).expect("private");
    std::fs::create_dir_all(sb.workspace().join("docs")).expect("docs");
    let note = format!("the bot uses {} for now\n", sec.ghp);
    for p in [
        extra.join("notes.md"),
        sb.workspace().join("private/notes.md"),
        sb.workspace().join("docs/notes.md"),
        sb.root.join("outside.md"),
    ] {
        std::fs::write(&p, &note).expect("write note");
    }
    let mut r = Rng::new();
    let corp = format!("corp_{}", r.s(b"abcdefghijklmnopqrstuvwxyz0123456789", 12));
    std::fs::write(
        sb.workspace().join("docs/corp.txt"),
        format!("high={corp}\nlow=corp_aaaaaaaaaaaa\n"),
    )
    .expect("corp");
    let pol = sb.root.join("p.toml");
    std::fs::write(
        &pol,
        format!(
            "[policy]\nname = \"t\"\ndefault = \"allow\"\nmode = \"enforce\"\n\n\
             [secrets]\nscope = [\"{{workspace}}/**\", \"{}/**\"]\nexclude = [\"{{workspace}}/private/**\"]\n\n\
             [[secret]]\nid = \"corp-token\"\nregex = 'corp_(?P<secret>[a-z0-9]{{12}})'\nkeywords = [\"corp_\"]\n\
             entropy = 2.5\nexamples = {{ match = [\"corp_q8z3m1x7k2p4\"], no_match = [\"corp_aaaaaaaaaaaa\"] }}\n",
            extra.display()
        ),
    )
    .expect("policy");
    let o = guardctl(&sb)
        .args(["run", "--policy"])
        .arg(&pol)
        .args(["--", "bash", "-c"])
        .arg(format!(
            "cat {}/notes.md; echo ---; cat private/notes.md; echo ---; cat docs/notes.md; echo ---; cat {}; echo ---; cat docs/corp.txt",
            extra.display(),
            sb.root.join("outside.md").display()
        ))
        .output()
        .expect("spawn guardctl");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 5, "{out}\n{err}");
    // An extra scope directory starts redaction there.
    assert_eq!(
        parts[0], "the bot uses REDACTED_BY_POLICY for now\n",
        "{out}"
    );
    // An excluded directory stops it.
    assert_eq!(parts[1], note, "{out}");
    assert_eq!(
        parts[2], "the bot uses REDACTED_BY_POLICY for now\n",
        "{out}"
    );
    // Outside every scope glob: not scanned.
    assert_eq!(parts[3], note, "{out}");
    // The policy's detector, with its entropy floor.
    assert_eq!(
        parts[4], "high=corp_REDACTED_BY_POLICY\nlow=corp_aaaaaaaaaaaa\n",
        "{out}"
    );
}
