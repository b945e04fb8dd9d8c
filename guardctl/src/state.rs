//! Where guardctl keeps its state (audit logs, compiled rulesets) and its sockets.
//!
//! `GUARD_STATE_DIR` overrides everything (sockets go to `<it>/run`), so tests and one-off runs
//! never touch a real user's state. Otherwise state lives in `$XDG_STATE_HOME/guard` (default
//! `~/.local/state/guard`) and sockets in `$XDG_RUNTIME_DIR/guard`, falling back to a private
//! `/tmp/guard-<uid>` that is verified to be ours and not a symlink before use, because anyone
//! can pre-create names under `/tmp`.

use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The resolved state and socket directories (not necessarily created yet).
#[derive(Clone, Debug)]
pub struct Dirs {
    pub state: PathBuf,
    pub run: PathBuf,
    /// The run directory is shared world-writable ground (`/tmp`): verify ownership strictly.
    run_is_tmp_fallback: bool,
}

fn env_abs(name: &str) -> Option<PathBuf> {
    let v: OsString = std::env::var_os(name)?;
    let p = PathBuf::from(v);
    // The XDG spec says relative values are invalid and must be ignored.
    if p.is_absolute() { Some(p) } else { None }
}

impl Dirs {
    /// Resolves the directories from the environment.
    pub fn resolve() -> Result<Dirs, String> {
        if let Some(base) = env_abs("GUARD_STATE_DIR") {
            return Ok(Dirs {
                run: base.join("run"),
                state: base,
                run_is_tmp_fallback: false,
            });
        }
        if std::env::var_os("GUARD_STATE_DIR").is_some() {
            return Err("GUARD_STATE_DIR must be an absolute path".into());
        }
        let state = match env_abs("XDG_STATE_HOME") {
            Some(p) => p.join("guard"),
            None => match env_abs("HOME") {
                Some(h) => h.join(".local/state/guard"),
                None => {
                    return Err("cannot locate the state directory: set HOME, XDG_STATE_HOME or GUARD_STATE_DIR".into());
                }
            },
        };
        let (run, run_is_tmp_fallback) = match env_abs("XDG_RUNTIME_DIR") {
            Some(p) => (p.join("guard"), false),
            // SAFETY: geteuid has no preconditions and cannot fail.
            None => (
                PathBuf::from(format!("/tmp/guard-{}", unsafe { libc::geteuid() })),
                true,
            ),
        };
        Ok(Dirs {
            state,
            run,
            run_is_tmp_fallback,
        })
    }

    pub fn sessions(&self) -> PathBuf {
        self.state.join("sessions")
    }

    pub fn rulesets(&self) -> PathBuf {
        self.state.join("rulesets")
    }

    pub fn index(&self) -> PathBuf {
        self.sessions().join("index.jsonl")
    }

    /// Creates the state tree (state, sessions, rulesets), private to the user.
    pub fn ensure_state(&self) -> io::Result<()> {
        for d in [self.state.clone(), self.sessions(), self.rulesets()] {
            private_dir(&d, false)?;
        }
        Ok(())
    }

    /// Creates the socket directory with mode 0700 and checks it is ours and not a symlink.
    pub fn ensure_run(&self) -> io::Result<()> {
        private_dir(&self.run, self.run_is_tmp_fallback)
    }
}

/// Creates `dir` (and parents) and makes sure the last component is a real directory owned by
/// the effective user with mode 0700. With `strict`, a directory that is not ours is refused
/// rather than chmod-ed (someone else may have planted it).
fn private_dir(dir: &Path, strict: bool) -> io::Result<()> {
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    let fail = |what: &str| io::Error::other(format!("{}: {what}", dir.display()));
    if meta.file_type().is_symlink() {
        return Err(fail("is a symlink; refusing to use it"));
    }
    if !meta.is_dir() {
        return Err(fail("exists and is not a directory"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(fail(&format!(
            "is owned by uid {}, not by us ({uid})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o777 != 0o700 {
        if strict && meta.mode() & 0o022 != 0 {
            return Err(fail("is group/world writable; refusing to use it"));
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// True when `id` is safe to use as a file name component (session ids come from the command line).
pub fn valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_creates_0700_and_refuses_symlinks() {
        let base = std::env::temp_dir().join(format!("guard-state-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let d = base.join("a/run");
        private_dir(&d, true).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        // A loose mode on our own directory is tightened.
        fs::set_permissions(&d, fs::Permissions::from_mode(0o750)).unwrap();
        private_dir(&d, false).unwrap();
        assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
        let link = base.join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(private_dir(&link, true).is_err());
        let file = base.join("file");
        fs::write(&file, b"x").unwrap();
        assert!(private_dir(&file, false).is_err());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn session_ids_cannot_escape_the_directory() {
        assert!(valid_session_id("20261122T023512-4242"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_session_id(bad), "{bad}");
        }
    }
}
