//! Reading an argv the way a shell user means it: which global options take a value (so
//! `git -C repo push` has subcommand `push`), and which programs are wrappers whose payload is
//! another command (`sudo -u root env FOO=1 terraform destroy`). Everything here borrows the
//! argv and allocates nothing.

use crate::action::{Argv, EnvLookup};

/// Built-in global options that take a separate value, per program. `[programs.NAME]
/// value_options` adds to these at compile time; the writer stores the merged table.
pub const BUILTIN_VALUE_OPTIONS: &[(&str, &[&str])] = &[
    (
        "git",
        &[
            "-C",
            "-c",
            "--git-dir",
            "--work-tree",
            "--namespace",
            "--exec-path",
            "--config-env",
            "--super-prefix",
        ],
    ),
    (
        "kubectl",
        &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "--cluster",
            "--user",
            "-s",
            "--server",
            "--token",
            "--as",
            "--as-group",
            "--request-timeout",
            "-l",
            "--selector",
            "-o",
            "--output",
            "-f",
            "--filename",
        ],
    ),
    (
        "oc",
        &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "--cluster",
            "--user",
            "-s",
            "--server",
            "--token",
            "--as",
        ],
    ),
    (
        "docker",
        &[
            "-H",
            "--host",
            "--context",
            "-c",
            "--config",
            "-l",
            "--log-level",
            "--tlscacert",
            "--tlscert",
            "--tlskey",
        ],
    ),
    (
        "podman",
        &[
            "--url",
            "--connection",
            "-c",
            "--root",
            "--runroot",
            "--log-level",
            "--cgroup-manager",
        ],
    ),
    (
        "helm",
        &[
            "-n",
            "--namespace",
            "--kube-context",
            "--kubeconfig",
            "--kube-apiserver",
            "--kube-token",
            "--registry-config",
            "--repository-config",
            "--repository-cache",
        ],
    ),
    ("terraform", &[]),
    ("tofu", &[]),
    (
        "aws",
        &[
            "--profile",
            "--region",
            "--endpoint-url",
            "--output",
            "--query",
            "--cli-read-timeout",
            "--cli-connect-timeout",
            "--ca-bundle",
            "--color",
        ],
    ),
    (
        "gcloud",
        &[
            "--project",
            "--account",
            "--configuration",
            "--format",
            "--verbosity",
            "--impersonate-service-account",
            "--billing-project",
            "--flags-file",
        ],
    ),
    ("gsutil", &["-o", "-h", "-u"]),
    ("az", &["--subscription", "--output", "-o", "--query"]),
    (
        "npm",
        &[
            "-C",
            "--prefix",
            "--registry",
            "--cache",
            "--userconfig",
            "-w",
            "--workspace",
            "--loglevel",
        ],
    ),
    ("pnpm", &["-C", "--dir", "--filter", "-F", "--reporter"]),
    ("yarn", &["--cwd"]),
    (
        "cargo",
        &["-C", "--config", "-Z", "--color", "--manifest-path"],
    ),
    (
        "psql",
        &[
            "-h",
            "--host",
            "-p",
            "--port",
            "-U",
            "--username",
            "-d",
            "--dbname",
            "-c",
            "--command",
            "-f",
            "--file",
            "-v",
            "--set",
            "-o",
            "--output",
        ],
    ),
    (
        "mysql",
        &[
            "-h",
            "--host",
            "-P",
            "--port",
            "-u",
            "--user",
            "-D",
            "--database",
            "-e",
            "--execute",
        ],
    ),
    ("gh", &["-R", "--repo", "--hostname"]),
    (
        "make",
        &[
            "-C",
            "--directory",
            "-f",
            "--file",
            "--makefile",
            "-j",
            "--jobs",
            "-o",
            "-W",
            "-I",
        ],
    ),
    (
        "systemctl",
        &[
            "-H",
            "--host",
            "-M",
            "--machine",
            "-t",
            "--type",
            "-p",
            "--property",
            "--state",
            "--root",
        ],
    ),
    (
        "ssh",
        &[
            "-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o",
            "-p", "-Q", "-R", "-S", "-W", "-w",
        ],
    ),
    ("pulumi", &["-C", "--cwd", "-s", "--stack"]),
    (
        "flyctl",
        &["-a", "--app", "-c", "--config", "-t", "--access-token"],
    ),
    (
        "fly",
        &["-a", "--app", "-c", "--config", "-t", "--access-token"],
    ),
    ("railway", &["-s", "--service", "-e", "--environment"]),
    (
        "vercel",
        &[
            "--cwd",
            "-A",
            "--local-config",
            "-S",
            "--scope",
            "-t",
            "--token",
        ],
    ),
];

/// How a wrapper's own options are laid out before its payload command.
pub(crate) struct WrapperSpec {
    pub name: &'static str,
    /// Options that consume the next argument when written alone.
    pub value_opts: &'static [&'static str],
    /// Positional arguments between the options and the payload (timeout's duration).
    pub positionals: usize,
    /// Options after which the program runs code given inline (`python3 -c`, `node -e`,
    /// `sh -c`): there is then no payload here (what that code execs is judged at its exec).
    /// A short one also counts inside a cluster (`-Bc`).
    pub code_opts: &'static [&'static str],
}

pub(crate) const WRAPPERS: &[WrapperSpec] = &[
    WrapperSpec {
        name: "env",
        value_opts: &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "nice",
        value_opts: &["-n", "--adjustment"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "nohup",
        value_opts: &[],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "timeout",
        value_opts: &["-s", "--signal", "-k", "--kill-after"],
        positionals: 1,
        code_opts: &[],
    },
    WrapperSpec {
        name: "time",
        value_opts: &["-f", "--format", "-o", "--output"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "stdbuf",
        value_opts: &["-i", "--input", "-o", "--output", "-e", "--error"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "sudo",
        value_opts: &[
            "-u",
            "--user",
            "-g",
            "--group",
            "-C",
            "--close-from",
            "-D",
            "--chdir",
            "-h",
            "--host",
            "-p",
            "--prompt",
            "-r",
            "--role",
            "-t",
            "--type",
            "-U",
            "--other-user",
            "-T",
            "--command-timeout",
        ],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "doas",
        value_opts: &["-u", "-C"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "command",
        value_opts: &[],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "exec",
        value_opts: &["-a"],
        positionals: 0,
        code_opts: &[],
    },
    WrapperSpec {
        name: "xargs",
        value_opts: &[
            "-a",
            "--arg-file",
            "-d",
            "--delimiter",
            "-E",
            "-I",
            "-L",
            "--max-lines",
            "-n",
            "--max-args",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "--process-slot-var",
        ],
        positionals: 0,
        code_opts: &[],
    },
];

// Sized argv/env forms, so `&slice` and owned vectors coerce to `&dyn Argv` / `&dyn EnvLookup`.
impl Argv for &[&str] {
    fn len(&self) -> usize {
        <[&str]>::len(self)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i).map(|s| s.as_bytes()).unwrap_or(b"")
    }
}

impl Argv for &[&[u8]] {
    fn len(&self) -> usize {
        <[&[u8]]>::len(self)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i).copied().unwrap_or(b"")
    }
}

impl Argv for Vec<String> {
    fn len(&self) -> usize {
        <[String]>::len(self)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i).map(|s| s.as_bytes()).unwrap_or(b"")
    }
}

impl EnvLookup for &[(&str, &str)] {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v.as_bytes())
    }
}

impl EnvLookup for Vec<(String, String)> {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v.as_bytes())
    }
}

/// The dynamic loader run as a program (`/lib64/ld-linux-x86-64.so.2 /usr/bin/git push
/// --force`) loads and runs its first operand in the same process, with no exec of its own:
/// without seeing through it, every exec rule could be sidestepped by prefixing the loader.
/// Options as glibc's `ld.so --help` lists them (those that take a value).
const DYNAMIC_LOADER: WrapperSpec = WrapperSpec {
    name: "ld.so",
    value_opts: &[
        "--library-path",
        "--inhibit-rpath",
        "--audit",
        "--preload",
        "--argv0",
        "--glibc-hwcaps-prepend",
        "--glibc-hwcaps-mask",
    ],
    positionals: 0,
    code_opts: &[],
};

/// Whether `name` (a basename) is a dynamic loader: `ld-linux-x86-64.so.2`,
/// `ld-linux-aarch64.so.1`, `ld-linux.so.2`, `ld.so`, `ld64.so.2`, `ld-2.31.so`, `ld-musl-*.so.1`.
fn is_dynamic_loader(name: &[u8]) -> bool {
    name == b"ld.so"
        || name.starts_with(b"ld64.so")
        || (name.starts_with(b"ld-") && name.windows(3).any(|w| w == b".so"))
}

/// Interpreters run their first operand, a script, as the command (`python3 $(which aws) s3 rb`
/// is `aws s3 rb`, `node .../npm-cli.js publish` is `npm-cli.js publish`): seen through like
/// the loader, so naming the interpreter cannot hide a program that is a script.
const INTERPRETERS: &[WrapperSpec] = &[
    WrapperSpec {
        name: "python",
        value_opts: &["-W", "-X", "--check-hash-based-pycs"],
        positionals: 0,
        code_opts: &["-c", "-m"],
    },
    WrapperSpec {
        name: "node",
        value_opts: &[
            "-r",
            "--require",
            "--import",
            "--loader",
            "--experimental-loader",
            "-C",
            "--conditions",
            "--input-type",
            "--env-file",
            "--inspect-port",
            "--title",
        ],
        positionals: 0,
        code_opts: &["-e", "--eval", "-p", "--print", "-i", "--interactive"],
    },
    WrapperSpec {
        name: "sh",
        value_opts: &["-o", "+o", "-O", "+O", "--rcfile", "--init-file"],
        positionals: 0,
        code_opts: &["-c", "-s", "-i"],
    },
    WrapperSpec {
        name: "perl",
        value_opts: &["-I", "-M", "-m", "-x"],
        positionals: 0,
        code_opts: &["-e", "-E"],
    },
    WrapperSpec {
        name: "ruby",
        value_opts: &["-I", "-r", "-C", "-E", "--encoding"],
        positionals: 0,
        code_opts: &["-e"],
    },
];

/// The interpreter spec for a program name (`python3.12`, `nodejs`, `bash`...).
fn interpreter(name: &[u8]) -> Option<&'static WrapperSpec> {
    let family: &[u8] = if name.starts_with(b"python") || name.starts_with(b"pypy") {
        b"python"
    } else if name == b"node" || name == b"nodejs" {
        b"node"
    } else if matches!(
        name,
        b"sh" | b"bash" | b"dash" | b"zsh" | b"ksh" | b"ash" | b"mksh"
    ) {
        b"sh"
    } else if name.starts_with(b"perl") {
        b"perl"
    } else if name.starts_with(b"ruby") {
        b"ruby"
    } else {
        return None;
    };
    INTERPRETERS.iter().find(|w| w.name.as_bytes() == family)
}

pub(crate) fn wrapper(name: &[u8]) -> Option<&'static WrapperSpec> {
    if is_dynamic_loader(name) {
        return Some(&DYNAMIC_LOADER);
    }
    WRAPPERS
        .iter()
        .find(|w| w.name.as_bytes() == name)
        .or_else(|| interpreter(name))
}

/// Index of the payload command of wrapper `w` whose own word is at `s`, or None when there is
/// none (a bare `sudo -l`).
pub(crate) fn payload_start(w: &WrapperSpec, argv: &dyn Argv, s: usize) -> Option<usize> {
    let mut i = s + 1;
    while i < argv.len() {
        let a = argv.arg(i);
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() > 1 && (a[0] == b'-' || (a[0] == b'+' && !w.code_opts.is_empty())) {
            let inline_code = w.code_opts.iter().any(|o| {
                let o = o.as_bytes();
                // `-c`, `-cCODE`, or a short cluster of flags ending in it (`-Bc`, `-ic`).
                a == o
                    || (o.len() == 2 && a.starts_with(o) && !a.starts_with(b"--"))
                    || (o.len() == 2
                        && a.len() <= 5
                        && a[1..].iter().all(u8::is_ascii_alphabetic)
                        && a[1..].contains(&o[1]))
            });
            if inline_code {
                return None;
            }
            i += if w.value_opts.iter().any(|o| o.as_bytes() == a) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    i += w.positionals;
    (i < argv.len()).then_some(i)
}

pub(crate) fn basename(p: &[u8]) -> &[u8] {
    // Program names are short: a plain scan beats a SIMD search's setup.
    match p.iter().rposition(|&c| c == b'/') {
        Some(i) => p.get(i + 1..).unwrap_or(&[]),
        None => p,
    }
}

/// `NAME=value` with a shell variable name.
pub(crate) fn is_assignment(a: &[u8]) -> bool {
    let Some(eq) = memchr::memchr(b'=', a) else {
        return false;
    };
    eq > 0
        && (a[0].is_ascii_alphabetic() || a[0] == b'_')
        && a[..eq]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The environment a payload sees: assignments in `argv[lo..hi]`, then (unless `clear`, i.e.
/// `env -i`) the base environment minus the names `env -u` removed (the options in
/// `argv[opt_lo..opt_hi]`).
pub(crate) struct Overlay<'a> {
    pub argv: &'a dyn Argv,
    pub lo: usize,
    pub hi: usize,
    pub opt_lo: usize,
    pub opt_hi: usize,
    pub clear: bool,
    pub base: &'a dyn EnvLookup,
}

impl EnvLookup for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let mut i = self.hi;
        while i > self.lo {
            i -= 1;
            let a = self.argv.arg(i);
            if a.len() > key.len() && a.starts_with(key) && a[key.len()] == b'=' {
                return a.get(key.len() + 1..);
            }
        }
        if self.clear {
            return None;
        }
        let mut j = self.opt_lo;
        while j < self.opt_hi {
            let a = self.argv.arg(j);
            if (a == b"-u" || a == b"--unset") && self.argv.arg(j + 1) == key {
                return None;
            }
            if let Some(rest) = a.strip_prefix(b"--unset=")
                && rest == key
            {
                return None;
            }
            j += 1;
        }
        self.base.get(key)
    }
}

/// `env -S "cmd a b" rest...`: the split words of the string, then the remaining arguments.
pub(crate) struct SplitArgv<'a> {
    pub text: &'a [u8],
    pub words: usize,
    pub rest: &'a dyn Argv,
    pub rest_start: usize,
}

impl<'a> SplitArgv<'a> {
    pub fn new(text: &'a [u8], rest: &'a dyn Argv, rest_start: usize) -> SplitArgv<'a> {
        let words = text
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count();
        SplitArgv {
            text,
            words,
            rest,
            rest_start,
        }
    }
}

impl Argv for SplitArgv<'_> {
    fn len(&self) -> usize {
        self.words + self.rest.len().saturating_sub(self.rest_start)
    }
    fn arg(&self, i: usize) -> &[u8] {
        if i < self.words {
            self.text
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .nth(i)
                .unwrap_or(&[])
        } else {
            self.rest.arg(self.rest_start + (i - self.words))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let argv: &[&str] = &["sudo", "-u", "root", "-E", "rm", "-rf", "/"];
        let w = wrapper(b"sudo").map(|w| payload_start(w, &argv, 0));
        assert_eq!(w, Some(Some(4)));
        let argv: &[&str] = &["timeout", "-s", "KILL", "10s", "terraform", "destroy"];
        let w = wrapper(b"timeout").map(|w| payload_start(w, &argv, 0));
        assert_eq!(w, Some(Some(4)));
        let argv: &[&str] = &["sudo", "-l"];
        let w = wrapper(b"sudo").map(|w| payload_start(w, &argv, 0));
        assert_eq!(w, Some(None));
        assert!(is_assignment(b"TF_WORKSPACE=prod"));
        assert!(!is_assignment(b"=x"));
        assert!(!is_assignment(b"a/b=c"));
        assert!(!is_assignment(b"--foo=bar"));
        assert_eq!(basename(b"/usr/bin/git"), b"git");
        assert_eq!(basename(b"git"), b"git");
        let argv: &[&str] = &[
            "/lib64/ld-linux-x86-64.so.2",
            "--library-path",
            "/tmp",
            "--inhibit-cache",
            "/usr/bin/git",
            "push",
            "--force",
        ];
        let w = wrapper(b"ld-linux-x86-64.so.2").map(|w| payload_start(w, &argv, 0));
        assert_eq!(w, Some(Some(4)));
        for n in [
            "ld-linux-aarch64.so.1",
            "ld-linux.so.2",
            "ld.so",
            "ld64.so.2",
            "ld-2.31.so",
            "ld-musl-x86_64.so.1",
        ] {
            assert!(is_dynamic_loader(n.as_bytes()), "{n}");
        }
        for n in ["ld", "ldd", "ldconfig", "ld.gold", "old-linux.so"] {
            assert!(!is_dynamic_loader(n.as_bytes()), "{n}");
        }
        // Interpreters: the script is the payload; inline code has none.
        let cases: &[(&[&str], Option<usize>)] = &[
            (&["python3", "/usr/local/bin/aws", "s3", "rb"], Some(1)),
            (
                &["python3.12", "-u", "-W", "ignore", "/usr/bin/aws", "s3"],
                Some(4),
            ),
            (
                &["python3", "-Xfrozen_modules=off", "/usr/bin/aws"],
                Some(2),
            ),
            (&["python3", "-c", "import os"], None),
            (&["python3", "-Bc", "import os", "rm"], None),
            (&["python3", "-m", "pip", "install"], None),
            (
                &[
                    "node",
                    "--require",
                    "x",
                    "/usr/lib/node_modules/npm/bin/npm-cli.js",
                    "publish",
                ],
                Some(3),
            ),
            (&["node", "-e", "1"], None),
            (&["bash", "-e", "deploy.sh", "prod"], Some(2)),
            (&["bash", "-c", "git push --force"], None),
            (&["sh", "-o", "errexit", "x.sh"], Some(3)),
            (&["perl", "-e", "exec q(git)"], None),
        ];
        for (argv, want) in cases {
            let w = wrapper(basename(argv[0].as_bytes())).expect(argv[0]);
            assert_eq!(payload_start(w, argv, 0), *want, "{argv:?}");
        }
        assert!(wrapper(b"pythonista").is_some() && wrapper(b"nodemon").is_none());
    }

    #[test]
    fn overlay_and_split() {
        let base: &[(&str, &str)] = &[("A", "base"), ("B", "b")];
        let argv: &[&str] = &["env", "-u", "B", "A=over", "cmd"];
        let o = Overlay {
            argv: &argv,
            lo: 3,
            hi: 4,
            opt_lo: 1,
            opt_hi: 3,
            clear: false,
            base: &base,
        };
        assert_eq!(o.get(b"A"), Some(&b"over"[..]));
        assert_eq!(o.get(b"B"), None);
        let o2 = Overlay {
            argv: &argv,
            lo: 3,
            hi: 3,
            opt_lo: 1,
            opt_hi: 1,
            clear: true,
            base: &base,
        };
        assert_eq!(o2.get(b"A"), None);
        let rest: &[&str] = &["env", "-S", "git  push -f", "origin"];
        let s = SplitArgv::new(b"git  push -f", &rest, 3);
        assert_eq!(s.len(), 4);
        assert_eq!(s.arg(1), b"push");
        assert_eq!(s.arg(3), b"origin");
        assert_eq!(s.arg(9), b"");
    }
}
