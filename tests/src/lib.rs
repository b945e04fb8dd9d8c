//! Shared fixtures for the end-to-end tests: where the built artifacts are, a private HOME,
//! workspace and state directory per test, and helpers to build and run real programs.
//!
//! The tests expect `cargo build --workspace` (same profile) to have run first:
//! `scripts/test.sh` does that.

use std::path::{Path, PathBuf};

/// The target profile directory the test binary was built into (`target/debug` or `target/release`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("test binary lives in target/<profile>/deps")
}

/// Absolute path of the built `libguard.so`.
pub fn libguard_path() -> PathBuf {
    let p = target_dir().join("libguard.so");
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Absolute path of the built `guardctl`.
pub fn guardctl_path() -> PathBuf {
    let p = target_dir().join("guardctl");
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A scratch directory removed on drop, with `home/`, `home/project/` (the workspace) and `state/`.
pub struct Sandbox {
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let base = std::env::temp_dir().join(format!(
            "guard-e2e-{}-{}-{}",
            name,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        for d in ["home/project", "state"] {
            std::fs::create_dir_all(base.join(d)).expect("create sandbox");
        }
        Sandbox { root: base }
    }
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    pub fn workspace(&self) -> PathBuf {
        self.root.join("home/project")
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
