//! What a process is about to do, in the normalised form the evaluator takes.
//!
//! Callers normalise before evaluating: file paths are absolute and lexically clean (no `.`,
//! `..` or doubled `/`; libguard resolves symlinks separately and evaluates both names), exec
//! argv is the full vector the program would receive, hosts are lower-case without a trailing dot.
//! Every type here borrows: building an action never allocates.

use std::net::IpAddr;

/// The kind of file access, derived from open flags or from the call (unlink, rename...).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileAccess {
    Read = 1,
    Write = 2,
    Delete = 4,
}

impl FileAccess {
    pub const fn as_str(self) -> &'static str {
        match self {
            FileAccess::Read => "read",
            FileAccess::Write => "write",
            FileAccess::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<FileAccess> {
        match s {
            "read" => Some(FileAccess::Read),
            "write" => Some(FileAccess::Write),
            "delete" => Some(FileAccess::Delete),
            _ => None,
        }
    }

    /// The bit this access occupies in a rule's access mask.
    pub const fn bit(self) -> u8 {
        self as u8
    }
}

/// An argument vector, borrowed from wherever the caller keeps it (a C `char **`, a slice).
pub trait Argv {
    fn len(&self) -> usize;
    /// Argument `i` without its NUL terminator; `i < len()`.
    fn arg(&self, i: usize) -> &[u8];
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Argv for [&[u8]] {
    fn len(&self) -> usize {
        <[&[u8]]>::len(self)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i).copied().unwrap_or(b"")
    }
}

impl Argv for [&str] {
    fn len(&self) -> usize {
        <[&str]>::len(self)
    }
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i).map(|s| s.as_bytes()).unwrap_or(b"")
    }
}

/// Looks up environment variables of the acting process (for `when = { env = ... }`).
pub trait EnvLookup {
    fn get(&self, key: &[u8]) -> Option<&[u8]>;
}

/// An empty environment.
pub struct NoEnv;

impl EnvLookup for NoEnv {
    fn get(&self, _key: &[u8]) -> Option<&[u8]> {
        None
    }
}

impl EnvLookup for [(&str, &str)] {
    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == key)
            .map(|(_, v)| v.as_bytes())
    }
}

/// Who is acting and where: the inputs of `when` conditions that are not part of the action.
pub struct Context<'a> {
    /// Environment of the acting process (for exec: the environment the child will get).
    pub env: &'a dyn EnvLookup,
    /// Absolute current directory of the acting process.
    pub cwd: &'a [u8],
    /// The agent name given to `guardctl run --agent`.
    pub agent: &'a [u8],
}

/// One action to evaluate.
pub enum Action<'a> {
    /// Open, create, truncate, unlink or rename of `path` (absolute, normalised).
    File { path: &'a [u8], access: FileAccess },
    /// Exec of `argv`; `program` is the resolved absolute path of the executable when known.
    Exec {
        argv: &'a dyn Argv,
        program: Option<&'a [u8]>,
    },
    /// Outgoing connection. `host` is the name the address came from (getaddrinfo, SNI) if known.
    Connect {
        host: Option<&'a [u8]>,
        ip: Option<IpAddr>,
        port: u16,
    },
    /// One HTTP request seen in plaintext (before TLS) or given to `explain http`.
    Http {
        method: &'a [u8],
        host: &'a [u8],
        /// Path with query string, as on the request line.
        path: &'a [u8],
        body: &'a [u8],
    },
}

impl Action<'_> {
    /// The action's name as audit events and `explain` print it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::File { access, .. } => access.as_str(),
            Action::Exec { .. } => "exec",
            Action::Connect { .. } => "connect",
            Action::Http { .. } => "http",
        }
    }
}
