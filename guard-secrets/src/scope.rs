//! Which paths are worth scanning for secrets: an allocation-free decision libguard can make on
//! every open before flagging the fd for inspection.
//!
//! Default scope: files under the workspace or `HOME`, minus dependency, build, VCS-object and
//! cache trees below them (`node_modules`, `target`, `.git/objects`, `site-packages`, ...) and
//! minus system trees (`/usr`, `/lib`, `/proc`, ...) unless the workspace or home itself lives
//! there (a container's `WORKDIR /usr/src/app`). `/proc/<pid>/environ` is always in scope.

/// Directory names below a root that are never scanned: dependencies, build output, caches.
const EXCLUDED_DIRS: &[&[u8]] = &[
    b"node_modules",
    b"target",
    b"site-packages",
    b"dist-packages",
    b"__pycache__",
    b".venv",
    b"venv",
    b".tox",
    b".nox",
    b".mypy_cache",
    b".pytest_cache",
    b".rustup",
];

/// Two-component trees below a root (`parent/child`).
const EXCLUDED_PAIRS: &[(&[u8], &[u8])] = &[
    (b".git", b"objects"),
    (b".cargo", b"registry"),
    (b".cargo", b"git"),
    (b".npm", b"_cacache"),
    (b".m2", b"repository"),
    (b".gradle", b"caches"),
    (b"go", b"pkg"),
    (b".nvm", b"versions"),
    (b".pyenv", b"versions"),
];

/// System and runtime trees, excluded unless the matching root is inside them.
const SYSTEM_TREES: &[&[u8]] = &[
    b"/usr",
    b"/lib",
    b"/lib32",
    b"/lib64",
    b"/libx32",
    b"/bin",
    b"/sbin",
    b"/proc",
    b"/sys",
    b"/dev",
    b"/boot",
    b"/snap",
    b"/nix/store",
];

/// The roots of the default scope, borrowed from the caller (no copies).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    home: &'a [u8],
    workspace: &'a [u8],
}

impl<'a> Scope<'a> {
    /// Empty roots (an unset `HOME`) match nothing. Roots should be absolute and normalised.
    pub fn new(home: &'a [u8], workspace: &'a [u8]) -> Self {
        Scope {
            home: trim_slash(home),
            workspace: trim_slash(workspace),
        }
    }

    /// Whether reads of `path` (absolute, normalised) should be scanned for secrets.
    pub fn contains(&self, path: &[u8]) -> bool {
        if is_proc_environ(path) {
            return true;
        }
        // A relative or unnormalised path cannot be placed; the caller should resolve it
        // first. Scanning too much is safer than leaking, so only the name-based exclusions
        // apply to it.
        if path.first() != Some(&b'/') || has_dot_dot(path) {
            return !excluded_below(path);
        }
        [self.workspace, self.home]
            .into_iter()
            .any(|root| in_root(path, root))
    }
}

/// `Scope::new(home, workspace).contains(path)`.
pub fn in_scope(path: &[u8], home: &[u8], workspace: &[u8]) -> bool {
    Scope::new(home, workspace).contains(path)
}

fn trim_slash(p: &[u8]) -> &[u8] {
    let mut p = p;
    while p.len() > 1 && p.last() == Some(&b'/') {
        p = &p[..p.len() - 1];
    }
    p
}

/// Splits on '/' skipping empty components.
fn components(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

fn has_dot_dot(p: &[u8]) -> bool {
    components(p).any(|c| c == b"..")
}

/// `path` equals `prefix` or continues it with a '/'.
fn under(path: &[u8], prefix: &[u8]) -> bool {
    if prefix == b"/" {
        return path.first() == Some(&b'/');
    }
    path.starts_with(prefix) && matches!(path.get(prefix.len()), None | Some(b'/'))
}

fn in_root(path: &[u8], root: &[u8]) -> bool {
    if root.is_empty() || !under(path, root) {
        return false;
    }
    let system = SYSTEM_TREES
        .iter()
        .any(|t| under(path, t) && !under(root, t));
    if system {
        return false;
    }
    let rest = if root == b"/" {
        path
    } else {
        &path[root.len()..]
    };
    !excluded_below(rest)
}

/// Some component (or component pair) of `rest` names an excluded tree.
fn excluded_below(rest: &[u8]) -> bool {
    let mut prev: &[u8] = b"";
    for c in components(rest) {
        if EXCLUDED_DIRS.contains(&c) {
            return true;
        }
        if EXCLUDED_PAIRS.iter().any(|&(p, ch)| p == prev && ch == c) {
            return true;
        }
        prev = c;
    }
    false
}

/// `/proc/<pid>/environ`, `/proc/self/environ`, `/proc/thread-self/environ`,
/// `/proc/<pid>/task/<tid>/environ`.
fn is_proc_environ(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    let mut parts = rest.split(|&b| b == b'/');
    let who_ok = |w: &[u8]| {
        w == b"self" || w == b"thread-self" || (!w.is_empty() && w.iter().all(u8::is_ascii_digit))
    };
    let pid = parts.next().unwrap_or_default();
    if !who_ok(pid) {
        return false;
    }
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(b"environ"), None, None, None) => true,
        (Some(b"task"), Some(tid), Some(b"environ"), None) => {
            !tid.is_empty() && tid.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &[u8] = b"/home/agent";
    const WS: &[u8] = b"/work/project";

    fn s(p: &str) -> bool {
        in_scope(p.as_bytes(), HOME, WS)
    }

    #[test]
    fn workspace_and_home_are_in_scope() {
        assert!(s("/work/project/.env"));
        assert!(s("/work/project"));
        assert!(s("/work/project/config/prod.yaml"));
        assert!(s("/home/agent/.aws/credentials"));
        assert!(s("/home/agent/.git-credentials"));
        assert!(
            s("/work/project/.git/config"),
            "remote URLs can hold tokens"
        );
        assert!(
            s("/work/project/targets/x"),
            "only the exact name is excluded"
        );
    }

    #[test]
    fn outside_roots_is_out_of_scope() {
        assert!(!s("/etc/passwd"));
        assert!(
            !s("/work/projectile/.env"),
            "prefix of a name is not a parent"
        );
        assert!(!s("/home/agent2/.env"));
        assert!(!s("/tmp/x"));
    }

    #[test]
    fn dependency_build_and_cache_trees_are_excluded() {
        for p in [
            "/work/project/node_modules/left-pad/index.js",
            "/work/project/target/debug/build/x/output",
            "/work/project/.git/objects/ab/cdef",
            "/work/project/.venv/lib/python3.11/site-packages/requests/api.py",
            "/work/project/venv/bin/activate",
            "/work/project/src/__pycache__/m.cpython-311.pyc",
            "/home/agent/.local/lib/python3.11/site-packages/x.py",
            "/home/agent/.cargo/registry/src/index/regex-1.0/src/lib.rs",
            "/home/agent/go/pkg/mod/x@v1/y.go",
        ] {
            assert!(!s(p), "{p}");
        }
        assert!(s("/home/agent/.cargo/credentials.toml"));
        assert!(s("/home/agent/go/src/app/main.go"));
    }

    #[test]
    fn system_trees_are_excluded_unless_a_root_is_there() {
        assert!(
            !in_scope(b"/usr/lib/x.so", b"/", WS),
            "HOME=/ must not pull in /usr"
        );
        assert!(!in_scope(b"/proc/1/maps", b"/", WS));
        assert!(in_scope(b"/root/.env", b"/", WS));
        // A container workspace under /usr is scanned.
        assert!(in_scope(b"/usr/src/app/.env", HOME, b"/usr/src/app"));
        assert!(!in_scope(
            b"/usr/src/app/node_modules/a.js",
            HOME,
            b"/usr/src/app"
        ));
        assert!(!in_scope(b"/usr/share/doc/x", HOME, b"/usr/src/app"));
    }

    #[test]
    fn proc_environ_is_always_in_scope() {
        assert!(s("/proc/self/environ"));
        assert!(s("/proc/1234/environ"));
        assert!(s("/proc/thread-self/environ"));
        assert!(s("/proc/1234/task/1235/environ"));
        assert!(!s("/proc/self/maps"));
        assert!(!s("/proc/abc/environ"));
        assert!(!s("/proc/1234/environ/x"));
        assert!(!s("/proc//environ"));
    }

    #[test]
    fn roots_are_normalised_and_empty_roots_match_nothing() {
        assert!(in_scope(b"/work/project/a", b"", b"/work/project/"));
        assert!(!in_scope(b"/home/agent/a", b"", b""));
    }

    #[test]
    fn relative_and_dotdot_paths_are_scanned_unless_excluded() {
        assert!(s(".env"));
        assert!(!s("node_modules/x/index.js"));
        assert!(s("/work/project/../../etc/shadow"));
    }
}
